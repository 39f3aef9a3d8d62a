// The chat page: the session machine (session-machine.js) wired to the page's parts, each
// in its own module: the status line (status-line.js), the error panel (error-panel.js), the
// speaking indicators and the agent's state (speakers.js), Mute (mute-button.js), the
// devices (devices.js), the text box (composer.js), push to talk, the checks before Start and
// the wait after too many attempts (start-hold.js), the transcript. This module keeps Start
// and Stop, and sends each change where it shows.
// State and audio levels are mirrored on window.voiceAgent for tests and debugging.
import { Api } from "./api.js";
import { Composer } from "./composer.js";
import { ConnectionSettings } from "./connection-settings.js";
import { DeviceChoices } from "./devices.js";
import { ErrorPanel } from "./error-panel.js";
import { canChooseSpeaker, livekitSupported } from "./media.js";
import { resumeAudio, startMeter } from "./meters.js";
import { MuteButton } from "./mute-button.js";
import { Preflight } from "./preflight.js";
import { PushToTalk } from "./push-to-talk.js";
import { SessionMachine, State } from "./session-machine.js";
import { Speakers } from "./speakers.js";
import { StartHold } from "./start-hold.js";
import { StatusLine } from "./status-line.js";
import { TranscriptView, lineDetails } from "./transcript-view.js";

const $ = (id) => document.getElementById(id);
const el = {
  start: $("start"), stop: $("stop"), enableAudio: $("enable-audio"),
  newRoom: $("new-room"), textOnly: $("text-only"),
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

const api = Api.fromPage();
const settings = new ConnectionSettings({
  details: $("settings"), room: $("room"), identity: $("identity"), rule: $("name-rule-text"),
});
const status = new StatusLine($("status"));
// After a 429 with Retry-After, Start waits that long.
const startHold = new StartHold({
  changed: () => renderControls(machine.state),
  ended: () => { if (machine.state === State.ERROR) status.readyAgain(); },
});
const errorPanel = new ErrorPanel({
  panel: $("error"), newRoom: el.newRoom, textOnly: el.textOnly,
  retryAfter: (seconds) => startHold.hold(seconds), changed: (kind) => { agent.errorKind = kind; },
});
const speakers = new Speakers({
  user: $("user-indicator"), agent: $("agent-indicator"), agentState: $("agent-state"),
  micOff: $("mic-off"), level: $("mic-level"),
});
const composer = new Composer({
  form: $("say-form"), text: $("say-text"), send: $("send"), note: $("say-note"),
  sendText: (text) => machine.sendText(text), sent: agent.sentTexts,
});
const note = (text) => composer.note(text);
// The microphone: muted, or none (text only); mirrored for the meter and push to talk.
const mute = new MuteButton({
  button: $("mute"), setMuted: (muted) => machine.setMuted(muted),
  changed: ({ textOnly, muted, mic }) => {
    Object.assign(agent, { textOnly, muted });
    speakers.microphone(mic);
  },
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
    status.pushToTalk(state);
  },
});
// The microphone and the speaker (devices.js): a choice made while live is used at once.
const devices = new DeviceChoices({
  microphone: $("mic-device"), speaker: $("speaker-device"), speakerField: $("speaker-field"),
  canChooseSpeaker: canChooseSpeaker(), note, shown: agent,
  use: (kind, id) => (machine.state === State.LIVE || machine.state === State.CONNECTING
    ? machine.switchDevice(kind, id) : null),
});

// ---- the page's view of the machine ------------------------------------------------------
function renderControls(state) {
  const busy = !(state === State.IDLE || state === State.ERROR);
  el.start.disabled = busy || startHold.holding || preflight.blocksStart;
  el.stop.disabled = !(state === State.CONNECTING || state === State.LIVE);
  settings.disabled = busy;
  const live = state === State.LIVE;
  composer.setLive(live);
  mute.setLive(live);
}

function render(state, step, extra = {}) {
  agent.state = state;
  if (state === State.LIVE) mute.show({ textOnly: step === "text_only", muted: agent.muted });
  pushToTalk.setLive(state === State.LIVE && !agent.textOnly);
  status.show(state, step, extra);
  document.body.dataset.chatState = state;
  renderControls(state);
}

function showAgentState(state) {
  agent.agentState = state || null;
  if (state) agent.agentStates.push(state);
  speakers.agentState(state);
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
    composer.refused(message.error);
  } else if (message.event) {
    speakers.speaking(message.role, message.event === "speech_started");
  } else if (message.final === false) {
    transcript.showInterim(message.text);
  } else if (message.final === true) {
    const details = lineDetails(message);
    if (message.role === "user" && !details.typed) transcript.showInterim("");
    if (details.typed) note("");
    transcript.append(message.role, message.text, details);
  }
}

function resetWidgets() {
  agent.roomState = "disconnected";
  agent.wsState = "closed";
  agent.micRms = agent.agentRms = 0;
  speakers.reset();
  transcript.setInterim("");
  el.enableAudio.hidden = true;
  agent.micDeviceId = null;
  showAgentState(null);
  mute.show({ textOnly: false, muted: false });
}

const machine = new SessionMachine({
  api,
  hooks: {
    state: render,
    notice: (what) => status.notice(what),
    error: (error) => errorPanel.show(error),
    session: (id) => { agent.sessionId = id; },
    room: (state) => { agent.roomState = state; },
    socket: (state) => { agent.wsState = state; },
    message: showMessage,
    microphone: (track) => {
      agent.micDeviceId = track.getSettings().deviceId || null; // the device really capturing
      devices.refresh(); // with the microphone allowed, the browser names its devices
      return startMeter(track, (rms) => {
        agent.micRms = rms;
        speakers.level(agent.muted ? 0 : Math.min(1, rms * 5));
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
  if (!machine.canStart || startHold.holding) return;
  if (preflight.blocksStart) return machine.refuse(preflight.error());
  let names;
  try {
    names = settings.read();
  } catch (error) {
    machine.refuse(error);
    return;
  }
  errorPanel.show(null);
  transcript.clear();
  agent.messages = [];
  agent.agentStates = [];
  agent.agentPeakRms = 0;
  note("");
  machine.start(names.room, names.identity, { textOnly, ...devices.chosen });
}

async function stop() {
  await machine.stop();
  if (machine.state === State.IDLE) el.start.focus();
}

el.start.addEventListener("click", () => start());
el.textOnly.addEventListener("click", () => start({ textOnly: true }));
el.stop.addEventListener("click", stop);
$("settings-form").addEventListener("submit", (event) => {
  event.preventDefault();
  start();
});
el.newRoom.addEventListener("click", () => {
  const room = settings.newRoom();
  errorPanel.show(null);
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

devices.watch();
resetWidgets();
render(State.IDLE, "idle");
preflight.watch();
