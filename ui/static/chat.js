// The chat page: the session machine (session-machine.js) wired to the page's controls,
// status line, error panel, speaking indicators, level meters and transcript.
// State and audio levels are mirrored on window.voiceAgent for tests and debugging.
import { Api } from "./api.js";
import { ConnectionSettings } from "./connection-settings.js";
import { UiError, describe } from "./errors.js";
import { resumeAudio, startMeter } from "./meters.js";
import { SessionMachine, State } from "./session-machine.js";
import { TranscriptView } from "./transcript-view.js";

const $ = (id) => document.getElementById(id);
const el = {
  start: $("start"), stop: $("stop"), enableAudio: $("enable-audio"), status: $("status"),
  error: $("error"), errorTitle: $("error-title"), errorMessage: $("error-message"),
  errorHint: $("error-hint"), errorDetail: $("error-detail"), newRoom: $("new-room"),
  userIndicator: $("user-indicator"), agentIndicator: $("agent-indicator"), mic: $("mic-level"),
};

const agent = (window.voiceAgent = {
  state: "idle", sessionId: null, wsState: "closed", roomState: "disconnected",
  agentRms: 0, agentPeakRms: 0, micRms: 0, messages: [], errorKind: null,
});

// What the status line says in each state, by the step that led there.
const STATUS = {
  idle: {
    idle: "Ready. Press Start and speak.",
    stopped: "Stopped. The conversation is saved in History. Press Start to talk again.",
    ended: ({ reason }) => `The session ended (${String(reason).replace(/_/g, " ")}). Press Start to talk again.`,
    left: "The conversation ended when you left the page. Press Start to talk again.",
    new_room: ({ room }) => `New room “${room}” ready. Press Start and speak.`,
  },
  connecting: {
    token: "Connecting: asking the voice service for a room pass…",
    media: "Connecting to the media server…",
    microphone: "Turning on your microphone…",
    agent: "Inviting the agent…",
  },
  live: { live: "Live: speak any time." },
  stopping: { stopping: "Stopping…" },
  error: {
    failed: "Could not start. See the message below.",
    lost: "Disconnected. See the message below.",
  },
};
const NOTICES = { reconnecting: "Connection interrupted. Reconnecting…", reconnected: STATUS.live.live };
const READY_AGAIN = "You can press Start again now.";

const api = Api.fromPage();
const settings = new ConnectionSettings({
  details: $("settings"), room: $("room"), identity: $("identity"), rule: $("name-rule-text"),
});
const transcript = new TranscriptView({
  scroller: $("transcript-scroller"), list: $("transcript"), empty: $("transcript-empty"),
  interim: $("interim"), jump: $("jump-latest"),
});

// ---- the page's view of the machine ------------------------------------------------------
let startHeldUntil = 0; // after a 429 with Retry-After, Start waits that long
let holdTimer = null;

function renderControls(state) {
  const busy = !(state === State.IDLE || state === State.ERROR);
  el.start.disabled = busy || Date.now() < startHeldUntil;
  el.stop.disabled = !(state === State.CONNECTING || state === State.LIVE);
  settings.disabled = busy;
}

function render(state, step, extra = {}) {
  agent.state = state;
  const text = (STATUS[state] || {})[step] || STATUS[state][state] || STATUS.error.failed;
  el.status.dataset.state = state;
  el.status.textContent = typeof text === "function" ? text(extra) : text;
  document.body.dataset.chatState = state;
  renderControls(state);
}

function holdStart(seconds) {
  clearTimeout(holdTimer);
  startHeldUntil = Date.now() + seconds * 1000;
  renderControls(machine.state);
  holdTimer = setTimeout(() => {
    startHeldUntil = 0;
    renderControls(machine.state);
    if (machine.state === State.ERROR) el.status.textContent = READY_AGAIN;
  }, seconds * 1000);
}

function showError(error) {
  if (!error) {
    agent.errorKind = null;
    el.error.hidden = true;
    el.newRoom.hidden = true;
    return;
  }
  if (!(error instanceof UiError)) console.error(error);
  const shown = describe(error);
  agent.errorKind = shown.kind;
  el.error.dataset.kind = shown.kind;
  el.errorTitle.textContent = shown.title;
  el.errorMessage.textContent = shown.message;
  el.errorHint.textContent = shown.hint;
  el.errorDetail.textContent = shown.detail;
  el.errorDetail.hidden = !shown.detail;
  el.newRoom.hidden = !shown.offerNewRoom;
  el.error.hidden = false;
  if (shown.retryAfter) holdStart(shown.retryAfter);
}

function setSpeaking(role, speaking) {
  const indicator = role === "agent" ? el.agentIndicator : el.userIndicator;
  indicator.dataset.speaking = String(speaking);
  indicator.querySelector(".speaker-state").textContent = speaking ? "speaking" : "not speaking";
}

// An interim line that is neither updated nor replaced by a final for this long was not
// taken as words (noise, a cough): it goes away instead of lingering on screen.
const INTERIM_LINGER_MS = 3000;
let interimExpiry = null;

function showInterim(text) {
  clearTimeout(interimExpiry);
  transcript.setInterim(text);
  if (text) interimExpiry = setTimeout(() => transcript.setInterim(""), INTERIM_LINGER_MS);
}

function showMessage(message) {
  agent.messages.push(message);
  if (message.event === "session_ended") return; // the machine ends the conversation
  if (message.event) {
    setSpeaking(message.role, message.event === "speech_started");
  } else if (message.final === false) {
    showInterim(message.text);
  } else if (message.final === true) {
    if (message.role === "user") showInterim("");
    transcript.append(message.role, message.text);
  }
}

function resetWidgets() {
  agent.roomState = "disconnected";
  agent.wsState = "closed";
  agent.micRms = agent.agentRms = 0;
  setSpeaking("user", false);
  setSpeaking("agent", false);
  transcript.setInterim("");
  el.mic.value = 0;
  el.enableAudio.hidden = true;
}

const machine = new SessionMachine({
  api,
  hooks: {
    state: render,
    notice: (what) => { el.status.textContent = NOTICES[what]; },
    error: showError,
    session: (id) => { agent.sessionId = id; },
    room: (state) => { agent.roomState = state; },
    socket: (state) => { agent.wsState = state; },
    message: showMessage,
    microphone: (track) => startMeter(track, (rms) => {
      agent.micRms = rms;
      el.mic.value = Math.min(1, rms * 5);
    }),
    agentAudio: ({ element, mediaStreamTrack }) => {
      element.id = "agent-audio";
      element.classList.add("agent-audio");
      document.body.append(element);
      const stopMeter = startMeter(mediaStreamTrack, (rms) => {
        agent.agentRms = rms;
        agent.agentPeakRms = Math.max(agent.agentPeakRms, rms);
      });
      return () => {
        stopMeter();
        element.remove();
      };
    },
    playback: (canPlay) => { el.enableAudio.hidden = canPlay; },
    closed: resetWidgets,
  },
});

// ---- controls ----------------------------------------------------------------------------
function start() {
  if (!machine.canStart || Date.now() < startHeldUntil) return;
  let names;
  try {
    names = settings.read();
  } catch (error) {
    machine.refuse(error);
    return;
  }
  showError(null);
  transcript.clear();
  agent.messages = [];
  agent.agentPeakRms = 0;
  machine.start(names.room, names.identity);
}

async function stop() {
  await machine.stop();
  if (machine.state === State.IDLE) el.start.focus();
}

el.start.addEventListener("click", start);
el.stop.addEventListener("click", stop);
$("settings-form").addEventListener("submit", (event) => {
  event.preventDefault();
  start();
});
el.newRoom.addEventListener("click", () => {
  const room = settings.newRoom();
  showError(null);
  machine.acknowledge("new_room", { room });
  el.start.focus();
});
el.enableAudio.addEventListener("click", () => {
  resumeAudio();
  machine.startAudio();
});
// Leaving the page: the machine asks the server to stop and leaves the room.
window.addEventListener("pagehide", () => machine.leave());
// Back from the back/forward cache: the old conversation is gone; say so.
window.addEventListener("pageshow", (event) => { if (event.persisted) machine.returned(); });

resetWidgets();
render(State.IDLE, "idle");
