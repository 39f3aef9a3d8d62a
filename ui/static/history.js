// History: the paginated list of sessions (GET /transcripts, DRF limit/offset) and one
// session's final transcript (GET /transcripts/{id}), from the read-only API.
(() => {
  "use strict";
  const backend = document.body.dataset.backendUrl || "";
  const $ = (id) => document.getElementById(id);
  const PAGE_SIZE = 20;

  const when = (iso) => {
    if (!iso) return "–";
    const date = new Date(iso);
    return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  };
  const length = (s) => {
    if (s == null) return "–";
    if (s < 60) return `${Math.round(s)} s`;
    const minutes = Math.floor(s / 60);
    return `${minutes} min ${Math.round(s - minutes * 60)} s`;
  };
  const STATUS_LABEL = { created: "starting", running: "live", ended: "ended", failed: "failed", error: "failed" };
  const statusLabel = (session) => {
    const label = STATUS_LABEL[session.status] || session.status || "–";
    return session.status === "ended" && session.end_reason && session.end_reason !== "deleted"
      ? `${label} (${session.end_reason.replace(/_/g, " ")})` : label;
  };
  const badge = (session) => {
    const span = document.createElement("span");
    span.className = `badge ${session.status || ""}`;
    span.textContent = statusLabel(session);
    return span;
  };

  class HttpError extends Error {
    constructor(status) { super(`HTTP ${status}`); this.status = status; }
  }

  async function getJson(path) {
    const response = await fetch(backend + path, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new HttpError(response.status);
    return response.json();
  }

  function setStatus(node, state, text) {
    node.dataset.state = state;
    node.textContent = text;
  }

  // ---- the list -------------------------------------------------------------------------
  async function loadList() {
    const status = $("history-status"), table = $("sessions");
    const params = new URLSearchParams(location.search);
    const limit = Math.min(100, Math.max(1, parseInt(params.get("limit"), 10) || PAGE_SIZE));
    const offset = Math.max(0, parseInt(params.get("offset"), 10) || 0);
    let page;
    try {
      page = await getJson(`/transcripts?${new URLSearchParams({ limit, offset })}`);
    } catch (e) {
      setStatus(status, "error", "History is unavailable.");
      $("history-error").hidden = false;
      return;
    }
    if (!page.count) {
      setStatus(status, "empty", "No conversations yet.");
      $("history-empty").hidden = false;
      return;
    }
    const first = page.results.length ? offset + 1 : 0, last = offset + page.results.length;
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
    table.hidden = false;
    if (page.count > page.results.length || offset > 0) {
      const pager = $("pager"), newer = $("newer"), older = $("older");
      const link = (o) => `?${new URLSearchParams({ limit, offset: o })}`;
      $("page-range").textContent = `${first}–${last} of ${page.count}`;
      if (offset > 0) newer.href = link(Math.max(0, offset - limit));
      else { newer.removeAttribute("href"); newer.setAttribute("aria-disabled", "true"); }
      if (page.next) older.href = link(offset + limit);
      else { older.removeAttribute("href"); older.setAttribute("aria-disabled", "true"); }
      pager.hidden = false;
    }
  }

  // ---- one transcript -------------------------------------------------------------------
  async function loadDetail(sessionId) {
    const status = $("detail-status"), meta = $("detail-meta"), list = $("detail-transcript");
    let data;
    try {
      data = await getJson(`/transcripts/${encodeURIComponent(sessionId)}`);
    } catch (e) {
      const error = $("detail-error");
      const missing = e instanceof HttpError && e.status === 404;
      error.querySelector(".error-title").textContent = missing ? "Conversation not found" : "Transcript is unavailable";
      error.querySelector(".error-message").textContent = missing
        ? "There is no conversation with this id. It may have been deleted, or the link is wrong."
        : "The voice service did not answer. Check that the backend is running, then reload this page.";
      setStatus(status, "error", missing ? "Not found." : "Could not load the transcript.");
      error.hidden = false;
      return;
    }
    const s = data.session;
    const fields = {
      started: when(s.started_at || s.created_at), room: s.room, identity: s.identity,
      status: statusLabel(s), length: length(s.duration_seconds),
    };
    for (const [name, value] of Object.entries(fields)) meta.querySelector(`[data-field="${name}"]`).textContent = value;
    meta.hidden = false;
    document.title = `Transcript ${fields.started} · Voice Agent`;
    if (!data.entries.length) {
      setStatus(status, "empty", "Nothing was said in this conversation.");
      return;
    }
    setStatus(status, "ready", `${data.entries.length} line${data.entries.length === 1 ? "" : "s"}.`);
    for (const entry of data.entries) {
      const item = document.createElement("li");
      item.className = `line ${entry.role === "agent" ? "agent" : "user"}`;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = entry.role === "agent" ? "Agent" : "You";
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = entry.text;
      item.append(who, text);
      list.append(item);
    }
  }

  const sessionId = document.body.dataset.sessionId;
  if (sessionId) loadDetail(sessionId);
  else loadList();
})();
