"""What the page hears, measured in the page: an init script taps the microphone stream and
the agent's remote audio track (the <audio> element livekit-client attaches) with one
AudioWorklet each, on one AudioContext (one clock). It records level edges for both and
the agent's samples, so a test can recognise what the agent said as the page received it
and time each turn: end of the person's speech → first agent audio.

Test instrumentation only: the page under test is not changed.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from playwright.sync_api import Page

MIC_THRESHOLD = 0.0056  # -45 dBFS: the recordings' pauses are digital silence
AGENT_THRESHOLD = 0.01  # -40 dBFS
BLOCK_SECONDS = 128 / 48000  # an AudioWorklet block at 48 kHz


def fill(probe: str) -> str:
    """A probe's script with its placeholders filled: the thresholds and PCM_OF_CHUNKS."""
    thresholds = {"MIC_THRESHOLD": str(MIC_THRESHOLD), "AGENT_THRESHOLD": str(AGENT_THRESHOLD)}
    for placeholder, value in {**thresholds, "PCM_OF_CHUNKS": PCM_OF_CHUNKS}.items():
        probe = probe.replace(placeholder, value)
    return probe


# The probes' chunks of samples as one base64 string of int16 PCM, with the first one's time
# (Firefox's probe, tests/e2e/firefox.py, uses it too).
PCM_OF_CHUNKS = """state.pcm = (chunks) => {
    if (!chunks.length) return { t0: null, b64: '' };
    const total = chunks.reduce((n, c) => n + c.pcm.length, 0);
    const all = new Int16Array(total); let o = 0;
    for (const c of chunks) { all.set(c.pcm, o); o += c.pcm.length; }
    const bytes = new Uint8Array(all.buffer); let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return { t0: chunks[0].t0, b64: btoa(s) };
  };"""

PROBE = fill("""
(() => {
  const state = window.__pageAudio = { edges: [], chunks: [], rate: 0, agentFrom: null, micFrom: null, errors: [] };
  const worklet = `
    class Probe extends AudioWorkletProcessor {
      constructor(o) { super(); this.thr = o.processorOptions.thr; this.keep = o.processorOptions.keep;
                       this.loud = false; this.buf = []; this.n = 0; }
      process(inputs) {
        const ch = inputs[0] && inputs[0][0];
        if (!ch) return true;
        let s = 0; for (let i = 0; i < ch.length; i++) s += ch[i] * ch[i];
        const loud = Math.sqrt(s / ch.length) > this.thr;
        if (loud !== this.loud) { this.loud = loud; this.port.postMessage({ edge: loud, t: currentTime }); }
        if (this.keep) {
          const pcm = new Int16Array(ch.length);
          for (let i = 0; i < ch.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, ch[i] * 32768));
          if (!this.buf.length) this.t0 = currentTime;
          this.buf.push(pcm); this.n += pcm.length;
          if (this.n >= 4800) {
            const out = new Int16Array(this.n); let o = 0;
            for (const b of this.buf) { out.set(b, o); o += b.length; }
            this.port.postMessage({ t0: this.t0, pcm: out }, [out.buffer]);
            this.buf = []; this.n = 0;
          }
        }
        return true;
      }
    }
    registerProcessor('probe', Probe);`;
  let ready = null;
  const context = () => {
    if (!ready) ready = (async () => {
      const ctx = new AudioContext();
      state.rate = ctx.sampleRate;
      await ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([worklet], { type: 'application/javascript' })));
      await ctx.resume();
      return ctx;
    })();
    return ready;
  };
  const tap = async (stream, src, thr, keep) => {
    try {
      const ctx = await context();
      const node = new AudioWorkletNode(ctx, 'probe', { processorOptions: { thr, keep } });
      node.port.onmessage = (e) => {
        if ('edge' in e.data) state.edges.push({ src, t: e.data.t, loud: e.data.edge });
        else state.chunks.push(e.data);
      };
      ctx.createMediaStreamSource(stream).connect(node);
      const sink = ctx.createGain(); sink.gain.value = 0; node.connect(sink).connect(ctx.destination);
      if (src === 'agent') state.agentFrom = ctx.currentTime;
      if (src === 'mic') { state.micFrom = ctx.currentTime; state.ctx = ctx; }
    } catch (e) { state.errors.push(String(e)); }
  };
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await original(constraints);
    if (stream.getAudioTracks().length) tap(stream, 'mic', MIC_THRESHOLD, false);
    return stream;
  };
  const tapped = new WeakSet();
  const watch = () => {
    for (const audio of document.querySelectorAll('audio')) {
      const stream = audio.srcObject;
      if (stream && !tapped.has(stream) && stream.getAudioTracks().length) {
        tapped.add(stream);
        tap(stream, 'agent', AGENT_THRESHOLD, true);
      }
    }
  };
  new MutationObserver(watch).observe(document, { subtree: true, childList: true, attributes: true });
  setInterval(watch, 100);  // srcObject is a property, not an attribute: poll it as well
  PCM_OF_CHUNKS
  state.agentPcm = () => state.pcm(state.chunks);
})();
""")



@dataclass
class Heard:
    """The page's view of the audio, on the page's AudioContext clock (seconds)."""

    rate: int
    edges: list[dict[str, Any]]
    agent: np.ndarray  # int16 mono at `rate`, from `agent_t0`
    agent_t0: float
    mic_spans: list[tuple[float, float]] = field(default_factory=list)
    agent_spans: list[tuple[float, float]] = field(default_factory=list)

    def agent_audio(self, start: float, end: float) -> np.ndarray:
        a = max(0, int((start - self.agent_t0) * self.rate))
        b = max(a, int((end - self.agent_t0) * self.rate))
        return self.agent[a:b]


def install(page: Page) -> None:
    """Before the page loads: tap the microphone and the agent's audio as they appear.

    The probe's AudioWorklet module is a blob: URL, which the pages' Content-Security-Policy
    refuses, and Chromium lets Playwright answer no worklet request itself: a page with the
    probe runs without the CSP (as Playwright's bypass_csp does). The browser tests without
    the probe keep it."""
    page.context.new_cdp_session(page).send("Page.setBypassCSP", {"enabled": True})
    page.add_init_script(PROBE)


def mic_seconds(page: Page) -> float:
    """How long the microphone has been playing (its file, with Chromium's fake device)."""
    seconds = page.evaluate(
        "window.__pageAudio.micFrom === null ? 0 : window.__pageAudio.ctx.currentTime - window.__pageAudio.micFrom"
    )
    return float(seconds)


def spans(edges: list[dict[str, Any]], src: str, merge_gap: float) -> list[tuple[float, float]]:
    """Loud stretches of one source, merging gaps shorter than `merge_gap` seconds."""
    out: list[list[float]] = []
    start = None
    for edge in (e for e in edges if e["src"] == src):
        if edge["loud"]:
            start = edge["t"]
        elif start is not None:
            if out and start - out[-1][1] < merge_gap:
                out[-1][1] = edge["t"]
            else:
                out.append([start, edge["t"]])
            start = None
    if start is not None:  # still loud at the end of the recording
        out.append([start, start + BLOCK_SECONDS])
    return [(a, b) for a, b in out]


def heard(page: Page, *, mic_gap: float = 0.7, agent_gap: float = 0.6) -> Heard:
    """Everything the probes collected so far."""
    state = page.evaluate("({ rate: window.__pageAudio.rate, edges: window.__pageAudio.edges, "
                          "errors: window.__pageAudio.errors, pcm: window.__pageAudio.agentPcm() })")
    assert not state["errors"], state["errors"]
    raw = base64.b64decode(state["pcm"]["b64"]) if state["pcm"]["b64"] else b""
    pcm = np.frombuffer(raw, dtype=np.int16)
    edges = state["edges"]
    return Heard(
        rate=int(state["rate"] or 48000),
        edges=edges,
        agent=pcm,
        agent_t0=state["pcm"]["t0"] or 0.0,
        mic_spans=spans(edges, "mic", mic_gap),
        agent_spans=spans(edges, "agent", agent_gap),
    )
