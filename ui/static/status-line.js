// The chat page's status line: what it says in each state of the conversation, by the step
// that led there (session-machine.js names both), and the notices that replace it while live.

// What the status line says in each state, by the step that led there.
const STATUS = {
  idle: {
    idle: "Ready. Press Start and speak.",
    stopped: "Stopped. The conversation is saved in History. Press Start to talk again.",
    ended: ({ reason }) => `The session ended (${String(reason).replace(/_/g, " ")}). Press Start to talk again.`,
    left: "The conversation ended when you left the page. Press Start to talk again.",
    new_room: ({ room }) => `New room “${room}” ready. Press Start and speak.`,
    unsupported: "This browser cannot make calls: see why below.",
  },
  connecting: {
    token: "Connecting: asking the voice service for a room pass…",
    media: "Connecting to the media server…",
    microphone: "Turning on your microphone…",
    agent: "Inviting the agent…",
  },
  live: {
    live: "Live: speak any time.",
    text_only: "Live, text only: type below. The agent answers aloud and in writing.",
    push_to_talk: "Live: hold Space or “Hold to talk” while you speak.",
  },
  stopping: { stopping: "Stopping…" },
  error: {
    failed: "Could not start. See the message below.",
    lost: "Disconnected. See the message below.",
  },
};
const NOTICES = { reconnecting: "Connection interrupted. Reconnecting…", reconnected: STATUS.live.live };
const READY_AGAIN = "You can press Start again now.";

export class StatusLine {
  /** @param {HTMLElement} node the status line (its data-state is the conversation's state) */
  constructor(node) {
    this.node = node;
  }

  /** The machine moved to `state` by `step`; `extra` fills in the words ({reason}, {room}). */
  show(state, step, extra = {}) {
    const text = (STATUS[state] || {})[step] || STATUS[state][state] || STATUS.error.failed;
    this.node.dataset.state = state;
    this.node.textContent = typeof text === "function" ? text(extra) : text;
  }

  /** "reconnecting" | "reconnected", while live. */
  notice(what) {
    this.node.textContent = NOTICES[what];
  }

  /** After an error, once Start may be pressed again (a Retry-After has passed). */
  readyAgain() {
    this.node.textContent = READY_AGAIN;
  }

  /** While live, how to talk: any time, or holding Space (push to talk on). */
  pushToTalk({ enabled, live }) {
    const text = enabled ? STATUS.live.push_to_talk : STATUS.live.live;
    if (live && this.node.textContent !== text) this.node.textContent = text;
  }
}
