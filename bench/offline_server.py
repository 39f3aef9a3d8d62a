"""`python -m bench offline-server [--quick]`: what the offline OpenAI-compatible server
(`python -m offline_openai`) costs the machine that runs it without a key.

* **Cold start** (5 launches): launch → /healthz answering (model files checked, Whisper
  and Piper loaded), the memory at rest (RSS and PSS), then the first requests a fresh
  server gets, each followed by a second one for comparison: a transcription (POST
  /v1/audio/transcriptions of one real recording, 2.2 s) and a speech (POST
  /v1/audio/speech, the greeting, raw PCM: first byte and whole).
* **Under load**: the bench stack with the offline profile (the agent on the production
  openai providers against the stack's offline server) and N = 1 and 3 concurrent bots
  (bench.bot, each its own room and session, 5 turns of the flite clip). The offline
  server's process is sampled with psutil: its CPU seconds per second of conversation per
  session (cpu % / N), and its RSS and PSS, peak, against 5 s idle in the same stack.

Writes bench/results/offline_server.json.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import psutil

from bench import common
from bench.capacity import Sampler
from bench.human import load, wav_bytes
from bench.live import offline_server, real_stack, run_bots
from bench.turns import TurnPlan
from bench.wer import STT_MODEL

SPEECH = {
    "model": "gpt-4o-mini-tts",
    "voice": "alloy",
    "response_format": "pcm",
    "input": "Hello! I am a local voice agent. Say something and I will answer.",
}
RECORDING = "librivox_0880.wav"


def _memory_mb(pid: int) -> dict[str, float]:
    info = psutil.Process(pid).memory_full_info()
    return {"rss": info.rss / 2**20, "pss": info.pss / 2**20}


def _transcribe(client: httpx.Client, wav: bytes) -> float:
    started = time.monotonic()
    response = client.post(
        "/audio/transcriptions",
        files={"file": ("a.wav", wav, "audio/wav")},
        data={"model": STT_MODEL, "language": "en"},
    )
    response.raise_for_status()
    return time.monotonic() - started


def _speak(client: httpx.Client) -> tuple[float, float]:
    """(first byte, whole answer) in seconds."""
    started, first = time.monotonic(), None
    with client.stream("POST", "/audio/speech", json=SPEECH) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            if chunk and first is None:
                first = time.monotonic() - started
    return first or 0.0, time.monotonic() - started


def cold_start(runs: int) -> dict[str, Any]:
    wav = wav_bytes(next(r for r in load() if r.name == RECORDING))
    rows = []
    for i in range(runs):
        with (
            offline_server() as (server, ready_seconds),
            httpx.Client(base_url=server.openai_url, timeout=120, headers={"Authorization": "Bearer x"}) as client,
        ):
            pid = server.processes["offline-openai"].pid
            rest = _memory_mb(pid)
            row = {
                "ready_s": ready_seconds,
                "memory_at_rest_mb": rest,
                "first_transcription_s": _transcribe(client, wav),
                "second_transcription_s": _transcribe(client, wav),
            }
            row["first_speech_ttfb_s"], row["first_speech_s"] = _speak(client)
            row["second_speech_ttfb_s"], row["second_speech_s"] = _speak(client)
            row["memory_after_mb"] = _memory_mb(pid)
            rows.append(row)
            print(
                f"   start {i + 1}: ready {row['ready_s']:.2f} s, RSS {rest['rss']:.0f} MB PSS {rest['pss']:.0f} MB;"
                f" transcription 1st {common.fmt(row['first_transcription_s'])} 2nd"
                f" {common.fmt(row['second_transcription_s'])}; speech first byte 1st"
                f" {common.fmt(row['first_speech_ttfb_s'])} 2nd {common.fmt(row['second_speech_ttfb_s'])}",
                flush=True,
            )
    keys = [k for k in rows[0] if k.endswith("_s")]
    summary = {k: common.summary([r[k] for r in rows]) for k in keys}
    for k in ("rss", "pss"):
        summary[f"memory_at_rest_{k}_mb"] = common.summary([r["memory_at_rest_mb"][k] for r in rows])
    return {"runs": rows, "summary": summary}


def under_load(steps: list[int], turns: int) -> list[dict[str, Any]]:
    with real_stack("offline") as stack:
        return _steps(stack, steps, turns)


def _steps(stack: Any, steps: list[int], turns: int) -> list[dict[str, Any]]:
    clip = common.speech_clip(16000)
    plan = TurnPlan(turns=turns)
    rows = []
    pids: dict[str, int | list[int]] = {
        "offline_openai": stack.processes["offline-openai"].pid,
        "backend": stack.processes["backend"].pid,
        "livekit": stack.processes["livekit"].pid,
    }
    with Sampler(pids, pss=True) as idle:
        time.sleep(5)
    for n in steps:
        with Sampler(pids, pss=True) as sampler:
            results = asyncio.run(run_bots(stack, n, plan, clip, prefix=f"off{n}"))
        latencies = [x for r in results for x in r.log.latencies() if x is not None]
        errors = [e for r in results for e in r.log.errors]
        answered = len(latencies)
        unanswered = sum(x is None for r in results for x in r.log.latencies())
        cpu, idle_cpu = sampler.cpu_pct["offline_openai"], idle.cpu_pct["offline_openai"]
        cpu_seconds = (cpu - idle_cpu) / 100 * sampler.elapsed
        row = {
            "sessions": n,
            "step_seconds": sampler.elapsed,
            "offline_cpu_pct": cpu,
            "offline_idle_cpu_pct": idle_cpu,
            "offline_cpu_s_per_conversation_s_per_session": (cpu - idle_cpu) / 100 / n,
            # Per answered turn (greetings included in the CPU): what a turn costs, whatever
            # the load made the conversation's pace.
            "offline_cpu_s_per_turn": cpu_seconds / max(answered, 1),
            "offline_pss_mb": {
                "idle": idle.peak_rss["offline_openai"] / 2**20,
                "peak": sampler.peak_rss["offline_openai"] / 2**20,
            },
            "cpu_pct": sampler.cpu_pct,
            "machine_busy_pct": sampler.machine_busy_pct,
            "voice_to_voice": common.summary(latencies),
            "unanswered": unanswered,
            "errors": errors,
            "loadavg_after": list(psutil.getloadavg()),
        }
        rows.append(row)
        s = row["voice_to_voice"]
        print(
            f"   N={n}: offline server CPU {cpu:.0f} % of a core (idle {idle_cpu:.1f} %),"
            f" {row['offline_cpu_s_per_conversation_s_per_session']:.3f} CPU s per conversation s per session,"
            f" {row['offline_cpu_s_per_turn']:.2f} CPU s per turn;"
            f" PSS idle {row['offline_pss_mb']['idle']:.0f} MB, peak {row['offline_pss_mb']['peak']:.0f} MB;"
            f" backend {sampler.cpu_pct['backend']:.0f} %, machine {sampler.machine_busy_pct:.0f} %;"
            f" bot v2v p50 {common.fmt(s['p50'])} p95 {common.fmt(s['p95'])} (n={s['n']}, unanswered"
            f" {unanswered}, errors {len(errors)})  [{sampler.elapsed:.0f} s, load {row['loadavg_after'][0]:.1f}]",
            flush=True,
        )
    return rows


def main(quick: bool, out: str) -> dict[str, Any]:
    runs, steps, turns = (1, [1], 2) if quick else (5, [1, 3], 5)
    print(f"== offline server: {runs} cold starts, then N = {steps} bot sessions of {turns} turns")
    cold = cold_start(runs)
    c = cold["summary"]
    print(
        f"   cold start p50: ready {common.fmt(c['ready_s']['p50'])}, first transcription"
        f" {common.fmt(c['first_transcription_s']['p50'])}, first speech first byte"
        f" {common.fmt(c['first_speech_ttfb_s']['p50'])}",
        flush=True,
    )
    load_rows = under_load(steps, turns)
    result = {"kind": "offline_server", "cold_start": cold, "load": {"turns_per_session": turns, "rows": load_rows}}
    common.write_result(out, result)
    return result
