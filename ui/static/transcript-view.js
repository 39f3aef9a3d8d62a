// The transcript on screen: final lines appended, the person's interim line updated in
// place, the agent's line written as it speaks (then made final), and a scroll box that
// follows the newest line unless the reader has scrolled up (then a "Jump to latest" button
// appears instead of pulling them down).
import { describeLatency, formatLatency } from "./latency.js";

const NEAR_BOTTOM_PX = 48;
// An interim line that is neither updated nor replaced by a final for this long was not
// taken as words (noise, a cough): it goes away instead of lingering on screen.
const INTERIM_LINGER_MS = 3000;

/** A line's added keys, from a transcript message or a history entry: {typed, interrupted, latency}. */
export const lineDetails = (message) => ({
  typed: message.typed === true, interrupted: message.interrupted === true, latency: message.latency || null,
});

/** One line of a transcript: who spoke (and whether they typed it), then what they said. */
export function lineParts(role, text, { typed = false } = {}) {
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role === "agent" ? "Agent" : "You";
  if (typed) {
    const tag = document.createElement("span");
    tag.className = "tag typed";
    tag.textContent = "typed";
    who.append(" ", tag);
  }
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  return [who, body];
}

/**
 * What follows an agent line: "— interrupted" when the person cut it off (its text is then
 * what was actually said), and the reply's latency, discreetly.
 */
export function lineNotes({ interrupted = false, latency = null } = {}) {
  const notes = [];
  if (interrupted) {
    const mark = document.createElement("span");
    mark.className = "mark interrupted";
    mark.textContent = "— interrupted";
    notes.push(mark);
  }
  const shown = formatLatency(latency);
  if (shown) {
    const small = document.createElement("small");
    small.className = "latency";
    small.textContent = shown;
    small.title = describeLatency(latency);
    notes.push(small);
  }
  return notes;
}

/**
 * A final line as a list item (the live page and the history page show lines alike).
 * `details`: the message's added keys, {typed, interrupted, latency}.
 */
export function lineItem(role, text, details = {}) {
  const item = document.createElement("li");
  const side = role === "agent" ? "agent" : "user";
  item.className = `line ${side}`;
  item.dataset.role = side;
  if (details.typed) item.dataset.typed = "true";
  if (details.interrupted) item.dataset.interrupted = "true";
  item.append(...lineParts(side, text, details), ...lineNotes(details));
  return item;
}

export class TranscriptView {
  /** @param {{scroller: HTMLElement, list: HTMLElement, empty: HTMLElement, interim: HTMLElement, jump: HTMLElement}} el */
  constructor(el) {
    this.el = el;
    this.agentLine = null; // the agent's line while it speaks, until its final replaces it
    this.interimExpiry = null;
    el.scroller.addEventListener("scroll", () => { if (this.nearBottom()) el.jump.hidden = true; }, { passive: true });
    el.jump.addEventListener("click", () => {
      this.scrollToEnd();
      el.jump.hidden = true;
      el.scroller.focus({ preventScroll: true });
    });
    this.setInterim("");
  }

  nearBottom() {
    const s = this.el.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToEnd() {
    this.el.scroller.scrollTop = this.el.scroller.scrollHeight;
  }

  /** Add a line at the end; follow it if the reader was at the bottom, else offer the jump. */
  add(item, replacing = null) {
    const follow = this.nearBottom();
    this.el.empty.hidden = true;
    if (replacing && replacing.isConnected) replacing.replaceWith(item);
    else this.el.list.append(item);
    if (follow) this.scrollToEnd();
    else this.el.jump.hidden = false; // the reader scrolled up: tell them, don't yank them
  }

  /** A final line (`details`: typed, interrupted, latency). An agent final replaces the agent's live line. */
  append(role, text, details = {}) {
    const live = role === "agent" ? this.agentLine : null;
    this.agentLine = role === "agent" ? null : this.agentLine;
    this.add(lineItem(role, text, details), live);
  }

  /**
   * The agent's words so far, as it speaks them: one live line, updated in place until the
   * agent's final replaces it. Its class is `agent-live`, not `agent`: `.line.agent` are finals.
   */
  setAgentPartial(text) {
    if (!text) return;
    if (!this.agentLine || !this.agentLine.isConnected) {
      const item = document.createElement("li");
      item.className = "line agent-live";
      item.dataset.role = "agent";
      item.dataset.live = "true";
      item.append(...lineParts("agent", text));
      this.agentLine = item;
      this.add(item);
      return;
    }
    const follow = this.nearBottom();
    this.agentLine.querySelector(".text").textContent = text;
    if (follow) this.scrollToEnd();
  }

  /** The words being spoken now ("" clears them); the line keeps its space, so nothing jumps. */
  setInterim(text) {
    const follow = this.nearBottom();
    const interim = this.el.interim;
    if (text) {
      interim.replaceChildren(...lineParts("user", text));
      interim.dataset.active = "true";
      this.el.empty.hidden = true;
    } else {
      interim.replaceChildren();
      interim.dataset.active = "false";
    }
    if (follow) this.scrollToEnd();
  }

  /** An interim line from the socket: shown until updated, replaced, or INTERIM_LINGER_MS pass. */
  showInterim(text) {
    clearTimeout(this.interimExpiry);
    this.setInterim(text);
    if (text) this.interimExpiry = setTimeout(() => this.setInterim(""), INTERIM_LINGER_MS);
  }

  clear() {
    this.agentLine = null;
    this.el.list.replaceChildren();
    this.setInterim("");
    this.el.empty.hidden = false;
    this.el.jump.hidden = true;
  }
}
