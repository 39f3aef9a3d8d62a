// History: the list of sessions (GET /transcripts, paginated by the API: `count`, `next`,
// `previous`, `results`) and one session's final transcript (GET /transcripts/{id}).
// The page size is the API's: this page passes ?limit/?offset through and builds its
// "Newer"/"Older" links from the API's own `previous`/`next`.
import { Api } from "./api.js";
import { UiError } from "./errors.js";
import { seconds } from "./latency.js";
import { lineDetails, lineItem } from "./transcript-view.js";

const $ = (id) => document.getElementById(id);
const api = Api.fromPage();
const PAGING = ["limit", "offset"];

// The statuses and end reasons the API sends (a session is created, then running, then ended).
const STATUS_LABEL = { created: "starting", running: "live", ended: "ended" };
const END_REASON_LABEL = {
  deleted: "", // stopped by the visitor: the usual end, nothing to add
  participant_left: "left the room",
  ws_timeout: "nobody watching",
  error: "error",
  shutdown: "server shut down",
};

const when = (iso) => {
  if (!iso) return "–";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
};
const length = (s) => {
  if (s == null) return "–";
  if (s < 60) return `${Math.round(s)} s`;
  const minutes = Math.floor(s / 60);
  return `${minutes} min ${Math.round(s - minutes * 60)} s`;
};
const statusLabel = (session) => {
  const label = STATUS_LABEL[session.status] || session.status || "–";
  const reason = session.end_reason ? END_REASON_LABEL[session.end_reason] ?? session.end_reason.replace(/_/g, " ") : "";
  return session.status === "ended" && reason ? `${label} (${reason})` : label;
};
const badge = (session) => {
  const span = document.createElement("span");
  span.className = `badge ${session.status || ""}`;
  span.textContent = statusLabel(session);
  return span;
};

function setStatus(node, state, text) {
  node.dataset.state = state;
  node.textContent = text;
}

/** This page's link for a page the API pointed to (its `next`/`previous`), or null. */
function pageLink(apiUrl) {
  if (!apiUrl) return null;
  const from = new URL(apiUrl, location.href).searchParams;
  const query = new URLSearchParams();
  for (const name of PAGING) if (from.has(name)) query.set(name, from.get(name));
  return `?${query}`;
}

function setLink(link, href) {
  if (href) {
    link.href = href;
    link.removeAttribute("aria-disabled");
  } else {
    link.removeAttribute("href");
    link.setAttribute("aria-disabled", "true");
  }
}

// ---- the list ---------------------------------------------------------------------------
async function loadList() {
  const status = $("history-status"), table = $("sessions");
  const asked = new URLSearchParams(location.search);
  const query = {};
  for (const name of PAGING) if (asked.has(name)) query[name] = asked.get(name);
  let page;
  try {
    page = await api.sessions(query);
  } catch (error) {
    const error400 = error instanceof UiError && error.status === 400;
    const box = $("history-error");
    if (error400) {
      // A hand-edited or stale link: say so, and offer the first page.
      box.querySelector(".error-title").textContent = "No such page of history";
      box.querySelector(".error-message").textContent = error.serverMessage || error.message;
      const first = document.createElement("a");
      first.href = location.pathname;
      first.textContent = "Show the newest conversations";
      box.querySelector(".error-hint").replaceChildren(first, ".");
    }
    setStatus(status, "error", error400 ? "No such page." : "History is unavailable.");
    box.hidden = false;
    return;
  }
  if (!page.count) {
    setStatus(status, "empty", "No conversations yet.");
    $("history-empty").hidden = false;
    return;
  }
  const offset = Number(query.offset || 0);
  setStatus(status, "ready", page.count === 1 ? "1 conversation." : `${page.count} conversations, newest first.`);
  const body = table.querySelector("tbody");
  for (const s of page.results) {
    const row = document.createElement("tr");
    const link = document.createElement("a");
    link.href = `/history/${encodeURIComponent(s.session_id)}`;
    link.textContent = when(s.started_at || s.created_at);
    link.setAttribute("aria-label", `Transcript of ${when(s.started_at || s.created_at)} in room ${s.room}`);
    const cells = [
      ["Started", link], ["Room", s.room], ["Who", s.identity], ["Status", badge(s)],
      ["Length", length(s.duration_seconds)],
    ];
    for (const [label, content] of cells) {
      const td = document.createElement("td");
      td.dataset.label = label;
      td.append(content);
      row.append(td);
    }
    body.append(row);
  }
  table.hidden = !page.results.length;
  if (page.next || page.previous) {
    $("page-range").textContent = page.results.length
      ? `${offset + 1}–${offset + page.results.length} of ${page.count}`
      : `Nothing here: there are ${page.count}.`;
    setLink($("newer"), pageLink(page.previous));
    setLink($("older"), pageLink(page.next));
    $("pager").hidden = false;
  }
}

// ---- one transcript ---------------------------------------------------------------------
async function loadDetail(sessionId) {
  const status = $("detail-status"), meta = $("detail-meta"), list = $("detail-transcript");
  let data;
  try {
    data = await api.transcript(sessionId);
  } catch (error) {
    const box = $("detail-error");
    const missing = error instanceof UiError && error.kind === "not_found";
    box.querySelector(".error-title").textContent = missing ? "Conversation not found" : "Transcript is unavailable";
    box.querySelector(".error-message").textContent = missing
      ? "There is no conversation with this id. It may have been deleted, or the link is wrong."
      : "The voice service did not answer. Check that the backend is running, then reload this page.";
    setStatus(status, "error", missing ? "Not found." : "Could not load the transcript.");
    box.hidden = false;
    return;
  }
  const s = data.session;
  const fields = {
    started: when(s.started_at || s.created_at), room: s.room, identity: s.identity,
    status: statusLabel(s), length: length(s.duration_seconds),
  };
  for (const [name, value] of Object.entries(fields)) meta.querySelector(`[data-field="${name}"]`).textContent = value;
  // The conversation's median reply latency (null when no reply had one, e.g. only a greeting).
  if (typeof data.latency_p50_ms === "number") {
    meta.querySelector('[data-field="latency_p50"]').textContent = `${seconds(data.latency_p50_ms)} s`;
    $("latency-p50").hidden = false;
  }
  meta.hidden = false;
  $("download-json").href = api.exportUrl(sessionId, "json");
  $("download-vtt").href = api.exportUrl(sessionId, "vtt");
  $("detail-downloads").hidden = false;
  document.title = `Transcript ${fields.started} · Voice Agent`;
  if (!data.entries.length) {
    setStatus(status, "empty", "Nothing was said in this conversation.");
    return;
  }
  setStatus(status, "ready", `${data.entries.length} line${data.entries.length === 1 ? "" : "s"}.`);
  for (const entry of data.entries) list.append(lineItem(entry.role, entry.text, lineDetails(entry)));
}

const sessionId = document.body.dataset.sessionId;
if (sessionId) loadDetail(sessionId);
else loadList();
