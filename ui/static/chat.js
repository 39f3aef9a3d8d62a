// The browser voice flow (REQUIREMENTS.md item 4):
//   Start: GET /token → connect to LiveKit → publish mic → POST /session → open WS → render
//   Stop:  DELETE /session → close WS → disconnect LiveKit → reset
// State and audio levels are mirrored on window.voiceAgent for tests and debugging.
(() => {
  "use strict";
  const { Room, RoomEvent, Track } = window.LivekitClient || {};
  const backend = document.body.dataset.backendUrl || "";
  const backendLabel = backend || location.origin;
  const $ = (id) => document.getElementById(id);
  const el = {
    start: $("start"), stop: $("stop"), enableAudio: $("enable-audio"), status: $("status"),
    error: $("error"), errorTitle: $("error-title"), errorMessage: $("error-message"),
    errorHint: $("error-hint"), newRoom: $("new-room"),
    scroller: $("transcript-scroller"), transcript: $("transcript"), empty: $("transcript-empty"),
    interim: $("interim"), jump: $("jump-latest"),
    userIndicator: $("user-indicator"), agentIndicator: $("agent-indicator"), mic: $("mic-level"),
    settings: $("settings"), form: $("settings-form"), room: $("room"), identity: $("identity"),
  };
  const STATUS_TEXT = {
    idle: "Ready. Press Start and speak.",
    connecting: "Connecting…",
    live: "Live: speak any time.",
    stopping: "Stopping…",
    error: "Could not start. See the message below.",
  };
  // What went wrong, in words a person can act on. `kind` is also exposed for tests.
  const ERRORS = {
    backend_down: {
      title: "Can’t reach the voice service",
      hint: "Check that the backend is running (./dev.sh run starts everything), then press Start again.",
    },
    livekit_down: {
      title: "Can’t reach the media server",
      hint: "The LiveKit server may be stopped, or a firewall blocks it. Start it, then press Start again.",
    },
    mic_denied: {
      title: "Microphone access is blocked",
      hint: "Allow the microphone for this site (use the icon at the left of the address bar), then press Start again.",
    },
    mic_missing: { title: "No microphone found", hint: "Connect a microphone, then press Start again." },
    mic_busy: {
      title: "The microphone is not available",
      hint: "Another application may be using it. Close that application, then press Start again.",
    },
    room_busy: {
      title: "This room is busy",
      hint: "Someone is already talking to the agent in this room. Use a new room, or wait for that conversation to end.",
    },
    agent_unavailable: { title: "The agent could not join", hint: "Wait a moment, then press Start again." },
    bad_settings: { title: "Check the connection settings", hint: "Fix the highlighted field, then press Start again." },
    connection_lost: { title: "The connection was lost", hint: "Press Start to begin a new conversation." },
    client_missing: {
      title: "The page did not load completely",
      hint: "The LiveKit client library is missing: run the setup command (./dev.sh setup), then reload.",
    },
    unexpected: { title: "Something went wrong", hint: "Press Start to try again. If it keeps happening, reload the page." },
  };

  const agent = (window.voiceAgent = {
    state: "idle", sessionId: null, wsState: "closed", roomState: "disconnected",
    agentRms: 0, agentPeakRms: 0, micRms: 0, messages: [], errorKind: null,
  });

  class UiError extends Error {
    constructor(kind, message) { super(message); this.kind = kind; }
  }
  class Cancelled extends Error {}

  // ---- room and identity: generated per visitor, overridable ---------------------------
  const NAME_RULE = /^[A-Za-z0-9_.-]{1,128}$/;
  const params = new URLSearchParams(location.search);
  const randomId = (prefix) => `${prefix}-${crypto.getRandomValues(new Uint32Array(1))[0].toString(36)}`;
  const remembered = (() => { try { return localStorage.getItem("voiceAgent.identity"); } catch (e) { return null; } })();
  el.room.value = params.get("room") || randomId("room");
  el.identity.value = params.get("identity") || (remembered && NAME_RULE.test(remembered) ? remembered : randomId("guest"));
  el.identity.addEventListener("change", () => {
    if (NAME_RULE.test(el.identity.value.trim())) {
      try { localStorage.setItem("voiceAgent.identity", el.identity.value.trim()); } catch (e) { /* private mode */ }
    }
  });
  for (const input of [el.room, el.identity]) {
    input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
  }
  el.form.addEventListener("submit", (event) => { event.preventDefault(); start(); });

  function validSettings() {
    for (const input of [el.room, el.identity]) {
      input.value = input.value.trim();
      if (!NAME_RULE.test(input.value)) {
        input.setAttribute("aria-invalid", "true");
        el.settings.open = true;
        const label = input === el.room ? "Room" : "Your name";
        showError(new UiError("bad_settings", `${label} must be 1 to 128 letters, digits, “_”, “.” or “-”.`));
        setState("error", "Could not start. See the message below.");
        input.focus();
        return false;
      }
    }
    return true;
  }

  // ---- state, status and errors ---------------------------------------------------------
  function setState(state, detail) {
    agent.state = state;
    el.status.dataset.state = state;
    el.status.textContent = detail || STATUS_TEXT[state];
    const busy = !(state === "idle" || state === "error");
    el.start.disabled = busy;
    el.stop.disabled = !(state === "connecting" || state === "live");
    el.room.disabled = el.identity.disabled = busy;
    document.body.dataset.chatState = state;
  }

  function showError(error) {
    if (!error) {
      agent.errorKind = null;
      el.error.hidden = true;
      el.newRoom.hidden = true;
      return;
    }
    const kind = error instanceof UiError ? error.kind : "unexpected";
    const info = ERRORS[kind] || ERRORS.unexpected;
    agent.errorKind = kind;
    el.error.dataset.kind = kind;
    el.errorTitle.textContent = info.title;
    el.errorMessage.textContent = error instanceof UiError ? error.message : `Details: ${error}`;
    el.errorHint.textContent = info.hint;
    el.newRoom.hidden = kind !== "room_busy";
    el.error.hidden = false;
  }

  el.newRoom.addEventListener("click", () => {
    el.room.value = randomId("room");
    showError(null);
    setState("idle", `New room “${el.room.value}” ready. Press Start and speak.`);
    el.start.focus();
  });

  function micError(error) {
    const name = (error && error.name) || "";
    if (!navigator.mediaDevices) {
      return new UiError("mic_denied", "This page is not a secure context (HTTPS or localhost), so the browser offers no microphone.");
    }
    if (/NotAllowed|Security|PermissionDenied/.test(name) || /denied|not allowed/i.test(String(error && error.message))) {
      return new UiError("mic_denied", "The browser did not allow this page to use your microphone.");
    }
    if (/NotFound|DevicesNotFound|Overconstrained/.test(name)) {
      return new UiError("mic_missing", "The browser found no microphone on this device.");
    }
    if (/NotReadable|TrackStart|Abort/.test(name)) {
      return new UiError("mic_busy", "The microphone could not be started.");
    }
    return new UiError("mic_busy", `The microphone could not be started (${name || error}).`);
  }

  async function api(path, options = {}) {
    let response;
    try {
      response = await fetch(backend + path, {
        ...options,
        headers: { "Content-Type": "application/json", ...(options.headers || {}) },
      });
    } catch (e) {
      throw new UiError("backend_down", `No answer from ${backendLabel}.`);
    }
    if (response.status === 204) return null;
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = body.error || {};
      const message = error.message || `The voice service answered with HTTP ${response.status}.`;
      if (response.status === 409) throw new UiError("room_busy", message);
      if (response.status === 503) throw new UiError("agent_unavailable", message);
      if (response.status === 400) throw new UiError("bad_settings", message);
      if (response.status >= 500) throw new UiError("backend_down", `${message} (HTTP ${response.status})`);
      throw new UiError("unexpected", message);
    }
    return body;
  }

  // ---- transcript: finals appended, interim updated in place, scroll that follows ------
  const nearBottom = () => el.scroller.scrollHeight - el.scroller.scrollTop - el.scroller.clientHeight < 48;

  function afterGrowth(wasNearBottom) {
    if (wasNearBottom) el.scroller.scrollTop = el.scroller.scrollHeight;
    else el.jump.hidden = false; // the reader scrolled up: tell them, don't yank them
  }

  el.scroller.addEventListener("scroll", () => { if (nearBottom()) el.jump.hidden = true; }, { passive: true });
  el.jump.addEventListener("click", () => {
    el.scroller.scrollTop = el.scroller.scrollHeight;
    el.jump.hidden = true;
    el.scroller.focus({ preventScroll: true });
  });

  function lineParts(role, text) {
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role === "agent" ? "Agent" : "You";
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    return [who, body];
  }

  function appendLine(role, text) {
    const stick = nearBottom();
    const item = document.createElement("li");
    item.className = `line ${role}`;
    item.dataset.role = role;
    item.append(...lineParts(role, text));
    el.empty.hidden = true;
    el.transcript.append(item);
    afterGrowth(stick);
  }

  function setInterim(text) {
    const stick = nearBottom();
    if (text) {
      el.interim.replaceChildren(...lineParts("user", text));
      el.interim.dataset.active = "true";
      el.empty.hidden = true;
    } else {
      el.interim.replaceChildren();
      el.interim.dataset.active = "false";
    }
    if (stick) el.scroller.scrollTop = el.scroller.scrollHeight;
  }

  function resetTranscript() {
    el.transcript.replaceChildren();
    setInterim("");
    el.empty.hidden = false;
    el.jump.hidden = true;
  }

  function setSpeaking(role, speaking) {
    const indicator = role === "agent" ? el.agentIndicator : el.userIndicator;
    indicator.dataset.speaking = String(speaking);
    indicator.querySelector(".speaker-state").textContent = speaking ? "speaking" : "not speaking";
  }

  // ---- one connection attempt: its room, socket and meters ------------------------------
  let current = null; // the live or starting connection
  let audioContext = null;

  function newConnection() {
    return { room: null, socket: null, sessionId: null, meters: [], closing: false };
  }

  function onMessage(conn, message) {
    if (conn !== current) return;
    agent.messages.push(message);
    if (message.event === "session_ended") {
      const reason = String(message.reason || "ended").replace(/_/g, " ");
      conn.sessionId = agent.sessionId = null; // nothing left to delete
      endConnection(conn).then(() => {
        if (agent.state === "live" || agent.state === "connecting") {
          setState("idle", `The session ended (${reason}). Press Start to talk again.`);
        }
      });
    } else if (message.event) {
      setSpeaking(message.role, message.event === "speech_started");
    } else if (message.final === false) {
      setInterim(message.text);
    } else if (message.final === true) {
      if (message.role === "user") setInterim("");
      appendLine(message.role, message.text);
    }
  }

  function connectionLost(conn, what) {
    if (conn !== current || conn.closing) return;
    endConnection(conn, { deleteSession: true }).then(() => {
      showError(new UiError("connection_lost", what));
      setState("error", "Disconnected. See the message below.");
    });
  }

  function openSocket(conn) {
    const url = new URL(`/ws/transcript/${conn.sessionId}`, backend || location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      let opened = false;
      ws.onopen = () => { opened = true; agent.wsState = "open"; resolve(ws); };
      ws.onclose = (event) => {
        if (conn === current) agent.wsState = "closed";
        if (!opened) reject(new UiError("backend_down", `The live transcript connection was refused (code ${event.code}).`));
        else connectionLost(conn, "The live transcript connection to the voice service closed unexpectedly.");
      };
      ws.onmessage = (event) => {
        let message;
        try { message = JSON.parse(event.data); } catch (e) { console.warn("bad transcript frame", e); return; }
        onMessage(conn, message);
      };
    });
  }

  // Levels: an AnalyserNode per track, sampled every 50 ms.
  function meter(conn, mediaStreamTrack, onLevel) {
    audioContext = audioContext || new AudioContext();
    if (audioContext.state === "suspended") audioContext.resume().catch(() => {});
    const source = audioContext.createMediaStreamSource(new MediaStream([mediaStreamTrack]));
    const analyser = audioContext.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      onLevel(Math.sqrt(sum / samples.length));
    }, 50);
    conn.meters.push(() => { clearInterval(timer); source.disconnect(); });
  }

  function onTrackSubscribed(conn, track) {
    if (track.kind !== Track.Kind.Audio) return;
    const audio = track.attach(); // an <audio> element: WebAudio alone would read silence
    audio.id = "agent-audio";
    audio.classList.add("agent-audio");
    document.body.append(audio);
    meter(conn, track.mediaStreamTrack, (rms) => {
      agent.agentRms = rms;
      agent.agentPeakRms = Math.max(agent.agentPeakRms, rms);
    });
  }

  function updateAudioPrompt() {
    const room = current && current.room;
    el.enableAudio.hidden = !room || room.canPlaybackAudio;
  }

  el.enableAudio.addEventListener("click", async () => {
    const room = current && current.room;
    if (audioContext) audioContext.resume().catch(() => {});
    if (room) await room.startAudio().catch(() => {});
    updateAudioPrompt();
  });

  function watchRoom(conn, room) {
    room.on(RoomEvent.TrackSubscribed, (track) => { if (conn === current) onTrackSubscribed(conn, track); });
    room.on(RoomEvent.AudioPlaybackStatusChanged, () => { if (conn === current) updateAudioPrompt(); });
    room.on(RoomEvent.Reconnecting, () => {
      if (conn === current && agent.state === "live") el.status.textContent = "Connection interrupted. Reconnecting…";
    });
    room.on(RoomEvent.Reconnected, () => {
      if (conn === current && agent.state === "live") el.status.textContent = STATUS_TEXT.live;
    });
    room.on(RoomEvent.Disconnected, () => {
      if (conn !== current) return;
      agent.roomState = "disconnected";
      if (agent.state === "live") connectionLost(conn, "The media server connection dropped.");
    });
  }

  // DELETE the server session (keepalive when the page is going away); harmless if already ended.
  function deleteSession(conn, options = {}) {
    const id = conn.sessionId;
    conn.sessionId = null;
    if (conn === current) agent.sessionId = null;
    if (!id) return Promise.resolve();
    return fetch(`${backend}/session/${id}`, { method: "DELETE", ...options })
      .catch(() => { /* the server also ends the session when we leave the room */ });
  }

  // Close WS → disconnect LiveKit → reset the speaking/level widgets.
  async function endConnection(conn, { deleteSession: del = false } = {}) {
    conn.closing = true;
    if (del) await deleteSession(conn);
    if (conn.socket) { conn.socket.close(1000); conn.socket = null; }
    conn.meters.forEach((stopMeter) => stopMeter());
    conn.meters = [];
    if (conn.room) { const room = conn.room; conn.room = null; await room.disconnect().catch(() => {}); }
    if (conn === current) {
      current = null;
      resetWidgets();
    }
  }

  function resetWidgets() {
    document.querySelectorAll(".agent-audio").forEach((node) => node.remove());
    agent.roomState = "disconnected";
    agent.wsState = "closed";
    agent.micRms = agent.agentRms = 0;
    setSpeaking("user", false);
    setSpeaking("agent", false);
    setInterim("");
    el.mic.value = 0;
    el.enableAudio.hidden = true;
  }

  // ---- start / stop ---------------------------------------------------------------------
  async function start() {
    if (current || !validSettings()) return;
    const conn = (current = newConnection());
    const check = () => { if (conn !== current || conn.closing) throw new Cancelled(); };
    showError(null);
    resetTranscript();
    agent.messages = [];
    agent.agentPeakRms = 0;
    const roomName = el.room.value, identity = el.identity.value;
    setState("connecting", "Connecting: asking the voice service for a room pass…");
    try {
      if (!Room) throw new UiError("client_missing", "The LiveKit client library did not load.");
      const grant = await api(`/token?${new URLSearchParams({ room: roomName, identity })}`);
      check();
      setState("connecting", "Connecting to the media server…");
      conn.room = new Room();
      watchRoom(conn, conn.room);
      try {
        await conn.room.connect(grant.url, grant.token);
      } catch (e) {
        check();
        throw new UiError("livekit_down", `No connection to the LiveKit server at ${grant.url}.`);
      }
      check();
      agent.roomState = "connected";
      setState("connecting", "Turning on your microphone…");
      try {
        await conn.room.localParticipant.setMicrophoneEnabled(true);
      } catch (e) {
        check();
        throw micError(e);
      }
      check();
      const micTrack = conn.room.localParticipant.getTrackPublication(Track.Source.Microphone)?.track;
      if (micTrack) {
        meter(conn, micTrack.mediaStreamTrack, (rms) => { agent.micRms = rms; el.mic.value = Math.min(1, rms * 5); });
      }
      setState("connecting", "Inviting the agent…");
      const session = await api("/session", { method: "POST", body: JSON.stringify({ room: roomName, identity }) });
      conn.sessionId = session.session_id;
      agent.sessionId = session.session_id;
      check();
      conn.socket = await openSocket(conn);
      check();
      updateAudioPrompt();
      setState("live");
    } catch (e) {
      if (e instanceof Cancelled || conn !== current) {
        await endConnection(conn, { deleteSession: true });
        return;
      }
      await endConnection(conn, { deleteSession: true });
      showError(e);
      setState("error");
      if (!(e instanceof UiError)) console.error(e);
    }
  }

  async function stop() {
    const conn = current;
    if (!conn) return;
    setState("stopping");
    conn.closing = true;
    await deleteSession(conn);
    await endConnection(conn);
    setState("idle", "Stopped. The conversation is saved in History. Press Start to talk again.");
    el.start.focus();
  }

  el.start.addEventListener("click", start);
  el.stop.addEventListener("click", stop);
  // Leaving the page: ask the server to stop (keepalive outlives the page) and leave the room.
  window.addEventListener("pagehide", () => {
    const conn = current;
    if (!conn) return;
    conn.closing = true;
    deleteSession(conn, { keepalive: true });
    if (conn.socket) conn.socket.close(1000);
    if (conn.room) conn.room.disconnect();
    current = null;
  });
  // Back from the back/forward cache: the old conversation is gone; say so.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && agent.state !== "idle" && agent.state !== "error") {
      resetWidgets();
      setState("idle", "The conversation ended when you left the page. Press Start to talk again.");
    }
  });
  setInterim("");
  setState("idle");
})();
