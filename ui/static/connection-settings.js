// The room and name fields: a fresh room and a remembered (or new) name per visitor,
// overridable by the query string (/chat?room=…&identity=…). Whether a value is valid is the
// inputs' own business: the server renders its rule into their `pattern` and `maxlength`.
import { UiError } from "./errors.js";
import { recall, remember } from "./storage.js";

const REMEMBERED = "voiceAgent.identity";

export const randomName = (prefix) => `${prefix}-${crypto.getRandomValues(new Uint32Array(1))[0].toString(36)}`;

export class ConnectionSettings {
  /** @param {{details: HTMLDetailsElement, room: HTMLInputElement, identity: HTMLInputElement, rule: HTMLElement}} el */
  constructor(el, params = new URLSearchParams(location.search)) {
    this.el = el;
    el.room.value = params.get("room") || randomName("room");
    if (params.get("identity")) {
      el.identity.value = params.get("identity"); // checked at Start, like anything typed
    } else {
      el.identity.value = recall(REMEMBERED) || "";
      if (!el.identity.value || !el.identity.validity.valid) el.identity.value = randomName("guest");
    }
    el.identity.addEventListener("change", () => {
      el.identity.value = el.identity.value.trim();
      if (el.identity.validity.valid) remember(REMEMBERED, el.identity.value);
    });
    for (const input of this.inputs) input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
  }

  get inputs() {
    return [this.el.room, this.el.identity];
  }

  /** The room and name to start with; a UiError (and the field marked and focused) if one is invalid. */
  read() {
    for (const input of this.inputs) {
      input.value = input.value.trim();
      if (!input.validity.valid) {
        input.setAttribute("aria-invalid", "true");
        this.el.details.open = true;
        input.focus();
        const label = input.labels[0].textContent.trim();
        throw new UiError("bad_settings", `${label}: ${this.el.rule.textContent.trim()}`);
      }
    }
    return { room: this.el.room.value, identity: this.el.identity.value };
  }

  newRoom() {
    this.el.room.value = randomName("room");
    this.el.room.removeAttribute("aria-invalid");
    return this.el.room.value;
  }

  set disabled(value) {
    for (const input of this.inputs) input.disabled = value;
  }
}
