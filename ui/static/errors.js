// What went wrong, in words a person can act on: one entry per error kind. A kind is
// either an error code of the voice service's API (the same name) or one the page
// finds itself (no network, no microphone, ...). `kind` is also exposed to tests.

/** An error the page knows how to explain. `message` is the specific detail. */
export class UiError extends Error {
  /**
   * @param {string} kind a key of TEXTS
   * @param {string} message what exactly happened (shown when the kind has no message of its own)
   * @param {{status?: number, code?: string, serverMessage?: string, retryAfter?: number|null,
   *          detail?: string}} [answer] the voice service's answer, for errors it returned;
   *   `detail`: small print of another origin (the LiveKit client's own message)
   */
  constructor(kind, message, answer = {}) {
    super(message);
    this.kind = kind;
    this.status = answer.status ?? null;
    this.code = answer.code ?? null;
    this.serverMessage = answer.serverMessage ?? null;
    this.retryAfter = answer.retryAfter ?? null;
    this.detail = answer.detail ?? "";
  }
}

/** Where calls work, for a browser that cannot make them. */
export const WHAT_TO_USE = "Use the latest Chrome or Edge, or a recent Firefox; on a Mac, iPhone or iPad, Safari works too.";

const seconds = (n) => (n === 1 ? "1 second" : `${n} seconds`);

// title: what happened, short. message: optional; without it the error's own message is shown.
// hint: what the person can do. newRoom: offer the "Use a new room" button. textOnly: offer
// a conversation by typing (no microphone needed; the agent still answers aloud).
const TEXTS = {
  // ---- found by the page ----
  bad_settings: {
    title: "Check the connection settings",
    hint: "Fix the highlighted field, then press Start again.",
  },
  backend_down: {
    title: "Can’t reach the voice service",
    hint: "Check that the backend is running (./dev.sh run starts everything), then press Start again.",
  },
  livekit_down: {
    title: "Can’t reach the media server",
    hint: "The LiveKit server may be stopped, or a firewall blocks it. Start it, then press Start again.",
  },
  livekit_refused: {
    title: "The media server refused the room pass",
    hint: "Press Start again for a new pass. If it keeps happening, the voice service and the media server do not share an API key and secret (LIVEKIT_API_KEY, LIVEKIT_API_SECRET), or their clocks differ: tell whoever runs the service.",
  },
  livekit_timeout: {
    title: "The media server did not answer in time",
    hint: "The network or the server may be slow or overloaded. Press Start to try again.",
  },
  livekit_failed: {
    title: "The call could not be set up",
    hint: "Press Start to try again. If it keeps happening, a firewall or VPN may block the call’s audio (LiveKit uses UDP, or TCP port 7881), or the media server has a problem: tell whoever runs the service.",
  },
  livekit_left: {
    title: "The media server closed the connection",
    hint: "The room may have just closed, or the same name joined from elsewhere. Press Start to try again.",
  },
  livekit_incompatible: {
    title: "The media server does not match this page",
    hint: "Check that LIVEKIT_URL points at a LiveKit server, and upgrade that server if it is old. Then press Start again.",
  },
  browser_unsupported: {
    title: "This browser cannot make calls",
    hint: `${WHAT_TO_USE} Typing to the agent uses the same connection, so it does not work here either.`,
  },
  mic_denied: {
    title: "Microphone access is blocked",
    hint: "Allow the microphone for this site (use the icon at the left of the address bar), then press Start again. Or type to the agent instead.",
    textOnly: true,
  },
  mic_missing: {
    title: "No microphone found",
    hint: "Connect a microphone, then press Start again. Or type to the agent instead.",
    textOnly: true,
  },
  mic_busy: {
    title: "The microphone is not available",
    hint: "Another application may be using it. Close that application, then press Start again. Or type to the agent instead.",
    textOnly: true,
  },
  connection_lost: { title: "The connection was lost", hint: "Press Start to begin a new conversation." },
  client_missing: {
    title: "The page did not load completely",
    hint: "The LiveKit client library is missing: run the setup command (./dev.sh setup), then reload.",
  },
  // ---- answered by the voice service (the API's error codes) ----
  invalid_request: {
    title: "The voice service refused the room or name",
    message: "It did not accept the room or name this page sent.",
    hint: "Open Connection settings, check both fields, then press Start again. If they look right, reload the page.",
  },
  parse_error: {
    title: "The voice service could not read the request",
    message: "What this page sent did not arrive as valid JSON.",
    hint: "Reload the page to get its current version, then press Start again.",
  },
  forbidden: {
    title: "The voice service refused this page",
    message: "It does not accept requests from this page as it is served now.",
    hint: "Open the page at the address the service expects, then reload. If it keeps happening, tell whoever runs the service.",
  },
  room_taken: {
    title: "This room name is taken",
    message: "Someone else is using this room name right now.",
    hint: "Use a new room (the button picks a free name), or choose another room under Connection settings.",
    newRoom: true,
  },
  identity_taken: {
    title: "This name belongs to someone else",
    message: "Another visitor used this name first, so this browser cannot use it.",
    hint: "Open Connection settings, choose another name, then press Start again.",
  },
  not_found: {
    title: "The voice service does not know this request",
    message: "The page asked the voice service for something it does not have.",
    hint: "Reload the page. If it keeps happening, the page may be talking to the wrong server (check BACKEND_URL).",
  },
  room_busy: {
    title: "This room is busy",
    message: "Someone is already talking to the agent in this room.",
    hint: "Use a new room, or wait for that conversation to end and press Start again.",
    newRoom: true,
  },
  payload_too_large: {
    title: "The request was too large",
    message: "The voice service refused a request from this page because it was too big.",
    hint: "Check that the room and name are short (Connection settings), reload the page, then press Start again.",
  },
  unsupported_media_type: {
    title: "The request was in the wrong format",
    message: "The voice service expected JSON from this page and got something else.",
    hint: "Reload the page to get its current version. A browser extension or proxy that rewrites requests can also cause this.",
  },
  rate_limited: {
    title: "Too many attempts",
    message: "The voice service limits how often one address may start conversations.",
    hint: (error) => (error.retryAfter
      ? `Wait ${seconds(error.retryAfter)}: the Start button comes back by itself, then press it again.`
      : "Wait a minute, then press Start again."),
  },
  too_many_sessions: {
    title: "Too many conversations at once",
    message: "You already have as many live conversations as the voice service allows.",
    hint: "Stop a conversation in another tab or window (or wait for it to end), then press Start again.",
  },
  internal_error: {
    title: "The voice service had a problem",
    message: "Something went wrong on the voice service’s side; it has been logged there.",
    hint: "Press Start to try again. If it keeps happening, tell whoever runs the service when it happened.",
  },
  service_unavailable: {
    title: "The agent is not available right now",
    message: "The voice service could not bring the agent into the room.",
    hint: "Wait a moment, then press Start again. If it keeps happening, check that the media server (LiveKit) is running.",
  },
  unexpected: {
    title: "Something went wrong",
    hint: "Press Start to try again. If it keeps happening, reload the page.",
  },
};

/** Whether the page has words for this kind (API codes without words fall back by status). */
export const isKnownKind = (kind) => Object.hasOwn(TEXTS, kind);

/**
 * Everything the error panel shows for `error` (a UiError, or anything thrown).
 * @returns {{kind: string, title: string, message: string, hint: string, detail: string,
 *            offerNewRoom: boolean, offerTextOnly: boolean, retryAfter: number|null}}
 */
export function describe(error) {
  const known = error instanceof UiError && isKnownKind(error.kind);
  const kind = known ? error.kind : "unexpected";
  const text = TEXTS[kind];
  const pick = (value) => (typeof value === "function" ? value(error) : value);
  let detail = "";
  if (known && error.status) {
    const said = error.serverMessage ? `: ${error.serverMessage}` : ".";
    detail = `The voice service answered HTTP ${error.status}${error.code ? ` (${error.code})` : ""}${said}`;
  } else if (known && error.detail) {
    detail = error.detail;
  } else if (!known) {
    detail = `Details: ${error}`;
  }
  return {
    kind,
    title: text.title,
    message: pick(text.message) || (known ? error.message : "The page met an error it did not expect."),
    hint: pick(text.hint),
    detail,
    offerNewRoom: Boolean(text.newRoom),
    offerTextOnly: Boolean(text.textOnly),
    retryAfter: known ? error.retryAfter : null,
  };
}
