// The voice service's HTTP API, as the pages use it: where it lives, JSON in and out, and
// how its errors (`{"error": {"code", "message"}}`), HTTP statuses and network failures
// become the error kinds the page explains (errors.js). The service knows this browser by
// its visitor cookie, so every request carries it: only this visitor's sessions are shown.
import { UiError, isKnownKind } from "./errors.js";

// When an answer has no code the page knows (a proxy's error page, say), its status decides.
const KIND_BY_STATUS = {
  400: "invalid_request",
  403: "forbidden",
  404: "not_found",
  409: "room_busy",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "rate_limited",
  500: "internal_error",
  502: "backend_down", // a proxy in front of the service got no answer from it
  503: "service_unavailable",
  504: "backend_down",
};

/** The error kind for an API answer: its code when the page has words for it, else its status. */
export function errorKind(status, code) {
  if (code && isKnownKind(code)) return code;
  return KIND_BY_STATUS[status] || (status >= 500 ? "internal_error" : "unexpected");
}

/** Retry-After in whole seconds (it may also be an HTTP date), or null when absent or unreadable. */
export function retryAfterSeconds(header, now = Date.now()) {
  if (!header) return null;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Math.max(1, parseInt(value, 10));
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(1, Math.ceil((date - now) / 1000));
}

export class Api {
  /** @param {string} baseUrl the backend's origin, or "" when it shares the page's origin */
  constructor(baseUrl) {
    this.base = (baseUrl || "").replace(/\/+$/, "");
    this.label = this.base || location.origin; // how the page names the service to people
  }

  /** The page's configured API, from `<body data-backend-url>`. */
  static fromPage() {
    return new Api(document.body.dataset.backendUrl || "");
  }

  /**
   * One JSON request. Resolves to the answer's JSON (null for 204); rejects with a UiError.
   * @param {string} path e.g. "/session", appended to the backend's URL
   */
  async request(path, { method = "GET", body, keepalive = false } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      // credentials: the visitor cookie goes with every request, also to an API on another
      // port or origin (it allows this page's origin with credentials); its answers may set it.
      response = await fetch(this.base + path, {
        method, headers, keepalive, credentials: "include",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new UiError("backend_down", `No answer from ${this.label}.`);
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) throw this.answerError(response, data);
    return data;
  }

  answerError(response, data) {
    const error = (data && typeof data.error === "object" && data.error) || {};
    const code = typeof error.code === "string" ? error.code : null;
    const serverMessage = typeof error.message === "string" ? error.message : null;
    const kind = errorKind(response.status, code);
    const retryAfter = response.status === 429 ? retryAfterSeconds(response.headers.get("Retry-After")) : null;
    const message = serverMessage || `The voice service answered with HTTP ${response.status}.`;
    return new UiError(kind, message, { status: response.status, code, serverMessage, retryAfter });
  }

  // ---- the endpoints the pages use ----
  token(room, identity) {
    return this.request(`/token?${new URLSearchParams({ room, identity })}`);
  }

  createSession(room, identity) {
    return this.request("/session", { method: "POST", body: { room, identity } });
  }

  deleteSession(sessionId, { keepalive = false } = {}) {
    return this.request(`/session/${encodeURIComponent(sessionId)}`, { method: "DELETE", keepalive });
  }

  /** GET /transcripts with the given query (limit/offset): `{count, next, previous, results}`. */
  sessions(query) {
    const search = new URLSearchParams(query).toString();
    return this.request(`/transcripts${search ? `?${search}` : ""}`);
  }

  transcript(sessionId) {
    return this.request(`/transcripts/${encodeURIComponent(sessionId)}`);
  }

  /** Where to download a conversation: `format` "json" (lines, times, latencies) or "vtt"
   * (WebVTT captions). A plain link: the visitor cookie goes with the navigation. */
  exportUrl(sessionId, format) {
    return `${this.base}/transcripts/${encodeURIComponent(sessionId)}/export.${format}`;
  }

  /** The WebSocket URL for a path the API returned (POST /session's `ws_path`). */
  socketUrl(wsPath) {
    const url = new URL(this.base + wsPath, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }
}
