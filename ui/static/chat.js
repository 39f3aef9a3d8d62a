// The chat page: the session machine (session-machine.js) wired to the page's controls,
// status line, error panel, speaking indicators, the agent's state, level meters, the
// microphone's controls (mute, devices), the text box and the transcript.
// State and audio levels are mirrored on window.voiceAgent for tests and debugging.
import { Api } from "./api.js";
import { ConnectionSettings } from "./connection-settings.js";
import { DevicePicker, listDevices, watchDevices } from "./devices.js";
import { UiError, describe } from "./errors.js";
import { canChooseSpeaker, livekitSupported } from "./media.js";
import { resumeAudio, startMeter } from "./meters.js";
import { Preflight } from "./preflight.js";
import { PushToTalk } from "./push-to-talk.js";
import { SessionMachine, State } from "./session-machine.js";
import { TranscriptView } from "./transcript-view.js";

const $ = (id) => document.getElementById(id);
const el = {
  start: $("start"), stop: $("stop"), enableAudio: $("enable-audio"), status: $("status"),
  error: $("error"), errorTitle: $("error-title"), errorMessage: $("error-message"),
  errorHint: $("error-hint"), errorDetail: $("error-detail"), newRoom: $("new-room"),
  userIndicator: $("user-indicator"), agentIndicator: $("agent-indicator"), mic: $("mic-level"),
  textOnly: $("text-only"), micOff: $("mic-off"), agentState: $("agent-state"),
  sayForm: $("say-form"), sayText: $("say-text"), send: $("send"), sayNote: $("say-note"), mute: $("mute"),
  micDevice: $("mic-device"), speakerDevice: $("speaker-device"), speakerField: $("speaker-field"),
};

const agent = (window.voiceAgent = {
  state: "idle", sessionId: null, wsState: "closed", roomState: "disconnected",
  agentRms: 0, agentPeakRms: 0, micRms: 0, messages: [], errorKind: null,
  // The agent's state ("listening", "thinking", "speaking"...) and every state it went through.
  agentState: null, agentStates: [],
  // The microphone: muted, or none at all (a text-only conversation); the chosen devices.
  muted: false, textOnly: false, inputDevice: "", outputDevice: "", micDeviceId: null,
  devices: { audioinput: [], audiooutput: [] }, deviceNotices: [], sentTexts: [],
});

// What the status line says in each state, by the step that led there.
const STATUS = {
  idle: {
    idle: "Ready. Press Start and speak.",
    stopped: "Stopped. The conversation is saved in History. Press Start to talk again.",
    ended: ({ reason }) => `The session ended (${String(reason).replace(/_/g, " ")}). Press Start to talk again.`,
    left: "The conversation ended when you left the page. Press Start to talk again.",
    new_room: ({ room }) => `New room “${room}” ready. Press Start and speak.`,
    unsupported: "This browser cannot make calls: see why below.",
  },
  connecting: {
    token: "Connecting: asking the voice service for a room pass…",
    media: "Connecting to the media server…",
    microphone: "Turning on your microphone…",
    agent: "Inviting the agent…",
  },
  live: {
    live: "Live: speak any time.",
    text_only: "Live, text only: type below. The agent answers aloud and in writing.",
    push_to_talk: "Live: hold Space or “Hold to talk” while you speak.",
  },
  stopping: { stopping: "Stopping…" },
  error: {
    failed: "Could not start. See the message below.",
    lost: "Disconnected. See the message below.",
  },
};
const NOTICES = { reconnecting: "Connection interrupted. Reconnecting…", reconnected: STATUS.live.live };
const READY_AGAIN = "You can press Start again now.";

const api = Api.fromPage();
const settings = new ConnectionSettings({
  details: $("settings"), room: $("room"), identity: $("identity"), rule: $("name-rule-text"),
});
const transcript = new TranscriptView({
  scroller: $("transcript-scroller"), list: $("transcript"), empty: $("transcript-empty"),
  interim: $("interim"), jump: $("jump-latest"),
});
// Checks before Start (preflight.js); a browser that cannot make calls keeps Start disabled.
const preflight = new Preflight({ panel: $("preflight"), list: $("preflight-list"), start: el.start, livekitSupported,
  changed: (result) => {
    agent.preflight = result;
    renderControls(machine.state);
    if (!result.canCall && machine.state === State.IDLE) machine.acknowledge("unsupported");
  } });

// Push to talk (push-to-talk.js): off by default; the agent is asked over LiveKit RPC.
const pushToTalk = new PushToTalk({
  group: $("ptt"), toggle: $("ptt-toggle"), hold: $("ptt-hold"), note,
  call: (method, payload) => machine.callAgent(method, payload),
  changed: (state) => {
    agent.pushToTalk = state;
    const text = state.enabled ? STATUS.live.push_to_talk : STATUS.live.live;
    if (state.live && el.status.textContent !== text) el.status.textContent = text;
  },
});

// ---- the page's view of the machine ------------------------------------------------------
let startHeldUntil = 0; // after a 429 with Retry-After, Start waits that long
let holdTimer = null;

function renderControls(state) {
  const busy = !(state === State.IDLE || state === State.ERROR);
  el.start.disabled = busy || Date.now() < startHeldUntil || preflight.blocksStart;
  el.stop.disabled = !(state === State.CONNECTING || state === State.LIVE);
  settings.disabled = busy;
  const live = state === State.LIVE;
  el.sayText.disabled = !live;
  el.send.disabled = !live || sending;
  el.sayText.placeholder = live ? "Type a message to the agent…" : "Press Start, then speak or type…";
  el.mute.disabled = !live || agent.textOnly;
}

function render(state, step, extra = {}) {
  agent.state = state;
  if (state === State.LIVE) showMicrophone({ textOnly: step === "text_only", muted: agent.muted });
  pushToTalk.setLive(state === State.LIVE && !agent.textOnly);
  const text = (STATUS[state] || {})[step] || STATUS[state][state] || STATUS.error.failed;
  el.status.dataset.state = state;
  el.status.textContent = typeof text === "function" ? text(extra) : text;
  document.body.dataset.chatState = state;
  renderControls(state);
}

function holdStart(seconds) {
  clearTimeout(holdTimer);
  startHeldUntil = Date.now() + seconds * 1000;
  renderControls(machine.state);
  holdTimer = setTimeout(() => {
    startHeldUntil = 0;
    renderControls(machine.state);
    if (machine.state === State.ERROR) el.status.textContent = READY_AGAIN;
  }, seconds * 1000);
}

function showError(error) {
  if (!error) {
    agent.errorKind = null;
    el.error.hidden = true;
    el.newRoom.hidden = true;
    el.textOnly.hidden = true;
    return;
  }
  if (!(error instanceof UiError)) console.error(error);
  const shown = describe(error);
  agent.errorKind = shown.kind;
  el.error.dataset.kind = shown.kind;
  el.errorTitle.textContent = shown.title;
  el.errorMessage.textContent = shown.message;
  el.errorHint.textContent = shown.hint;
  el.errorDetail.textContent = shown.detail;
  el.errorDetail.hidden = !shown.detail;
  el.newRoom.hidden = !shown.offerNewRoom;
  el.textOnly.hidden = !shown.offerTextOnly;
  el.error.hidden = false;
  if (shown.retryAfter) holdStart(shown.retryAfter);
}

function setSpeaking(role, speaking) {
  const indicator = role === "agent" ? el.agentIndicator : el.userIndicator;
  indicator.dataset.speaking = String(speaking);
  indicator.querySelector(".speaker-state").textContent = speaking ? "speaking" : "not speaking";
}

// An interim line that is neither updated nor replaced by a final for this long was not
// taken as words (noise, a cough): it goes away instead of lingering on screen.
const INTERIM_LINGER_MS = 3000;
let interimExpiry = null;

function showInterim(text) {
  clearTimeout(interimExpiry);
  transcript.setInterim(text);
  if (text) interimExpiry = setTimeout(() => transcript.setInterim(""), INTERIM_LINGER_MS);
}

// What the agent is doing, in the indicator beside its name ("idle" and unknown states: nothing).
const AGENT_STATES = { initializing: "joining…", listening: "listening", thinking: "thinking", speaking: "speaking" };

function showAgentState(state) {
  agent.agentState = state || null;
  if (state) agent.agentStates.push(state);
  const known = Object.hasOwn(AGENT_STATES, state || "");
  el.agentState.dataset.state = known ? state : "";
  el.agentState.textContent = known ? AGENT_STATES[state] : "";
  el.agentIndicator.dataset.agentState = known ? state : "";
}

function note(text) {
  el.sayNote.textContent = text;
}

function showMessage(message) {
  agent.messages.push(message);
  if (message.event === "session_ended") return; // the machine ends the conversation
  if (message.type === "agent_state") {
    showAgentState(message.state);
  } else if (message.type === "agent_partial") {
    if (typeof message.text === "string") transcript.setAgentPartial(message.text);
  } else if (message.type) {
    // another added message (pong, ...): nothing to show
  } else if (message.error) {
    showRefusal(message.error);
  } else if (message.event) {
    setSpeaking(message.role, message.event === "speech_started");
  } else if (message.final === false) {
    showInterim(message.text);
  } else if (message.final === true) {
    const typed = message.typed === true;
    if (message.role === "user" && !typed) showInterim("");
    if (typed) note("");
    transcript.append(message.role, message.text, {
      typed, interrupted: message.interrupted === true, latency: message.latency || null,
    });
  }
}

/** The agent refused a typed line (too long, too many): say why, and give the line back. */
function showRefusal(error) {
  const last = agent.sentTexts[agent.sentTexts.length - 1];
  if (/^typed_/.test(error.code) && last && !el.sayText.value) el.sayText.value = last;
  note(String(error.message || "The agent did not take that message."));
}

// ---- the microphone: muted, or none (text only) --------------------------------------------
function showMicrophone({ textOnly = agent.textOnly, muted = false } = {}) {
  agent.textOnly = textOnly;
  agent.muted = muted && !textOnly;
  el.mute.setAttribute("aria-pressed", String(agent.muted));
  el.mute.querySelector(".mute-label").textContent = agent.muted ? "Unmute" : "Mute";
  const mic = textOnly ? "off" : agent.muted ? "muted" : "on";
  el.userIndicator.dataset.mic = mic;
  el.micOff.hidden = mic === "on";
  el.micOff.textContent = textOnly ? "no microphone" : "muted";
  if (mic !== "on") el.mic.value = 0;
}

async function toggleMute() {
  const muted = await machine.setMuted(!agent.muted).catch((error) => {
    console.warn("mute", error);
    return null;
  });
  if (muted !== null) showMicrophone({ muted });
}

// ---- devices ------------------------------------------------------------------------------
const DEVICE_NOUN = { audioinput: "microphone", audiooutput: "speaker" };
const pickers = {
  audioinput: new DevicePicker({ select: el.micDevice, kind: "audioinput", choose: (id, why) => useDevice("audioinput", id, why) }),
  audiooutput: new DevicePicker({ select: el.speakerDevice, kind: "audiooutput", choose: (id, why) => useDevice("audiooutput", id, why) }),
};
el.speakerField.hidden = !canChooseSpeaker();

async function refreshDevices() {
  const devices = await listDevices();
  for (const [kind, picker] of Object.entries(pickers)) agent.devices[kind] = picker.update(devices);
}

/** The person chose a device, or the chosen one went away: use it now if live, else at Start. */
async function useDevice(kind, id, why) {
  agent[kind === "audioinput" ? "inputDevice" : "outputDevice"] = id;
  const picker = pickers[kind];
  const label = picker.select.selectedOptions[0] ? picker.select.selectedOptions[0].textContent : id;
  if (why === "fallback") {
    const text = `The ${DEVICE_NOUN[kind]} you chose was disconnected: using “${label}”.`;
    agent.deviceNotices.push(text);
    note(text);
  }
  if (!(machine.state === State.LIVE || machine.state === State.CONNECTING)) return;
  try {
    await machine.switchDevice(kind, id);
  } catch (error) {
    console.warn("device", error);
    note(`Could not switch to the ${DEVICE_NOUN[kind]} “${label}”.`);
  }
}

// ---- typing -------------------------------------------------------------------------------
let sending = false;

async function sendTyped(event) {
  event.preventDefault();
  const text = el.sayText.value.trim();
  if (!text || sending || machine.state !== State.LIVE) return;
  sending = true;
  renderControls(machine.state);
  try {
    await machine.sendText(text);
    agent.sentTexts.push(text);
    el.sayText.value = "";
    note("Sent. The agent is answering.");
  } catch (error) {
    console.warn("send", error);
    note("The message was not sent. Check the connection, then send it again.");
  } finally {
    sending = false;
    renderControls(machine.state);
    if (machine.state === State.LIVE) el.sayText.focus();
  }
}

function resetWidgets() {
  agent.roomState = "disconnected";
  agent.wsState = "closed";
  agent.micRms = agent.agentRms = 0;
  setSpeaking("user", false);
  setSpeaking("agent", false);
  transcript.setInterim("");
  el.mic.value = 0;
  el.enableAudio.hidden = true;
  agent.micDeviceId = null;
  showAgentState(null);
  showMicrophone({ textOnly: false, muted: false });
}

const machine = new SessionMachine({
  api,
  hooks: {
    state: render,
    notice: (what) => { el.status.textContent = NOTICES[what]; },
    error: showError,
    session: (id) => { agent.sessionId = id; },
    room: (state) => { agent.roomState = state; },
    socket: (state) => { agent.wsState = state; },
    message: showMessage,
    microphone: (track) => {
      agent.micDeviceId = track.getSettings().deviceId || null; // the device really capturing
      refreshDevices(); // with the microphone allowed, the browser names its devices
      return startMeter(track, (rms) => {
        agent.micRms = rms;
        el.mic.value = agent.muted ? 0 : Math.min(1, rms * 5);
      });
    },
    agentAudio: ({ element, mediaStreamTrack }) => {
      element.id = "agent-audio";
      element.classList.add("agent-audio");
      document.body.append(element);
      const stopMeter = startMeter(mediaStreamTrack, (rms) => {
        agent.agentRms = rms;
        agent.agentPeakRms = Math.max(agent.agentPeakRms, rms);
      });
      return () => {
        stopMeter();
        element.remove();
      };
    },
    playback: (canPlay) => { el.enableAudio.hidden = canPlay; },
    closed: resetWidgets,
  },
});

// ---- controls ----------------------------------------------------------------------------
function start({ textOnly = false } = {}) {
  if (!machine.canStart || Date.now() < startHeldUntil) return;
  if (preflight.blocksStart) return machine.refuse(preflight.error());
  let names;
  try {
    names = settings.read();
  } catch (error) {
    machine.refuse(error);
    return;
  }
  showError(null);
  transcript.clear();
  agent.messages = [];
  agent.agentStates = [];
  agent.agentPeakRms = 0;
  note("");
  machine.start(names.room, names.identity, {
    textOnly, microphone: pickers.audioinput.value, speaker: canChooseSpeaker() ? pickers.audiooutput.value : "",
  });
}

async function stop() {
  await machine.stop();
  if (machine.state === State.IDLE) el.start.focus();
}

el.start.addEventListener("click", () => start());
el.textOnly.addEventListener("click", () => start({ textOnly: true }));
el.mute.addEventListener("click", toggleMute);
el.sayForm.addEventListener("submit", sendTyped);
el.stop.addEventListener("click", stop);
$("settings-form").addEventListener("submit", (event) => {
  event.preventDefault();
  start();
});
el.newRoom.addEventListener("click", () => {
  const room = settings.newRoom();
  showError(null);
  machine.acknowledge("new_room", { room });
  el.start.focus();
});
el.enableAudio.addEventListener("click", () => {
  resumeAudio();
  machine.startAudio();
});
// Leaving the page: the machine asks the server to stop and leaves the room.
window.addEventListener("pagehide", () => machine.leave());
// Back from the back/forward cache: the old conversation is gone; say so.
window.addEventListener("pageshow", (event) => { if (event.persisted) machine.returned(); });

watchDevices(refreshDevices);
refreshDevices();
resetWidgets();
render(State.IDLE, "idle");
preflight.watch();
