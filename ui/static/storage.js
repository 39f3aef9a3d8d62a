// What the page remembers in this browser (localStorage), where the browser lets it: with
// storage refused (private mode, privacy settings) nothing is remembered and nothing fails.

/** The value stored under `key`, or null (nothing stored, or storage refused). */
export function recall(key) {
  try {
    return globalThis.localStorage?.getItem(key) ?? null;
  } catch {
    return null;
  }
}

/** Store `value` under `key`; if the browser refuses, it is not remembered (it still applies now). */
export function remember(key, value) {
  try {
    globalThis.localStorage?.setItem(key, value);
  } catch {
    // storage refused: nothing to remember
  }
}
