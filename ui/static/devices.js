// Choosing the microphone and the speaker: a <select> per kind, filled from the browser's
// device list and refilled when devices appear or disappear (the `devicechange` event).
// When the chosen device disappears, the choice falls back to the default one.
// The pure functions at the top hold the rules (and are unit-tested without a browser).

export const DEFAULT_DEVICE = "default";
const NOUN = { audioinput: "Microphone", audiooutput: "Speaker" };

/**
 * The choices for `kind` from enumerateDevices() entries: [{id, label}]. Before the page may
 * use the microphone, browsers hide ids and names: then there is one choice, the default.
 */
export function deviceOptions(devices, kind) {
  const listed = devices.filter((device) => device.kind === kind && device.deviceId);
  if (!listed.length) return [{ id: "", label: `Default ${NOUN[kind].toLowerCase()}` }];
  let unnamed = 0;
  return listed.map((device) => ({
    id: device.deviceId,
    label: device.label || (device.deviceId === DEFAULT_DEVICE ? "Default" : `${NOUN[kind]} ${++unnamed}`),
  }));
}

/**
 * What to use after the device list changed: the chosen device while it is still there,
 * otherwise the default (or the first listed). `fellBack` says the chosen one went away.
 */
export function keepOrFallBack(options, chosen) {
  if (options.some((option) => option.id === chosen)) return { id: chosen, fellBack: false };
  const fallback = options.find((option) => option.id === DEFAULT_DEVICE) || options[0];
  return { id: fallback ? fallback.id : "", fellBack: Boolean(chosen) };
}

/** One <select> of devices of one kind. */
export class DevicePicker {
  /**
   * @param {{select: HTMLSelectElement, kind: "audioinput"|"audiooutput",
   *          choose: (id: string, why: "person"|"fallback") => void}} options
   *   `choose` is called when the person picks a device, and when the chosen one went away.
   */
  constructor({ select, kind, choose }) {
    this.select = select;
    this.kind = kind;
    this.choose = choose;
    this.chosen = "";
    select.addEventListener("change", () => {
      this.chosen = select.value;
      this.choose(this.chosen, "person");
    });
  }

  /** The device to use ("" for the browser's default). */
  get value() {
    return this.chosen;
  }

  set disabled(value) {
    this.select.disabled = value;
  }

  /** Show what `devices` (enumerateDevices()) offers; fall back if the choice is gone. */
  update(devices) {
    const options = deviceOptions(devices, this.kind);
    const { id, fellBack } = keepOrFallBack(options, this.chosen);
    this.select.replaceChildren(...options.map((option) => new Option(option.label, option.id)));
    this.select.value = id;
    const wasChosen = this.chosen;
    this.chosen = id;
    if (fellBack && wasChosen !== id) this.choose(id, "fallback");
    return options;
  }
}

/**
 * The chat page's two pickers, the microphone and the speaker, kept up to date with the
 * browser's devices. A choice (the person's, or a fallback when the chosen device went away:
 * said in the note) is used at once in a live conversation, else at the next Start.
 */
export class DeviceChoices {
  /**
   * @param {object} options
   * @param {HTMLSelectElement} options.microphone
   * @param {HTMLSelectElement} options.speaker
   * @param {HTMLElement} options.speakerField hidden where the browser cannot choose a speaker
   * @param {boolean} options.canChooseSpeaker whether it can (HTMLMediaElement.setSinkId)
   * @param {(kind: string, id: string) => Promise<unknown>|null} options.use switches the live
   *   conversation to the device (null: no conversation to switch)
   * @param {(text: string) => void} options.note says what happened to the choice
   * @param {{devices: object, deviceNotices: string[], inputDevice: string, outputDevice: string}} options.shown
   *   where the lists, the choices and the notices are recorded (window.voiceAgent)
   */
  constructor({ microphone, speaker, speakerField, canChooseSpeaker, use, note, shown }) {
    Object.assign(this, { canChooseSpeaker, use, note, shown });
    const picker = (select, kind) => new DevicePicker({ select, kind, choose: (id, why) => this.chose(kind, id, why) });
    this.pickers = { audioinput: picker(microphone, "audioinput"), audiooutput: picker(speaker, "audiooutput") };
    speakerField.hidden = !canChooseSpeaker;
  }

  /** The devices to start a conversation with ("" for the browser's default). */
  get chosen() {
    const { audioinput, audiooutput } = this.pickers;
    return { microphone: audioinput.value, speaker: this.canChooseSpeaker ? audiooutput.value : "" };
  }

  /** List the browser's devices again (they changed, or the browser now names them). */
  async refresh() {
    const devices = await listDevices();
    for (const [kind, picker] of Object.entries(this.pickers)) this.shown.devices[kind] = picker.update(devices);
  }

  /** Keep the lists up to date from now on, starting now. */
  watch() {
    watchDevices(() => this.refresh());
    return this.refresh();
  }

  /** The person chose a device, or the chosen one went away: use it now if live, else at Start. */
  async chose(kind, id, why) {
    this.shown[kind === "audioinput" ? "inputDevice" : "outputDevice"] = id;
    const select = this.pickers[kind].select;
    const label = select.selectedOptions[0] ? select.selectedOptions[0].textContent : id;
    if (why === "fallback") {
      const text = `The ${NOUN[kind].toLowerCase()} you chose was disconnected: using “${label}”.`;
      this.shown.deviceNotices.push(text);
      this.note(text);
    }
    const switching = this.use(kind, id);
    if (!switching) return;
    try {
      await switching;
    } catch (error) {
      console.warn("device", error);
      this.note(`Could not switch to the ${NOUN[kind].toLowerCase()} “${label}”.`);
    }
  }
}

/** The browser's devices now ([] where it has none to list). */
export async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return [];
  try {
    return await navigator.mediaDevices.enumerateDevices();
  } catch (e) {
    return [];
  }
}

/** Call `changed` whenever a device appears or disappears. */
export function watchDevices(changed) {
  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
    navigator.mediaDevices.addEventListener("devicechange", changed);
  }
}
