"""`python -m bench endpointing`: false end-of-turn rate against end-of-turn delay, offline.

The natural-pause test set (bench/pauses.py: 12 sentences with 1-2 mid-sentence pauses of
0.2-0.7 s, 4 flite voices x 3 speaking rates = 144 utterances, 240 pauses) goes through the
real Silero VAD stream of livekit-plugins-silero (the session's VAD, fed 20 ms frames as
fast as it computes; its events carry audio time). The session's end-of-turn rule is then
applied to the VAD events as livekit-agents 1.8.9 applies it with VAD turn detection
(voice/audio_recognition.py):

* at the VAD's END_OF_SPEECH (after `min_silence_duration` of silence) the STT is flushed
  and the end-of-turn task waits until `speech end + endpointing delay`;
* the turn is committed then, unless the VAD's START_OF_SPEECH came first (the person
  went on), which cancels it.

A **false end of turn** is a commit before the sentence's last voiced sample (the agent
would answer into a pause); the rate is per utterance. The **end-of-turn delay** is commit
minus the last voiced sample, for the utterances that were not cut. Options measured:

* `vad`: Silero min_silence = endpointing min_delay = w (neither hides the other);
* `vad 0.3 + delay`: Silero min_silence 0.3 s, endpointing min_delay swept (the STT flush
  happens at the VAD's end of speech, so a provider's final overlaps the delay);
* preemptive generation does not move the commit (a reply started early is thrown away if
  the person goes on), so its false rate is that of the row it runs with; what it changes
  is the voice-to-voice time with real provider latencies, modelled with the `openai`
  profile: a streaming STT's final 0.3 s after the end of speech (its own endpointing,
  as the fake STT does with a delay), the LLM's first sentence 0.46 s after it starts,
  TTS first audio 0.3 s after that; transport is not included.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench import common, pauses

FRAME = 320  # 20 ms at 16 kHz
VAD_WINDOWS = (0.2, 0.25, 0.3, 0.4, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 1.0)
DELAYS_AFTER_03 = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
OPENAI = {"stt": 0.3, "llm": 0.46, "tts": 0.3}


@dataclass
class Boundary:
    """One VAD end of speech: when it fired, the speech end it reports, and when the VAD
    next said speech started (None: never)."""

    eos: float
    speech_end: float
    next_start: float | None


async def vad_boundaries(vad: Any, samples: np.ndarray) -> list[Boundary]:
    from livekit import rtc
    from livekit.agents.vad import VADEventType

    stream = vad.stream()
    for i in range(0, len(samples) - FRAME + 1, FRAME):
        stream.push_frame(rtc.AudioFrame(samples[i : i + FRAME].tobytes(), pauses.RATE, 1, FRAME))
    stream.end_input()
    ends: list[tuple[float, float]] = []
    starts: list[float] = []
    async for ev in stream:
        if ev.type == VADEventType.END_OF_SPEECH:
            ends.append((ev.timestamp, ev.timestamp - ev.silence_duration))
        elif ev.type == VADEventType.START_OF_SPEECH:
            starts.append(ev.timestamp)
    await stream.aclose()
    return [Boundary(eos, end, next((s for s in starts if s > eos), None)) for eos, end in ends]


def decide(u: pauses.Utterance, bounds: list[Boundary], delay_for: Any) -> dict[str, Any]:
    """Apply the end-of-turn rule; `delay_for(boundary)` gives the endpointing delay."""
    for b in bounds:
        commit = max(b.eos, b.speech_end + delay_for(b))
        if b.next_start is not None and b.next_start <= commit:
            continue  # the person went on before the turn was committed
        if commit < u.speech_end:
            return {"false": True, "commit": commit, "eos": b.eos, "delay": None}
        return {"false": False, "commit": commit, "eos": b.eos, "delay": commit - u.speech_end}
    return {"false": False, "commit": None, "eos": None, "delay": None}  # never ended (not seen)


def voice_to_voice(outcome: dict[str, Any], u: pauses.Utterance, preemptive: str) -> float | None:
    """Modelled openai-profile reply time for one turn (see the module doc)."""
    if outcome["false"] or outcome["commit"] is None:
        return None
    final = u.speech_end + OPENAI["stt"]  # a streaming STT's own endpointing, as fakes/stt.py
    commit = max(outcome["commit"], final)
    if preemptive == "off":
        first_audio = commit + OPENAI["llm"] + OPENAI["tts"]
    elif preemptive == "llm":
        first_audio = max(commit, final + OPENAI["llm"]) + OPENAI["tts"]
    else:  # llm + tts
        first_audio = max(commit, final + OPENAI["llm"] + OPENAI["tts"])
    return first_audio - u.speech_end


def summarize(
    name: str, option: str, params: dict[str, Any], utterances: list[pauses.Utterance], outcomes: list[dict[str, Any]]
) -> dict[str, Any]:
    delays = [o["delay"] for o in outcomes if o["delay"] is not None]
    false = sum(o["false"] for o in outcomes)
    by_pause: dict[str, list[int]] = {}
    for u, o in zip(utterances, outcomes, strict=True):
        if o["false"]:
            cut = next((round(b - a, 1) for a, b in u.pauses if a <= o["commit"] <= b + 0.1), None)
            by_pause.setdefault(str(cut), []).append(1)
    row = {
        "name": name,
        "option": option,
        **params,
        "utterances": len(outcomes),
        "false_end_of_turn": false,
        "false_rate": false / len(outcomes),
        "false_by_pause_length": {k: len(v) for k, v in sorted(by_pause.items())},
        "unended": sum(o["commit"] is None for o in outcomes),
        "end_of_turn_delay": common.summary(delays),
    }
    for mode in ("off", "llm", "llm+tts"):
        v2v = [x for x in (voice_to_voice(o, u, mode) for u, o in zip(utterances, outcomes, strict=True)) if x]
        row[f"openai_v2v_preemptive_{mode}"] = common.summary(v2v)
    return row


def _line(row: dict[str, Any]) -> str:
    d = row["end_of_turn_delay"]
    v = row["openai_v2v_preemptive_llm"]
    return (
        f"  {row['name']:<40} false {row['false_end_of_turn']:>3}/{row['utterances']}"
        f" = {100 * row['false_rate']:5.1f} %"
        f"   end-of-turn p50 {common.fmt(d['p50']):>7} p95 {common.fmt(d['p95']):>7}"
        f"   openai v2v p50 {common.fmt(v['p50']):>7}"
    )


async def _boundaries(utterances: list[pauses.Utterance], window: float) -> list[list[Boundary]]:
    from livekit.plugins import silero

    vad = silero.VAD.load(min_silence_duration=window)
    return [await vad_boundaries(vad, u.samples) for u in utterances]


def main(out: str, quick: bool = False) -> dict[str, Any]:
    utterances = pauses.build(sentences=pauses.SENTENCES[:3] if quick else pauses.SENTENCES)
    n_pauses = sum(len(u.pauses) for u in utterances)
    print(f"== end of turn on the natural-pause set: {len(utterances)} utterances, {n_pauses} pauses of 0.2-0.7 s")
    rows: list[dict[str, Any]] = []
    cache: dict[float, list[list[Boundary]]] = {}

    def bounds_for(window: float) -> list[list[Boundary]]:
        if window not in cache:
            cache[window] = asyncio.run(_boundaries(utterances, window))
        return cache[window]

    for w in VAD_WINDOWS[::3] if quick else VAD_WINDOWS:
        outcomes = [decide(u, bs, lambda b, w=w: w) for u, bs in zip(utterances, bounds_for(w), strict=True)]
        rows.append(
            summarize(
                f"vad {w:g} s, delay {w:g} s", "vad", {"vad_min_silence": w, "min_delay": w}, utterances, outcomes
            )
        )
        print(_line(rows[-1]), flush=True)
    for d in DELAYS_AFTER_03[::3] if quick else DELAYS_AFTER_03:
        outcomes = [decide(u, bs, lambda b, d=d: d) for u, bs in zip(utterances, bounds_for(0.3), strict=True)]
        rows.append(
            summarize(
                f"vad 0.3 s, delay {d:g} s",
                "vad 0.3 + delay",
                {"vad_min_silence": 0.3, "min_delay": d},
                utterances,
                outcomes,
            )
        )
        print(_line(rows[-1]), flush=True)
    result = {
        "kind": "endpointing",
        "test_set": {
            "utterances": len(utterances),
            "pauses": n_pauses,
            "voices": pauses.VOICES,
            "stretches": pauses.STRETCHES,
            "pause_lengths": pauses.PAUSES,
            "sentences": list(pauses.SENTENCES),
        },
        "openai_profile": OPENAI,
        "rows": rows,
    }
    common.write_result(out, result)
    return result
