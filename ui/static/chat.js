// The browser voice flow (REQUIREMENTS.md item 4):
//   Start: GET /token → connect to LiveKit → publish mic → POST /session → open WS → render
//   Stop:  DELETE /session → close WS → disconnect LiveKit → reset
// State and audio levels are mirrored on window.voiceAgent for tests and debugging.
(() => {
  "use strict";
  const { Room, RoomEvent, Track } = window.LivekitClient || {};
  const backend = document.body.dataset.backendUrl || "";
  const $ = (id) => document.getElementById(id);
  const el = {
    start: $("start"), stop: $("stop"), enableAudio: $("enable-audio"), status: $("status"),
    error: $("error"), transcript: $("transcript"), interim: $("interim"),
    userIndicator: $("user-indicator"), agentIndicator: $("agent-indicator"), mic: $("mic-level"),
    room: $("room"), identity: $("identity"),
  };
  const STATUS_TEXT = {
    idle: "Ready. Press Start and speak.",
    connecting: "Connecting…",
    live: "Live: speak any time.",
    stopping: "Stopping…",
    error: "Something went wrong.",
  };

  const agent = (window.voiceAgent = {
    state: "idle", sessionId: null, wsState: "closed", roomState: "disconnected",
    agentRms: 0, agentPeakRms: 0, micRms: 0, messages: [],
  });
  let room = null, socket = null, meters = [], audioContext = null;

  // Room and identity: generated per visitor, overridable by query string or the settings form.
  const params = new URLSearchParams(location.search);
  const randomId = (prefix) => `${prefix}-${crypto.getRandomValues(new Uint32Array(2)).join("").slice(0, 12)}`;
  el.room.value = params.get("room") || randomId("room");
  el.identity.value = params.get("identity") || randomId("guest");

  function setState(state, detail) {
    agent.state = state;
    el.status.dataset.state = state;
    el.status.textContent = detail || STATUS_TEXT[state];
    el.start.disabled = !(state === "idle" || state === "error");
    el.stop.disabled = !(state === "connecting" || state === "live");
    el.room.disabled = el.identity.disabled = el.start.disabled;
  }

  function showError(message) {
    el.error.textContent = message;
    el.error.hidden = !message;
  }

  class ApiError extends Error {}

  async function api(path, options = {}) {
    let response;
    try {
      response = await fetch(backend + path, {
        ...options,
        headers: { "Content-Type": "application/json", ...(options.headers || {}) },
      });
    } catch (e) {
      throw new ApiError("The voice service is not reachable. Is the backend running?");
    }
    if (response.status === 204) return null;
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = (body.error && body.error.message) || `Request failed (${response.status}).`;
      throw new ApiError(message);
    }
    return body;
  }

  // ---- transcript rendering -------------------------------------------------------------
  function appendLine(role, text) {
    const item = document.createElement("li");
    item.className = `line ${role}`;
    item.dataset.role = role;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role === "agent" ? "Agent" : "You";
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.append(who, body);
    const nearBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
    el.transcript.append(item);
    if (nearBottom) item.scrollIntoView({ block: "end" }); // don't yank a reader who scrolled up
  }

  function setSpeaking(role, speaking) {
    const indicator = role === "agent" ? el.agentIndicator : el.userIndicator;
    indicator.dataset.speaking = String(speaking);
  }

  function onMessage(message) {
    agent.messages.push(message);
    if (message.event === "session_ended") {
      teardown().then(() => setState("idle", `Session ended (${message.reason.replace("_", " ")}). Press Start to talk again.`));
    } else if (message.event) {
      setSpeaking(message.role, message.event === "speech_started");
    } else if (message.final === false) {
      el.interim.textContent = message.text;
    } else if (message.final === true) {
      if (message.role === "user") el.interim.textContent = "";
      appendLine(message.role, message.text);
    }
  }

  function openSocket(sessionId) {
    const url = new URL(`/ws/transcript/${sessionId}`, backend || location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.onopen = () => { agent.wsState = "open"; resolve(ws); };
      ws.onerror = () => reject(new ApiError("Could not open the live transcript connection."));
      ws.onclose = () => { agent.wsState = "closed"; };
      ws.onmessage = (event) => {
        try { onMessage(JSON.parse(event.data)); } catch (e) { console.warn("bad transcript frame", e); }
      };
    });
  }

  // ---- audio: play the agent, measure levels --------------------------------------------
  function meter(mediaStreamTrack, onLevel) {
    audioContext = audioContext || new AudioContext();
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
    meters.push(() => { clearInterval(timer); source.disconnect(); });
  }

  function onTrackSubscribed(track, publication, participant) {
    if (track.kind !== Track.Kind.Audio) return;
    const audio = track.attach(); // an <audio> element: WebAudio alone would read silence
    audio.id = "agent-audio";
    document.body.append(audio);
    meter(track.mediaStreamTrack, (rms) => {
      agent.agentRms = rms;
      agent.agentPeakRms = Math.max(agent.agentPeakRms, rms);
    });
  }

  function onAudioPlaybackChanged() {
    el.enableAudio.hidden = !room || room.canPlaybackAudio;
  }

  el.enableAudio.addEventListener("click", async () => {
    if (room) await room.startAudio();
    onAudioPlaybackChanged();
  });

  // ---- start / stop ---------------------------------------------------------------------
  async function start() {
    showError("");
    el.transcript.replaceChildren();
    el.interim.textContent = "";
    agent.messages = [];
    agent.agentPeakRms = 0;
    setState("connecting");
    const roomName = el.room.value.trim(), identity = el.identity.value.trim();
    try {
      if (!Room) throw new ApiError("The LiveKit client library did not load. Run the setup command.");
      const query = new URLSearchParams({ room: roomName, identity });
      const grant = await api(`/token?${query}`);
      room = new Room();
      room.on(RoomEvent.TrackSubscribed, onTrackSubscribed);
      room.on(RoomEvent.AudioPlaybackStatusChanged, onAudioPlaybackChanged);
      room.on(RoomEvent.Disconnected, () => { agent.roomState = "disconnected"; });
      try {
        await room.connect(grant.url, grant.token);
      } catch (e) {
        throw new ApiError("Could not reach the LiveKit media server.");
      }
      agent.roomState = "connected";
      try {
        await room.localParticipant.setMicrophoneEnabled(true);
      } catch (e) {
        throw new ApiError("Microphone access was denied. Allow the microphone and try again.");
      }
      const micTrack = room.localParticipant.getTrackPublication(Track.Source.Microphone)?.track;
      if (micTrack) meter(micTrack.mediaStreamTrack, (rms) => { agent.micRms = rms; el.mic.value = Math.min(1, rms * 4); });
      const session = await api("/session", { method: "POST", body: JSON.stringify({ room: roomName, identity }) });
      agent.sessionId = session.session_id;
      socket = await openSocket(session.session_id);
      onAudioPlaybackChanged();
      setState("live");
    } catch (e) {
      await stopSession();
      await teardown();
      showError(e instanceof ApiError ? e.message : "Unexpected error: " + e);
      setState("error", "Could not start. See the message below.");
    }
  }

  async function stopSession(options = {}) {
    const id = agent.sessionId;
    agent.sessionId = null;
    if (!id) return;
    try {
      await fetch(`${backend}/session/${id}`, { method: "DELETE", ...options });
    } catch (e) {
      // The server also ends the session when we leave the room.
    }
  }

  async function teardown() {
    if (socket) { socket.close(); socket = null; }
    meters.forEach((stopMeter) => stopMeter());
    meters = [];
    document.querySelectorAll("#agent-audio").forEach((node) => node.remove());
    if (room) { const r = room; room = null; await r.disconnect(); }
    agent.roomState = "disconnected";
    setSpeaking("user", false);
    setSpeaking("agent", false);
    el.interim.textContent = "";
    el.mic.value = 0;
    el.enableAudio.hidden = true;
  }

  async function stop() {
    setState("stopping");
    await stopSession();
    await teardown();
    setState("idle");
  }

  el.start.addEventListener("click", start);
  el.stop.addEventListener("click", stop);
  // Leaving the page: ask the server to stop (keepalive outlives the page) and leave the room.
  window.addEventListener("pagehide", () => {
    stopSession({ keepalive: true });
    if (room) room.disconnect();
  });
  setState("idle");
})();
