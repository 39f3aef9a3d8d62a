"""`python -m bench wer [--quick]`: word error rate on real people's recordings
(tests/data/human, 11 files), three ways, so that a loss can be placed:

* **http**: each file POSTed to the offline server's /v1/audio/transcriptions (Whisper on
  the whole file, no streaming);
* **realtime**: each file streamed at real time, then 2 s of silence, through the realtime
  transcription socket by the product's own plugin (`livekit.plugins.openai.STT(use_realtime=True)`,
  built as app.voice.agent.providers.openai builds it), the server VAD cutting the segments;
* **browser**: the whole product. Chromium's fake microphone plays the recordings one after
  the other, each followed by a pause long enough for the agent's answer, into /chat of a
  stack whose agent runs the production openai providers against the stack's own offline
  server (Opus, WebRTC, LiveKit, the agent's realtime STT). The user lines the page shows
  as final (`window.voiceAgent.messages`) are assigned to the recording being played when
  they arrived (mic level edges and arrival on the page's audio clock).

Per file and pooled (total errors / total reference words), normalised by
`offline_openai.wer` as every WER the project quotes. Writes bench/results/wer.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx

from bench import common
from bench.browser import live_chat
from bench.human import MicFile, Recording, load, mic_file, wav_bytes
from bench.live import offline_server, real_stack
from offline_openai.wer import pooled_wer, wer

STT_MODEL = "gpt-4o-mini-transcribe"  # what the agent asks for (app.voice.agent.providers.openai)
QUICK = ("cards_001.wav", "librivox_0880.wav", "goforward.raw")
GOAL = 0.10  # pooled WER through the browser


# ---- http ------------------------------------------------------------------------------------
def via_http(v1: str, recordings: list[Recording]) -> dict[str, dict[str, Any]]:
    out = {}
    with httpx.Client(base_url=v1, timeout=120, headers={"Authorization": "Bearer x"}) as client:
        for r in recordings:
            started = time.monotonic()
            response = client.post(
                "/audio/transcriptions",
                files={"file": (r.name.replace(".raw", ".wav"), wav_bytes(r), "audio/wav")},
                data={"model": STT_MODEL, "language": "en"},
            )
            response.raise_for_status()
            out[r.name] = {"text": response.json()["text"], "seconds": time.monotonic() - started}
    return out


# ---- realtime, the product's plugin ------------------------------------------------------------
async def _stream_one(base_url: str, r: Recording) -> dict[str, Any]:
    import numpy as np
    from livekit import rtc
    from livekit.agents import stt as agents_stt
    from livekit.plugins import openai as openai_plugin

    kinds = agents_stt.SpeechEventType
    stt = openai_plugin.STT(use_realtime=True, base_url=base_url, api_key="x", language="en", model=STT_MODEL)
    stream = stt.stream()
    samples = np.concatenate([r.samples, np.zeros(32000, dtype=np.int16)])  # then 2 s of silence
    finals: list[str] = []
    starts = 0
    speech_end: float | None = None
    final_at: float | None = None

    async def push() -> None:
        nonlocal speech_end
        clock = time.monotonic()
        for i in range(0, len(samples), 320):  # 20 ms frames at real time, as a microphone
            chunk = samples[i : i + 320]
            stream.push_frame(rtc.AudioFrame(chunk.tobytes(), 16000, 1, len(chunk)))
            if i + 320 >= len(r.samples) and speech_end is None:
                speech_end = time.monotonic()
            clock += 0.02
            await asyncio.sleep(max(0.0, clock - time.monotonic()))

    settled = asyncio.Event()  # every segment heard so far has its final

    async def read() -> None:
        nonlocal starts, final_at
        async for event in stream:
            if event.type == kinds.START_OF_SPEECH:
                starts += 1
                settled.clear()
            elif event.type == kinds.FINAL_TRANSCRIPT:
                finals.append(event.alternatives[0].text)
                final_at = time.monotonic()
                if len(finals) >= starts:
                    settled.set()

    reader = asyncio.create_task(read())
    try:
        await push()
        with contextlib.suppress(TimeoutError):  # bounded: every segment's final, or give up
            await asyncio.wait_for(settled.wait(), 20)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        await stream.aclose()
        await stt.aclose()
    after = (final_at - speech_end) if final_at and speech_end else None
    return {"text": " ".join(finals), "segments": len(finals), "final_after_audio_end_s": after}


async def _realtime(base_url: str, recordings: list[Recording]) -> dict[str, dict[str, Any]]:
    from livekit.agents.utils import http_context

    out = {}
    async with http_context.open():
        for r in recordings:
            out[r.name] = await _stream_one(base_url, r)
    return out


def via_realtime(v1: str, recordings: list[Recording]) -> dict[str, dict[str, Any]]:
    return asyncio.run(_realtime(v1, recordings))


# ---- the browser -----------------------------------------------------------------------------
def assign(mic: MicFile, offset: float, finals: list[tuple[float, str]]) -> list[list[tuple[float, str]]]:
    """Each final line to the recording that was playing (or had just been played) when it
    arrived: the last one that started before it; lines before the first go nowhere."""
    out: list[list[tuple[float, str]]] = [[] for _ in mic.spans]
    for t, text in finals:
        started = [i for i, (a, _) in enumerate(mic.spans) if a + offset <= t]
        if started:
            out[started[-1]].append((t, text))
    return out


def via_browser(recordings: list[Recording]) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from bench.browser import new_messages, segments

    mic = mic_file(recordings, lead=10.0)  # after the greeting (~4 s), with the probes running
    print(f"   browser: {len(recordings)} recordings in a {mic.seconds:.0f} s microphone file")
    messages: list[tuple[float, dict[str, Any]]] = []
    # The product as a person meets it without a key: the agent on the production openai
    # providers, against the stack's own offline server (its default, preemptive TTS on).
    with real_stack("offline-preemptive") as stack, sync_playwright() as pw:
        with live_chat(pw, stack, f"{mic.path}%noloop") as page:
            deadline = time.monotonic() + mic.seconds + 60  # bounded whatever the page does
            while time.monotonic() < deadline:
                page.wait_for_timeout(250)
                messages += new_messages(page, len(messages))
                now = page.evaluate("window.__benchCtx.currentTime")
                mics = segments(page.evaluate("window.__benchEdges"), "mic", 2.0)
                if mics and now > mics[0][0] - mic.spans[0][0] + mic.seconds + 3:
                    break  # the file has played out, and the last answer has had its time
            edges = page.evaluate("window.__benchEdges")
    finals = [(t, m["text"]) for t, m in messages if m.get("role") == "user" and m.get("final") is True]
    bursts = segments(edges, "mic", 2.0)
    if not bursts:
        raise RuntimeError("the page's microphone stayed silent")
    offset = bursts[0][0] - mic.spans[0][0]
    per = assign(mic, offset, finals)
    # The end of each recording's speech as the page heard it (its level edge), when the
    # bursts are the recordings one to one; else the file's timeline.
    ends = [b for _, b in bursts] if len(bursts) == len(mic.spans) else [b + offset for _, b in mic.spans]
    out: dict[str, Any] = {}
    for r, lines, end in zip(recordings, per, ends, strict=True):
        out[r.name] = {
            "text": " ".join(text for _, text in lines),
            "lines": len(lines),
            # Polled every 250 ms: a coarse figure, the latency benchmark has the fine one.
            "final_shown_after_speech_end_s": (lines[-1][0] - end) if lines else None,
        }
    return {
        "files": out,
        "mic_bursts": len(bursts),
        "final_lines": len(finals),
        "unassigned_lines": len(finals) - sum(len(x) for x in per),
    }


# ---- the whole -------------------------------------------------------------------------------
def score(recordings: list[Recording], heard: dict[str, dict[str, Any]]) -> dict[str, Any]:
    pairs = [(r.reference, heard.get(r.name, {}).get("text", "")) for r in recordings]
    return {
        "pooled": pooled_wer(pairs),
        "per_file": {r.name: wer(ref, hyp) for r, (ref, hyp) in zip(recordings, pairs, strict=True)},
    }


def table(recordings: list[Recording], results: dict[str, Any]) -> str:
    ways = [w for w in ("http", "realtime", "browser") if w in results]
    lines = [f"   {'file':<20} {'words':>5}  " + "  ".join(f"{w:>8}" for w in ways)]
    for r in recordings:
        cells = "  ".join(f"{results[w]['wer']['per_file'][r.name]:>8.3f}" for w in ways)
        lines.append(f"   {r.name:<20} {len(r.reference.split()):>5}  {cells}")
    words = sum(len(r.reference.split()) for r in recordings)
    lines.append(f"   {'pooled':<20} {words:>5}  " + "  ".join(f"{results[w]['wer']['pooled']:>8.3f}" for w in ways))
    return "\n".join(lines)


def main(quick: bool, out: str) -> dict[str, Any]:
    recordings = load()
    if quick:
        recordings = [r for r in recordings if r.name in QUICK]
    print(f"== WER on {len(recordings)} real recordings ({sum(r.seconds for r in recordings):.0f} s of speech)")
    results: dict[str, Any] = {}
    with offline_server() as (server, ready_seconds):
        print(f"   offline server ready in {ready_seconds:.1f} s")
        for way, run in (("http", via_http), ("realtime", via_realtime)):
            started = time.monotonic()
            heard = run(server.openai_url, recordings)
            results[way] = {"files": heard, "wer": score(recordings, heard)}
            print(f"   {way}: pooled WER {results[way]['wer']['pooled']:.3f}  [{time.monotonic() - started:.0f} s]")
    started = time.monotonic()
    browser = via_browser(recordings)
    results["browser"] = {**browser, "wer": score(recordings, browser["files"])}
    pooled = results["browser"]["wer"]["pooled"]
    print(f"   browser: pooled WER {pooled:.3f} (goal <= {GOAL})  [{time.monotonic() - started:.0f} s]")
    print(table(recordings, results), flush=True)
    common.write_result(
        out,
        {
            "kind": "wer",
            "recordings": {r.name: {"reference": r.reference, "seconds": r.seconds} for r in recordings},
            "goal_browser_pooled": GOAL,
            "results": results,
        },
    )
    return results
