// History: the list of sessions, and one session's final transcript, from the read-only API.
(() => {
  "use strict";
  const backend = document.body.dataset.backendUrl || "";
  const status = document.getElementById("history-status");
  const table = document.getElementById("sessions");
  const detail = document.getElementById("detail");

  const cell = (text) => { const td = document.createElement("td"); td.textContent = text; return td; };
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
  const length = (s) => (s == null ? "–" : s < 60 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);

  async function getJson(path) {
    const response = await fetch(backend + path);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }

  async function showTranscript(sessionId) {
    const list = detail.querySelector("ol");
    list.replaceChildren();
    detail.hidden = false;
    try {
      const data = await getJson(`/transcripts/${sessionId}`);
      if (!data.entries.length) list.append(Object.assign(document.createElement("li"), { textContent: "Nothing was said in this session." }));
      for (const entry of data.entries) {
        const item = document.createElement("li");
        item.className = `line ${entry.role}`;
        item.innerHTML = '<span class="who"></span><span class="text"></span>';
        item.querySelector(".who").textContent = entry.role === "agent" ? "Agent" : "You";
        item.querySelector(".text").textContent = entry.text;
        list.append(item);
      }
    } catch (e) {
      list.append(Object.assign(document.createElement("li"), { textContent: "Could not load this transcript." }));
    }
  }

  async function load() {
    try {
      const page = await getJson("/transcripts?limit=50");
      if (!page.results.length) { status.textContent = "No conversations yet."; return; }
      status.textContent = `${page.count} conversation${page.count === 1 ? "" : "s"}.`;
      const body = table.querySelector("tbody");
      for (const s of page.results) {
        const row = document.createElement("tr");
        const link = document.createElement("a");
        link.href = `#${s.session_id}`;
        link.textContent = when(s.started_at || s.created_at);
        link.addEventListener("click", () => showTranscript(s.session_id));
        const first = document.createElement("td");
        first.append(link);
        row.append(first, cell(s.room), cell(s.identity), cell(s.status), cell(length(s.duration_seconds)));
        body.append(row);
      }
      table.hidden = false;
      if (location.hash.length > 1) showTranscript(location.hash.slice(1));
    } catch (e) {
      status.textContent = "History is unavailable: the backend did not answer.";
    }
  }
  load();
})();
