// Push-to-talk: hold Space, or the "Hold to talk" button, while speaking; the agent takes the
// turn when it is let go. Off by default (hands-free: the agent listens all the time); it can
// be switched on and off during a conversation, and the page remembers the choice.
//
// The agent does the listening (app/voice/agent/push_to_talk.py). The page calls it over
// LiveKit RPC, and each answer is the agent's state, {"enabled", "held"}: the switch shows
// what the agent said, the button says "Talking…" once the agent hears the microphone. The
// microphone stays published either way (its meter keeps moving); only the agent ignores it.
//
// Keyboard: Space held anywhere but in a text box or on another control talks; Escape while
// talking drops the turn. Enter, or a click that comes from no pointer (a screen reader),
// starts talking, and the next one sends the turn.
import { recall, remember } from "./storage.js";

export const METHODS = Object.freeze({
  setMode: "ptt.set_mode", start: "ptt.start_turn", end: "ptt.end_turn", cancel: "ptt.cancel_turn",
});
export const STORAGE_KEY = "voiceAgent.pushToTalk";
const LABELS = { idle: "Hold to talk", waiting: "Wait…", talking: "Talking…" };

// Where Space already means something: typing, or pressing that control.
const OWN_SPACE_TAGS = new Set(["INPUT", "TEXTAREA", "SELECT", "BUTTON", "SUMMARY", "OPTION", "AUDIO", "VIDEO"]);
const OWN_SPACE_ROLES = new Set(["button", "checkbox", "switch", "link", "menuitem", "option", "radio", "slider",
  "spinbutton", "tab", "textbox", "combobox"]);

/** Whether Space pressed with the focus on `target` is for talking: on the hold button, or
 * on anything that does not use Space itself (not a text box, another button, a link...). */
export function spaceIsForTalking(target, holdButton) {
  if (!target || target === holdButton) return true;
  if (target.isContentEditable) return false;
  const tag = String(target.tagName || "").toUpperCase();
  if (OWN_SPACE_TAGS.has(tag) || (tag === "A" && target.hasAttribute?.("href"))) return false;
  const role = target.getAttribute?.("role");
  return !(role && OWN_SPACE_ROLES.has(role));
}

const isSpace = (event) => event.code === "Space" || event.key === " ";
const reason = (error) => String((error && error.message) || error || "no answer");

export class PushToTalk {
  /**
   * @param {object} options
   * @param {HTMLElement} options.group the block of the switch and the button (data-ptt="on"|"off")
   * @param {HTMLInputElement} options.toggle the "Push to talk" switch
   * @param {HTMLButtonElement} options.hold the "Hold to talk" button (its label: .ptt-label)
   * @param {(method: string, payload: string) => Promise<string>} options.call RPC to the agent
   * @param {(state: object) => void} [options.changed] each change of state
   * @param {(text: string) => void} [options.note] says what went wrong
   */
  constructor({ group, toggle, hold, call, changed = () => {}, note = () => {} }) {
    Object.assign(this, { group, toggle, hold, call, changed, note });
    this.label = hold.querySelector(".ptt-label") || hold;
    this.wanted = recall(STORAGE_KEY) === "on"; // the person's choice
    this.live = false; // a conversation with a microphone is live
    this.enabled = false; // the agent said push-to-talk is on
    this.switching = false; // a set_mode call is under way
    this.held = false; // the person holds the key or the button
    this.heldBy = null; // "key" | "pointer" | "click"
    this.talking = false; // the agent said it hears the held microphone
    this.keyReleasedAt = 0;
    this.queue = Promise.resolve(); // calls go one after the other, in order
    this.listen();
    this.render();
  }

  get state() {
    const { wanted, live, enabled, switching, held, talking } = this;
    return { wanted, live, enabled, switching, held, talking };
  }

  /** A conversation with a microphone went live (true) or ended (false). */
  setLive(live) {
    if (live === this.live) return;
    this.live = live;
    if (live) {
      this.sync();
      return;
    }
    Object.assign(this, { enabled: false, switching: false, held: false, heldBy: null, talking: false });
    this.queue = Promise.resolve();
    this.render();
  }

  /** The person flipped the switch. */
  async choose(on) {
    this.wanted = on;
    remember(STORAGE_KEY, on ? "on" : "off"); // if storage is refused, it still applies to this conversation
    await this.sync();
    if (this.live && this.enabled && on) this.hold.focus(); // Space talks from here
  }

  /** Bring the agent to the person's choice. */
  async sync() {
    if (!this.live || this.enabled === this.wanted || this.switching) return this.render();
    const wanted = this.wanted;
    if (!wanted) Object.assign(this, { held: false, heldBy: null, talking: false }); // off ends the hold
    this.switching = true;
    this.render();
    try {
      this.enabled = (await this.send(METHODS.setMode, { enabled: wanted })).enabled === true;
    } catch (error) {
      if (this.live) this.note(`Push to talk could not be switched ${wanted ? "on" : "off"}: ${reason(error)}`);
      this.wanted = this.enabled;
    }
    this.switching = false;
    this.render();
  }

  press(by) {
    if (!this.live || !this.enabled || this.switching || this.held) return;
    Object.assign(this, { held: true, heldBy: by, talking: false });
    this.render();
    this.send(METHODS.start).then(
      (state) => {
        if (this.held) this.talking = state.held === true;
        this.render();
      },
      (error) => {
        Object.assign(this, { held: false, heldBy: null, talking: false });
        this.render();
        if (this.live) this.note(`Push to talk did not start: ${reason(error)}`);
      },
    );
  }

  /** Let go: the agent answers what was said (`cancel`: it is dropped). */
  release({ cancel = false } = {}) {
    if (!this.held) return;
    if (this.heldBy === "key") this.keyReleasedAt = Date.now();
    Object.assign(this, { held: false, heldBy: null, talking: false });
    this.render();
    this.send(cancel ? METHODS.cancel : METHODS.end).catch((error) => {
      if (this.live) this.note(`Push to talk did not send your turn: ${reason(error)}`);
    });
  }

  send(method, body) {
    const answer = this.queue.then(() => this.call(method, body === undefined ? "" : JSON.stringify(body)));
    this.queue = answer.catch(() => {});
    return answer.then((text) => JSON.parse(text));
  }

  render() {
    const on = this.live ? this.enabled : this.wanted;
    this.group.dataset.ptt = on ? "on" : "off";
    this.toggle.checked = this.wanted;
    this.toggle.disabled = this.switching;
    this.toggle.setAttribute("aria-busy", String(this.switching));
    this.hold.disabled = !(this.live && this.enabled);
    this.hold.setAttribute("aria-pressed", String(this.held));
    this.hold.dataset.talking = String(this.talking);
    this.label.textContent = this.talking ? LABELS.talking : this.held ? LABELS.waiting : LABELS.idle;
    this.changed(this.state);
  }

  listen() {
    const { hold } = this;
    this.toggle.addEventListener("change", () => this.choose(this.toggle.checked));
    hold.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || hold.disabled) return;
      event.preventDefault(); // no text selection, no focus theft: the press is the gesture
      hold.setPointerCapture?.(event.pointerId);
      this.press("pointer");
    });
    for (const name of ["pointerup", "pointercancel", "lostpointercapture", "pointerleave"]) {
      hold.addEventListener(name, () => { if (this.heldBy === "pointer") this.release(); });
    }
    hold.addEventListener("contextmenu", (event) => event.preventDefault()); // a long touch
    // A click from no pointer and no held Space (Enter, a screen reader): one starts, the next sends.
    hold.addEventListener("click", (event) => {
      if (event.detail !== 0 || this.heldBy === "key" || Date.now() - this.keyReleasedAt < 500) return;
      if (this.held) this.release();
      else this.press("click");
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.held) {
        this.release({ cancel: true });
        return;
      }
      if (!isSpace(event) || event.ctrlKey || event.metaKey || event.altKey) return;
      if (!this.live || !this.enabled || !spaceIsForTalking(event.target, hold)) return;
      event.preventDefault(); // no scrolling, no click of the focused button
      if (!event.repeat) this.press("key");
    });
    document.addEventListener("keyup", (event) => {
      if (!isSpace(event) || this.heldBy !== "key") return;
      event.preventDefault();
      this.release();
    });
    // The key or the pointer let go where the page cannot see it: the turn is sent.
    window.addEventListener("blur", () => this.release());
    document.addEventListener("visibilitychange", () => { if (document.hidden) this.release(); });
  }
}
