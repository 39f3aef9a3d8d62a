// Audio levels: an AnalyserNode per track, its RMS sampled every 50 ms.
const INTERVAL_MS = 50;
let audioContext = null;

function context() {
  audioContext = audioContext || new AudioContext();
  resumeAudio();
  return audioContext;
}

/** Browsers start audio suspended until a click; call this from one. */
export function resumeAudio() {
  if (audioContext && audioContext.state === "suspended") audioContext.resume().catch(() => {});
}

/**
 * Measure `mediaStreamTrack`'s level and pass it (RMS, 0..1) to `onLevel` until stopped.
 * @returns {() => void} stops the meter
 */
export function startMeter(mediaStreamTrack, onLevel) {
  const audio = context();
  const source = audio.createMediaStreamSource(new MediaStream([mediaStreamTrack]));
  const analyser = audio.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    onLevel(Math.sqrt(sum / samples.length));
  }, INTERVAL_MS);
  return () => {
    clearInterval(timer);
    source.disconnect();
  };
}
