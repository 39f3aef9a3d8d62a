// After "too many attempts" with a Retry-After, the chat page's Start waits that long and then
// comes back by itself (errors.js tells the person so).

export class StartHold {
  /**
   * @param {object} options
   * @param {() => void} options.changed the hold began or ended: Start is to be shown again
   * @param {() => void} options.ended the hold ended by itself
   */
  constructor({ changed, ended }) {
    Object.assign(this, { changed, ended });
    this.until = 0;
    this.timer = null;
  }

  /** Whether Start must wait still. */
  get holding() {
    return Date.now() < this.until;
  }

  /** Hold Start for `seconds` from now (replacing a hold under way). */
  hold(seconds) {
    clearTimeout(this.timer);
    this.until = Date.now() + seconds * 1000;
    this.changed();
    this.timer = setTimeout(() => {
      this.until = 0;
      this.changed();
      this.ended();
    }, seconds * 1000);
  }
}
