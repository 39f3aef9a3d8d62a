// The chat page's Mute button and the microphone state it stands for: on, muted, or none at
// all (a text-only conversation, where there is nothing to mute).

export class MuteButton {
  /**
   * @param {object} options
   * @param {HTMLButtonElement} options.button aria-pressed while muted; its label: .mute-label
   * @param {(muted: boolean) => Promise<boolean|null>} options.setMuted mutes or unmutes the live
   *   microphone; resolves to whether it is muted (null: no microphone)
   * @param {(state: {textOnly: boolean, muted: boolean, mic: "on"|"muted"|"off"}) => void} options.changed
   */
  constructor({ button, setMuted, changed }) {
    Object.assign(this, { button, setMuted, changed });
    this.textOnly = false;
    this.muted = false;
    button.addEventListener("click", () => this.toggle());
  }

  /** Show the microphone: muted or not, or none at all (`textOnly`). */
  show({ textOnly = this.textOnly, muted = false } = {}) {
    this.textOnly = textOnly;
    this.muted = muted && !textOnly;
    this.button.setAttribute("aria-pressed", String(this.muted));
    this.button.querySelector(".mute-label").textContent = this.muted ? "Unmute" : "Mute";
    this.changed({ textOnly, muted: this.muted, mic: textOnly ? "off" : this.muted ? "muted" : "on" });
  }

  /** Mute can be pressed in a live conversation that has a microphone. */
  setLive(live) {
    this.button.disabled = !live || this.textOnly;
  }

  async toggle() {
    const muted = await this.setMuted(!this.muted).catch((error) => {
      console.warn("mute", error);
      return null;
    });
    if (muted !== null) this.show({ muted });
  }
}
