"""`python -m bench latency`: offline server-side latency, ours vs bare, both profiles."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import common, offline

STAGES = ("vad_end_lag", "end_of_turn_delay", "transcription_delay", "llm_ttft", "tts_ttfb", "lib_e2e_latency")


def describe(log: Any) -> dict[str, Any]:
    lat = log.latencies()
    rows = log.breakdown()
    answered = [x for x in lat if x is not None]
    out: dict[str, Any] = {
        "voice_to_voice": common.summary(answered),
        "turns": len(lat),
        "unanswered": len(lat) - len(answered),
        "errors": log.errors,
        "premature_replies": log.premature(),
        "breakdown_p50": {k: common.pct([r[k] for r in rows if r[k] is not None], 50) for k in STAGES},
        "raw": {"voice_to_voice": lat, "breakdown": rows},
    }
    # What the library's stages do not cover: end of speech -> agent's started_speaking_at
    # minus the stages, i.e. scheduling, sentence tokenizing, audio forwarding.
    return out


def line(label: str, d: dict[str, Any]) -> str:
    s = d["voice_to_voice"]
    b = d["breakdown_p50"]
    return (
        f"  {label:<6} n={s['n']:>2}  p50 {common.fmt(s['p50']):>7}  p95 {common.fmt(s['p95']):>7}"
        f"  | p50 stages: vad-end {common.fmt(b['vad_end_lag'])}, end-of-turn {common.fmt(b['end_of_turn_delay'])},"
        f" stt {common.fmt(b['transcription_delay'])}, llm-ttft {common.fmt(b['llm_ttft'])},"
        f" tts-ttfb {common.fmt(b['tts_ttfb'])}  errors={len(d['errors'])}"
    )


async def _run(turns: int, profiles: list[str], endpointing: float) -> dict[str, Any]:
    offline._State.plan = offline.TurnPlan(turns=turns)
    results: dict[str, Any] = {}
    timeout = 30 + turns * 12
    for profile in profiles:
        common.apply_profile(profile)
        print(f"== offline server-side, profile {profile}: {turns} turns bare, then {turns} turns ours")
        started = time.monotonic()
        bare = await offline.run_bare(f"bare-{profile}", endpointing, timeout)
        ours = await offline.run_ours(f"ours-{profile}", timeout)
        d_bare, d_ours = describe(bare), describe(ours["log"])
        fan = offline.fanout(ours["received"], ours["published"])
        d_ours["ws_fanout"] = common.summary(fan)
        ratio = {
            q: (d_ours["voice_to_voice"][q] / d_bare["voice_to_voice"][q])
            if d_ours["voice_to_voice"][q] and d_bare["voice_to_voice"][q]
            else None
            for q in ("p50", "p95")
        }
        print(line("bare", d_bare))
        print(line("ours", d_ours))
        print(
            f"  ours/bare p50 {ratio['p50']:.3f}  p95 {ratio['p95']:.3f}   WS fan-out (bridge -> client) "
            f"p50 {common.fmt(d_ours['ws_fanout']['p50'])} p99 {common.fmt(d_ours['ws_fanout']['p99'])}"
            f"  [{time.monotonic() - started:.0f} s]"
        )
        results[profile] = {
            "provider_env": common.PROFILES[profile],
            "bare": d_bare,
            "ours": d_ours,
            "ratio_ours_over_bare": ratio,
        }
    return results


def main(turns: int, profiles: list[str], out: str) -> dict[str, Any]:
    endpointing = 0.5
    offline.setup_django(endpointing)
    offline._State.clip = common.speech_clip(16000)
    print(
        f"clip: {common.USER_SPEECH!r}, {offline._State.clip.seconds:.2f} s voiced; "
        f"endpointing min_delay {endpointing} s; "
        "Silero VAD defaults (min_silence 0.55 s)"
    )
    results = asyncio.run(_run(turns, profiles, endpointing))
    common.write_result(
        out,
        {"kind": "latency_offline", "turns_per_run": turns, "endpointing_min_delay": endpointing, "results": results},
    )
    return results
