// A reply's latency in words: the time from the end of the person's turn (their speech, or
// the typed message) to the agent's first audio, and its parts from the session's metrics.
// Shown discreetly under each agent reply, live and in history.

// The parts of a latency, as the socket sends them (each null when it does not apply).
const PARTS = [
  ["end_of_turn_ms", "turn", "waiting for the end of your turn"],
  ["stt_ms", "stt", "speech to text"],
  ["llm_ms", "llm", "the language model's first words"],
  ["tts_ms", "tts", "text to speech, first audio"],
];

const isMs = (value) => typeof value === "number" && Number.isFinite(value) && value >= 0;

/** Milliseconds as seconds with two decimals: 1234 → "1.23". */
export const seconds = (ms) => (ms / 1000).toFixed(2);

/** "1.23 s · turn 0.55 · stt 0.10 · llm 0.30 · tts 0.28" ("" when there is no latency). */
export function formatLatency(latency) {
  if (!latency || !isMs(latency.total_ms)) return "";
  const parts = PARTS.filter(([key]) => isMs(latency[key])).map(([key, short]) => `${short} ${seconds(latency[key])}`);
  return [`${seconds(latency.total_ms)} s`, ...parts].join(" · ");
}

/** The same in full words, for the tooltip and screen readers. */
export function describeLatency(latency) {
  if (!latency || !isMs(latency.total_ms)) return "";
  const parts = PARTS.filter(([key]) => isMs(latency[key])).map(([key, , long]) => `${long} ${seconds(latency[key])} s`);
  const said = `The agent started answering ${seconds(latency.total_ms)} s after your turn ended`;
  return parts.length ? `${said} (${parts.join(", ")}).` : `${said}.`;
}
