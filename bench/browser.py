"""`python -m bench browser`: voice-to-voice latency as the person hears it, in Chromium.

Debian Chromium (fake-media flags, as tests/e2e) plays a looping WAV as the microphone
into /chat on the real stack. A bench-only init script keeps the getUserMedia stream;
once the agent's <audio> element exists, one AudioWorklet per stream (mic and agent
track, same AudioContext, hence one clock) reports level edges every 128 samples. End of
speech = end of a mic speech burst; first agent audio = the next loud agent block.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from playwright.sync_api import Page, Playwright

from bench import common
from bench.live import real_stack
from bench.turns import TurnLog, describe, line
from devtools import setup

FLAGS = setup.CHROMIUM_FLAGS

INIT = """
(() => {
  const orig = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => { const s = await orig(c); window.__benchMic = s; return s; };
})();
"""

START_PROBES = """
async () => {
  const worklet = `
    class Edge extends AudioWorkletProcessor {
      constructor(o) { super(); this.thr = o.processorOptions.thr; this.loud = false; }
      process(inputs) {
        const ch = inputs[0] && inputs[0][0];
        if (ch) {
          let s = 0; for (let i = 0; i < ch.length; i++) s += ch[i] * ch[i];
          const loud = Math.sqrt(s / ch.length) > this.thr;
          if (loud !== this.loud) { this.loud = loud; this.port.postMessage({t: currentTime, loud}); }
        }
        return true;
      }
    }
    registerProcessor('edge', Edge);`;
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule(URL.createObjectURL(new Blob([worklet], {type: 'application/javascript'})));
  await ctx.resume();
  window.__benchCtx = ctx;
  window.__benchEdges = [];
  const probe = (stream, src, thr) => {
    const node = new AudioWorkletNode(ctx, 'edge', {processorOptions: {thr}});
    node.port.onmessage = (e) => window.__benchEdges.push({src, t: e.data.t, loud: e.data.loud});
    ctx.createMediaStreamSource(stream).connect(node);
    const sink = ctx.createGain(); sink.gain.value = 0; node.connect(sink).connect(ctx.destination);
  };
  probe(window.__benchMic, 'mic', 0.0056);   // -45 dBFS, as the clip was trimmed
  probe(document.getElementById('agent-audio').srcObject, 'agent', 0.01);
  return ctx.currentTime;
}
"""


def segments(edges: list[dict[str, Any]], src: str, merge_gap: float) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    start = None
    for e in (e for e in edges if e["src"] == src):
        if e["loud"]:
            start = e["t"]
        elif start is not None:
            if out and start - out[-1][1] < merge_gap:
                out[-1][1] = e["t"]
            else:
                out.append([start, e["t"]])
            start = None
    return [(a, b) for a, b in out]


def turns_from_edges(edges: list[dict[str, Any]]) -> TurnLog:
    log = TurnLog()
    mic = segments(edges, "mic", 0.4)  # the clip's comma pause is shorter than this
    agent = segments(edges, "agent", 0.3)
    log.first_audio = [a for a, _ in agent]
    for start, end in mic[:-1] if mic else []:  # the last burst may have no answer yet
        # A burst only counts as a turn if the agent was quiet when it started (no barge-in).
        if any(a <= start <= b for a, b in agent):
            continue
        log.speech_starts.append(start)
        log.speech_ends.append(end)
    return log


def run(profile: str, turns: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    if profile in common.OFFLINE_PROFILES:
        # What the rule-based replies say to the clip, read by Piper (~14 characters a second).
        from offline_openai.replies import reply_to

        reply, expected = len(reply_to(common.USER_SPEECH)) * 0.075, 2.0
    else:
        reply = len("You said: " + common.STT_UTTERANCE) * 0.055
        # Room for the reply before the loop speaks again, also with a 1 s end-of-turn window.
        expected = 2.4 if profile == "openai" else 1.4
    period = round(0.5 + common.speech_clip(48000).seconds + expected + reply + 1.2, 1)
    wav = common.browser_wav(period)
    print(f"== browser (Chromium fake mic, real stack), profile {profile}: loop {period} s, ~{turns} turns")
    load_start = os.getloadavg()  # the machine is shared: each profile's run says how busy it was
    messages: list[tuple[float, dict[str, Any]]] = []
    with real_stack(profile) as stack, sync_playwright() as pw:
        with live_chat(pw, stack, str(wav)) as page:
            deadline = time.monotonic() + (turns + 2) * period + 10
            while time.monotonic() < deadline:
                page.wait_for_timeout(500)
                messages += new_messages(page, len(messages))
                if len(turns_from_edges(page.evaluate("window.__benchEdges")).speech_ends) >= turns + 1:
                    break
            edges = page.evaluate("window.__benchEdges")
    log = turns_from_edges(edges)
    log.add_socket(messages)  # the replies' latency, as the page received it (its audio clock)
    log.speech_ends, log.speech_starts = (
        log.speech_ends[1 : turns + 1],
        log.speech_starts[1 : turns + 1],
    )  # 1st may overlap the greeting
    d = describe(log)
    d["loop_period_s"] = period
    d["loadavg"] = {"start": load_start, "end": os.getloadavg()}
    load = f"load {load_start[0]:.1f} -> {d['loadavg']['end'][0]:.1f}"
    print(line("browser", d) + f"  unanswered={d['unanswered']}  {load}", flush=True)
    return d


def new_messages(page: Page, seen: int) -> list[tuple[float, dict[str, Any]]]:
    """The socket messages the page has received since the first `seen`, stamped with the
    page's audio clock now (as often as this is called)."""
    got = page.evaluate("(n) => ({t: window.__benchCtx.currentTime, m: window.voiceAgent.messages.slice(n)})", seen)
    return [(got["t"], message) for message in got["m"]]


@contextlib.contextmanager
def live_chat(pw: Playwright, stack: Any, microphone: str) -> Iterator[Page]:
    """/chat in Chromium whose fake microphone plays `microphone`, started, with the level
    probes running; Stop pressed and the browser closed at the end."""
    browser = pw.chromium.launch(
        executable_path=str(setup.chromium()),
        headless=True,
        args=[*FLAGS, f"--use-file-for-fake-audio-capture={microphone}"],
    )
    try:
        # The level probes are the bench's own scripts (a blob: worklet), which the page's
        # Content-Security-Policy rightly refuses: for this page only, Chromium does not enforce it.
        page = browser.new_page(bypass_csp=True)
        page.add_init_script(INIT)
        page.goto(f"{stack.ui_url}/chat")
        page.get_by_role("button", name="Start").click()
        page.wait_for_selector("#agent-audio", state="attached", timeout=60_000)
        page.evaluate(START_PROBES)
        yield page
        page.get_by_role("button", name="Stop").click()
        page.wait_for_selector("#status[data-state='idle']", timeout=20_000)
    finally:
        browser.close()


def main(turns: int, profiles: list[str], out: str) -> dict[str, Any]:
    results = {p: run(p, turns) for p in profiles}
    common.write_result(out, {"kind": "latency_browser", "turns_per_run": turns, "results": results})
    return results
