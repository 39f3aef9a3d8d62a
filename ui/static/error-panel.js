// The chat page's error panel: what went wrong (errors.js has the words), what to do, the
// small print, and the way out it offers ("Use a new room", "Continue with text only").
import { UiError, describe } from "./errors.js";

export class ErrorPanel {
  /**
   * @param {object} options
   * @param {HTMLElement} options.panel the panel (data-kind: the error's kind); its parts are
   *   found by class: .error-title, .error-message, .error-hint, .error-detail
   * @param {HTMLButtonElement} options.newRoom "Use a new room"
   * @param {HTMLButtonElement} options.textOnly "Continue with text only"
   * @param {(seconds: number) => void} options.retryAfter the service asked to wait before trying again
   * @param {(kind: string|null) => void} options.changed the kind of error shown (null: none)
   */
  constructor({ panel, newRoom, textOnly, retryAfter, changed }) {
    Object.assign(this, { panel, newRoom, textOnly, retryAfter, changed });
    const part = (name) => panel.querySelector(`.error-${name}`);
    this.parts = { title: part("title"), message: part("message"), hint: part("hint"), detail: part("detail") };
  }

  /** Show `error` (a UiError, or anything thrown: logged too); null hides the panel. */
  show(error) {
    if (!error) {
      this.changed(null);
      this.panel.hidden = true;
      this.newRoom.hidden = true;
      this.textOnly.hidden = true;
      return;
    }
    if (!(error instanceof UiError)) console.error(error);
    const shown = describe(error);
    const { title, message, hint, detail } = this.parts;
    this.changed(shown.kind);
    this.panel.dataset.kind = shown.kind;
    title.textContent = shown.title;
    message.textContent = shown.message;
    hint.textContent = shown.hint;
    detail.textContent = shown.detail;
    detail.hidden = !shown.detail;
    this.newRoom.hidden = !shown.offerNewRoom;
    this.textOnly.hidden = !shown.offerTextOnly;
    this.panel.hidden = false;
    if (shown.retryAfter) this.retryAfter(shown.retryAfter);
  }
}
