// Before Start: what could spoil a call, each problem with its fix, in a small panel under
// the controls (nothing shown when all is well). Checked when the page loads and again when the
// person may have fixed something: the microphone's permission changes, the page comes back
// into view or focus, the first click or key (it may unblock sound).
//
// - the browser: can it make calls at all (browser-support.js)? If not, Start is disabled
//   with the reason, and no text-only conversation is offered (typing uses the same connection);
// - the microphone's permission (Permissions API, where the browser knows "microphone"):
//   "denied" is a problem; "prompt" is not (the browser asks at Start);
// - sound: navigator.getAutoplayPolicy("mediaelement") where it exists (Firefox); elsewhere
//   unknown, and the page's "Click to hear the agent" button covers it when it happens.
import { browserSupport, unsupportedError, unsupportedMessage } from "./browser-support.js";
import { WHAT_TO_USE } from "./errors.js";

/**
 * The problems, most serious first, for what the checks found (pure: Node tests it).
 * @param {{support: ReturnType<typeof browserSupport>, microphone: string, autoplay: string}} found
 * @returns {{check: string, severity: "block"|"warn"|"info", title: string, fix: string}[]}
 */
export function problems({ support, microphone, autoplay }) {
  if (!support.canCall) {
    return [{ check: "browser", severity: "block", title: "This browser cannot make calls",
      fix: `${unsupportedMessage(support)} ${WHAT_TO_USE}` }];
  }
  const found = [];
  if (support.insecure) {
    found.push({ check: "microphone", severity: "warn", title: "No microphone on this address",
      fix: "Browsers give a microphone only to pages on HTTPS or localhost: open the page at such an address. You can still type to the agent." });
  } else if (support.missing.some((f) => f.key === "microphone")) {
    found.push({ check: "microphone", severity: "warn", title: "This browser offers no microphone",
      fix: `You can still type to the agent. To talk: ${WHAT_TO_USE}` });
  } else if (microphone === "denied") {
    found.push({ check: "microphone", severity: "warn", title: "Microphone blocked",
      fix: "Allow the microphone for this site (the icon at the left of the address bar), then reload the page. Or type to the agent instead." });
  }
  if (autoplay === "disallowed" || autoplay === "allowed-muted") {
    found.push({ check: "autoplay", severity: "info", title: "Sound may be blocked until you click",
      fix: "The page will ask: press “Click to hear the agent” when it appears." });
  }
  return found;
}

/** The microphone's PermissionStatus, or null where the browser cannot say (Firefox before 131: TypeError). */
async function microphonePermission() {
  try {
    return await navigator.permissions.query({ name: "microphone" });
  } catch (e) {
    return null;
  }
}

/** "allowed" | "allowed-muted" | "disallowed", or "unknown" where the browser has no getAutoplayPolicy. */
function autoplayPolicy() {
  try {
    return typeof navigator.getAutoplayPolicy === "function" ? navigator.getAutoplayPolicy("mediaelement") : "unknown";
  } catch (e) {
    return "unknown";
  }
}

export class Preflight {
  /**
   * @param {object} options
   * @param {HTMLElement} options.panel shown when there is a problem
   * @param {HTMLElement} options.list where the problems go, one <li> each
   * @param {HTMLButtonElement} options.start described by the panel while the browser blocks it
   * @param {() => Promise<boolean|null>} options.livekitSupported livekit-client's verdict
   * @param {(result: object) => void} options.changed after every check
   */
  constructor({ panel, list, start, livekitSupported, changed }) {
    Object.assign(this, { panel, list, start, livekitSupported, changed });
    this.livekit = null;
    this.asking = null; // the microphone's permission, asked once
    this.permission = null;
    // The features are known at once: Start is disabled from the first paint in a browser that cannot call.
    this.result = this.evaluate(false);
  }

  /** Whether Start must stay disabled (the browser cannot make calls). */
  get blocksStart() {
    return !this.result.canCall;
  }

  /** The error for a start tried anyway (the settings form's Enter). */
  error() {
    return unsupportedError(this.result.support);
  }

  evaluate(done) {
    const support = browserSupport(globalThis, this.livekit);
    const microphone = this.permission ? this.permission.state : "unknown";
    const autoplay = autoplayPolicy();
    return {
      done, support, canCall: support.canCall, missing: support.missing.map((f) => f.key),
      livekit: this.livekit, microphone, autoplay, problems: problems({ support, microphone, autoplay }),
    };
  }

  /** Check everything, show it; resolves to the result. */
  async run() {
    this.asking = this.asking || microphonePermission().then((status) => {
      status?.addEventListener("change", () => this.run());
      return status;
    });
    this.permission = await this.asking;
    if (this.livekit === null) this.livekit = await this.livekitSupported().catch(() => null);
    this.result = this.evaluate(true);
    this.show(this.result);
    return this.result;
  }

  /** Run now, and again whenever the person may have fixed something. */
  watch() {
    const again = () => { this.run(); };
    document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") again(); });
    window.addEventListener("focus", again);
    for (const type of ["pointerdown", "keydown"]) window.addEventListener(type, again, { once: true, capture: true });
    this.show(this.result);
    return this.run();
  }

  show(result) {
    this.list.replaceChildren(...result.problems.map((problem) => {
      const item = document.createElement("li");
      item.className = "preflight-item";
      item.dataset.check = problem.check;
      item.dataset.severity = problem.severity;
      const title = document.createElement("strong");
      title.className = "preflight-problem";
      title.textContent = problem.title;
      const fix = document.createElement("span");
      fix.className = "preflight-fix";
      fix.textContent = problem.fix;
      item.append(title, " — ", fix);
      return item;
    }));
    this.panel.hidden = result.problems.length === 0;
    this.panel.dataset.blocked = String(!result.canCall);
    if (result.canCall) this.start.removeAttribute("aria-describedby");
    else this.start.setAttribute("aria-describedby", this.panel.id);
    this.changed(result);
  }
}
