// Why joining the LiveKit room failed, in the page's error kinds (errors.js). livekit-client
// rejects Room.connect() with a ConnectionError whose numeric `reason` says why; its message
// (and HTTP status, if any) is kept as the error's detail. No LiveKit import: pure, so Node
// tests it with the library's real errors.
import { UiError } from "./errors.js";

// livekit-client's ConnectionErrorReason, by number. (Its `reasonName` is not reliable: the
// client copies an inner error's `reason` onto the error it throws, not the name.)
export const REASONS = [
  "NotAllowed", "ServerUnreachable", "InternalError", "Cancelled", "LeaveRequest", "Timeout", "WebSocket",
  "ServiceNotFound",
];

// reason → the page's kind, and what happened (`url`: the LiveKit server's address).
const BY_REASON = {
  // The server answered 401/403 (the room pass was refused) or 404 "room does not exist".
  NotAllowed: ["livekit_refused", () => "The media server did not accept this page’s room pass."],
  // Nothing answered: connection refused, DNS, no route.
  ServerUnreachable: ["livekit_down", (url) => `No connection to the LiveKit server at ${url}.`],
  // The server answers HTTP, but the WebSocket to it failed (a proxy or firewall in between).
  WebSocket: ["livekit_down", (url) => `The LiveKit server at ${url} answers, but its WebSocket connection failed.`],
  Timeout: ["livekit_timeout", (url) => `The LiveKit server at ${url} did not answer in time.`],
  // Signalling worked but the call could not be set up (often the audio connection: ICE).
  InternalError: ["livekit_failed", () => "The media server answered, but the call’s connection could not be set up."],
  LeaveRequest: ["livekit_left", () => "The media server told this page to leave while it was joining the room."],
  Cancelled: ["connection_lost", () => "The connection to the media server was cancelled before it was ready."],
  ServiceNotFound: ["livekit_incompatible", (url) => `The server at ${url} does not offer the connection this page’s LiveKit client uses.`],
};

// What livekit-client throws, before any connection, in a browser without WebRTC.
const UNSUPPORTED = /doesn't seem to be supported on this browser|WebRTC isn't detected/i;

/** The library's own words, for the error's small print. */
function detailOf(error) {
  const message = String((error && error.message) || error || "").trim();
  const status = error && Number.isInteger(error.status) ? ` (HTTP ${error.status})` : "";
  return message ? `LiveKit client: ${message}${status}` : "";
}

/**
 * The UiError for a failed Room.connect(`url`).
 * @param {unknown} error what livekit-client threw
 * @param {string} url the LiveKit server's address
 * @param {() => UiError} [unsupported] the browser_unsupported error, if the library says so
 */
export function connectError(error, url, unsupported = null) {
  if (error instanceof UiError) return error;
  const detail = detailOf(error);
  const isConnectionError = error && error.name === "ConnectionError" && Number.isInteger(error.reason);
  if (!isConnectionError && UNSUPPORTED.test(String(error && error.message))) {
    const unsupportedError = unsupported ? unsupported() : new UiError("browser_unsupported", "This browser has no WebRTC, which calls need.");
    unsupportedError.detail = detail;
    return unsupportedError;
  }
  const known = isConnectionError ? BY_REASON[REASONS[error.reason]] : null;
  const [kind, message] = known || ["livekit_failed", () => "Joining the media server’s room failed."];
  return new UiError(kind, message(url), { detail });
}
