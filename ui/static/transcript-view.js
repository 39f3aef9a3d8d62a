// The transcript on screen: final lines appended, the interim line updated in place, and a
// scroll box that follows the newest line unless the reader has scrolled up (then a
// "Jump to latest" button appears instead of pulling them down).
const NEAR_BOTTOM_PX = 48;

/** One line of a transcript: who spoke, then what they said. */
export function lineParts(role, text) {
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role === "agent" ? "Agent" : "You";
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  return [who, body];
}

/** A final line as a list item (the live page and the history page show lines alike). */
export function lineItem(role, text) {
  const item = document.createElement("li");
  const side = role === "agent" ? "agent" : "user";
  item.className = `line ${side}`;
  item.dataset.role = side;
  item.append(...lineParts(side, text));
  return item;
}

export class TranscriptView {
  /** @param {{scroller: HTMLElement, list: HTMLElement, empty: HTMLElement, interim: HTMLElement, jump: HTMLElement}} el */
  constructor(el) {
    this.el = el;
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

  /** Append a final line; follow it if the reader was at the bottom, else offer the jump. */
  append(role, text) {
    const follow = this.nearBottom();
    this.el.empty.hidden = true;
    this.el.list.append(lineItem(role, text));
    if (follow) this.scrollToEnd();
    else this.el.jump.hidden = false; // the reader scrolled up: tell them, don't yank them
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

  clear() {
    this.el.list.replaceChildren();
    this.setInterim("");
    this.el.empty.hidden = false;
    this.el.jump.hidden = true;
  }
}
