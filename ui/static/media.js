// The media side of a conversation: the LiveKit room the browser joins, the microphone it
// publishes and the agent's audio it receives. LiveKit's API stays in this module.
import { browserSupport, unsupportedError } from "./browser-support.js";
import { UiError } from "./errors.js";
import { connectError } from "./livekit-errors.js";

// Imported when the page loads, awaited when it is needed: if the library is missing, the
// page still works and says so when Start is pressed (a static import would stop the page).
const library = import("livekit-client").catch((error) => {
  console.error("livekit-client did not load", error);
  return null;
});

/** What a failed getUserMedia (or LiveKit's wrapper of it) means for the person. */
export function micError(error) {
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

/** livekit-client's own verdict on this browser (isBrowserSupported()); null without one. */
function verdict(livekit) {
  return livekit && typeof livekit.isBrowserSupported === "function" ? Boolean(livekit.isBrowserSupported()) : null;
}

/** The verdict once the library has loaded (null if it did not). */
export async function livekitSupported() {
  return verdict(await library);
}

/** Whether this browser can choose where audio plays (HTMLMediaElement.setSinkId). */
export const canChooseSpeaker = () => typeof HTMLMediaElement !== "undefined" && "setSinkId" in HTMLMediaElement.prototype;

// LiveKit's text input for agents: a text stream on this topic reaches the agent as a user turn.
export const CHAT_TOPIC = "lk.chat";
// LiveKit's RPC error for a method the recipient has not registered.
const UNSUPPORTED_METHOD = 1400;

/**
 * One LiveKit room for one conversation.
 * `events`: agentAudio({element, mediaStreamTrack}), playback(canPlay), reconnecting(),
 * reconnected(), disconnected(), microphone(mediaStreamTrack) (the microphone's track was
 * replaced: another device).
 */
export class MediaRoom {
  static async open(events) {
    const livekit = await library;
    if (!livekit || !livekit.Room) throw new UiError("client_missing", "The LiveKit client library did not load.");
    // Checked before anything connects: no WebRTC is not "the server is unreachable".
    const support = browserSupport(globalThis, verdict(livekit));
    if (!support.canCall) throw unsupportedError(support);
    return new MediaRoom(livekit, events);
  }

  constructor(livekit, events) {
    const { Room, RoomEvent, Track, TrackEvent } = livekit;
    this.RoomEvent = RoomEvent;
    this.Track = Track;
    this.TrackEvent = TrackEvent;
    this.events = events;
    this.room = new Room();
    this.room.on(RoomEvent.TrackSubscribed, (track, publication, participant) => {
      if (track.kind !== Track.Kind.Audio) return;
      // Only the agent is heard: the server marks it (participant kind "agent"), and no
      // token the API gives a visitor can. Anyone else's audio is not even received.
      if (!participant.isAgent) {
        console.warn("not playing audio from a participant that is not the agent", participant.identity);
        publication.setSubscribed(false);
        return;
      }
      // Played by an <audio> element: WebAudio alone would read silence.
      events.agentAudio({ element: track.attach(), mediaStreamTrack: track.mediaStreamTrack });
    });
    this.room.on(RoomEvent.AudioPlaybackStatusChanged, () => events.playback(this.room.canPlaybackAudio));
    this.room.on(RoomEvent.Reconnecting, () => events.reconnecting());
    this.room.on(RoomEvent.Reconnected, () => events.reconnected());
    this.room.on(RoomEvent.Disconnected, () => events.disconnected());
  }

  async connect(url, token) {
    try {
      await this.room.connect(url, token);
    } catch (e) {
      throw connectError(e, url, () => unsupportedError(browserSupport(globalThis, false)));
    }
  }

  /**
   * Publish the microphone (`deviceId`: the chosen input, or the browser's default);
   * resolves to its MediaStreamTrack (for the level meter), if any.
   */
  async enableMicrophone(deviceId) {
    try {
      await this.room.localParticipant.setMicrophoneEnabled(true, deviceId ? { deviceId } : undefined);
    } catch (e) {
      throw micError(e);
    }
    const track = this.microphoneTrack;
    if (!track) return null;
    // Another device replaces the MediaStreamTrack: the level meter must follow it.
    track.on(this.TrackEvent.Restarted, () => this.events.microphone?.(track.mediaStreamTrack));
    return track.mediaStreamTrack;
  }

  get microphoneTrack() {
    return this.room.localParticipant.getTrackPublication(this.Track.Source.Microphone)?.track ?? null;
  }

  /**
   * Mute or unmute the published microphone: a muted track sends nothing the agent can hear
   * (LiveKit also tells the other participants it is muted). Resolves to whether it is muted.
   */
  async setMicrophoneMuted(muted) {
    const track = this.microphoneTrack;
    if (!track) return true;
    if (muted) await track.mute();
    else await track.unmute();
    return track.isMuted;
  }

  /** Use another device: "audioinput" (the microphone) or "audiooutput" (where the agent plays). */
  async switchDevice(kind, deviceId) {
    return this.room.switchActiveDevice(kind, deviceId);
  }

  /** Send a typed message to the agent (LiveKit's text input for agents). */
  async sendText(text) {
    await this.room.localParticipant.sendText(text, { topic: CHAT_TOPIC });
  }

  /**
   * Call the agent's RPC `method` (LiveKit RPC to the participant marked agent) with the
   * string `payload`; resolves to its answer, rejects with LiveKit's RpcError (`code`,
   * `message`, `data`). Waits up to `timeout` ms for the agent, and its method, to be there.
   */
  async callAgent(method, payload = "", { timeout = 10000 } = {}) {
    const deadline = Date.now() + timeout;
    const local = this.room.localParticipant;
    for (;;) {
      const agent = await this.agentParticipant(deadline - Date.now());
      try {
        return await local.performRpc({ destinationIdentity: agent.identity, method, payload });
      } catch (error) {
        // The agent joined but has not registered its methods yet: ask again shortly.
        if (error?.code !== UNSUPPORTED_METHOD || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  /** The room's agent participant, once it is there (rejects after `timeout` ms). */
  agentParticipant(timeout) {
    const find = () => [...this.room.remoteParticipants.values()].find((p) => p.isAgent);
    const present = find();
    if (present) return Promise.resolve(present);
    return new Promise((resolve, reject) => {
      const joined = () => {
        const agent = find();
        if (!agent) return;
        clearTimeout(timer);
        this.room.off(this.RoomEvent.ParticipantConnected, joined);
        resolve(agent);
      };
      const timer = setTimeout(() => {
        this.room.off(this.RoomEvent.ParticipantConnected, joined);
        reject(new UiError("agent_missing", "The agent is not in the room."));
      }, Math.max(0, timeout));
      this.room.on(this.RoomEvent.ParticipantConnected, joined);
    });
  }

  /** False while the browser blocks autoplay: the page then asks for a click. */
  get canPlaybackAudio() {
    return this.room.canPlaybackAudio;
  }

  startAudio() {
    return this.room.startAudio().catch(() => {});
  }

  disconnect() {
    return this.room.disconnect().catch(() => {});
  }
}
