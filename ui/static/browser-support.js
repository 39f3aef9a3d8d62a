// Whether this browser can make a call, found feature by feature (never by its name or
// version), and what to tell the person when it cannot. No DOM, no LiveKit import: the
// page passes livekit-client's own verdict (isBrowserSupported()) when it has it.
//
// A call needs WebRTC (the audio and the data channel typed messages use) and a WebSocket
// (LiveKit's signalling and the transcript). The microphone and Web Audio matter less: without
// them the person can still type, or the level meters stay still. The page itself does not use
// AudioWorklet (its meters are AnalyserNodes); it is checked and reported for the record.
import { UiError } from "./errors.js";

/** Each feature: its key, how it is named to people, whether calls need it, and the test. */
export const FEATURES = [
  { key: "webrtc", name: "WebRTC (RTCPeerConnection)", required: true,
    present: (g) => typeof g.RTCPeerConnection === "function" },
  { key: "websocket", name: "WebSocket", required: true, present: (g) => typeof g.WebSocket === "function" },
  { key: "microphone", name: "microphone capture (navigator.mediaDevices.getUserMedia)", required: false,
    present: (g) => typeof g.navigator?.mediaDevices?.getUserMedia === "function" },
  { key: "webaudio", name: "Web Audio (AudioContext)", required: false,
    present: (g) => typeof (g.AudioContext || g.webkitAudioContext) === "function" },
  { key: "audioworklet", name: "AudioWorklet", required: false,
    present: (g) => typeof g.AudioWorkletNode === "function" },
];

// livekit-client's isBrowserSupported() also wants RTCRtpTransceiver or addTrack.
const LIVEKIT = { key: "webrtc-tracks", name: "WebRTC audio tracks (RTCRtpTransceiver)", required: true };

/**
 * What this browser lacks.
 * @param {object} [g] the global object (a fake one in tests)
 * @param {boolean|null} [livekit] livekit-client's isBrowserSupported(), or null when unknown
 * @returns {{canCall: boolean, missing: {key: string, name: string, required: boolean}[],
 *            insecure: boolean}} `insecure`: no microphone because the page is not on
 *            HTTPS or localhost (the address's fault, not the browser's)
 */
export function browserSupport(g = globalThis, livekit = null) {
  const insecure = g.isSecureContext === false;
  const missing = FEATURES.filter((f) => !f.present(g) && !(insecure && f.key === "microphone"))
    .map(({ key, name, required }) => ({ key, name, required }));
  if (livekit === false && !missing.some((f) => f.key === "webrtc")) missing.push({ ...LIVEKIT });
  return { canCall: !missing.some((f) => f.required), missing, insecure };
}

const listed = (names) => (names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`);

/** "This browser has no WebRTC (RTCPeerConnection), which calls need." and what else it lacks. */
export function unsupportedMessage(support) {
  const needed = support.missing.filter((f) => f.required).map((f) => f.name);
  const others = support.missing.filter((f) => !f.required).map((f) => f.name);
  const also = others.length ? ` It also lacks ${listed(others)}.` : "";
  return `This browser has no ${listed(needed)}, which calls need.${also}`;
}

/** The error the page shows when Start is tried in a browser that cannot make calls. */
export function unsupportedError(support) {
  return new UiError("browser_unsupported", unsupportedMessage(support));
}
