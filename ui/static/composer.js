// The chat page's text box: typing to the agent during a live conversation (it answers aloud
// and in writing), and the note under it, which says what became of a message (and of other
// choices on the page: a device, push to talk).

export class Composer {
  /**
   * @param {object} options
   * @param {HTMLFormElement} options.form
   * @param {HTMLInputElement} options.text
   * @param {HTMLButtonElement} options.send
   * @param {HTMLElement} options.note
   * @param {(text: string) => Promise<void>} options.sendText sends it to the agent; rejects if it could not
   * @param {string[]} options.sent the texts sent, in order (window.voiceAgent.sentTexts)
   */
  constructor({ form, text, send, note, sendText, sent }) {
    Object.assign(this, { text, sendButton: send, noteNode: note, sendText, sent });
    this.live = false;
    this.sending = false;
    form.addEventListener("submit", (event) => this.submit(event));
  }

  /** Say `text` under the text box ("" clears it). */
  note(text) {
    this.noteNode.textContent = text;
  }

  /** Whether a conversation is live: only then can the person type. */
  setLive(live) {
    this.live = live;
    this.render();
  }

  render() {
    this.text.disabled = !this.live;
    this.sendButton.disabled = !this.live || this.sending;
    this.text.placeholder = this.live ? "Type a message to the agent…" : "Press Start, then speak or type…";
  }

  async submit(event) {
    event.preventDefault();
    const text = this.text.value.trim();
    if (!text || this.sending || !this.live) return;
    this.sending = true;
    this.render();
    try {
      await this.sendText(text);
      this.sent.push(text);
      this.text.value = "";
      this.note("Sent. The agent is answering.");
    } catch (error) {
      console.warn("send", error);
      this.note("The message was not sent. Check the connection, then send it again.");
    } finally {
      this.sending = false;
      this.render();
      if (this.live) this.text.focus();
    }
  }

  /** The agent refused a typed line (too long, too many): say why, and give the line back. */
  refused(error) {
    const last = this.sent[this.sent.length - 1];
    if (/^typed_/.test(error.code) && last && !this.text.value) this.text.value = last;
    this.note(String(error.message || "The agent did not take that message."));
  }
}
