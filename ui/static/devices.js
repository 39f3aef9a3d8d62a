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
