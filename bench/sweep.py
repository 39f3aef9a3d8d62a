"""`python -m bench sweep`: what each latency setting buys, on bare AgentSessions (the
settings are library behaviour; the latency run shows ours tracks bare within noise).

Varied: Silero VAD min_silence_duration, endpointing min_delay, preemptive generation
(off / LLM only, the library default / LLM+TTS). Premature replies (agent audio while the
person is still speaking, i.e. a turn cut at a pause) are counted: the clip has a comma.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench import common, offline
from bench.turns import TurnPlan, describe

CONFIGS: list[tuple[str, float, float, dict[str, Any] | None]] = [
    # name, Silero min_silence, endpointing min_delay, preemptive generation options
    ("before: vad 0.55, ep 0.5, preemptive LLM", 0.55, 0.5, {"enabled": True, "preemptive_tts": False}),
    ("vad 0.7, preemptive off", 0.7, 0.5, {"enabled": False}),
    ("default: vad 0.7, preemptive LLM", 0.7, 0.5, {"enabled": True, "preemptive_tts": False}),
    ("vad 0.7, preemptive LLM+TTS", 0.7, 0.5, {"enabled": True, "preemptive_tts": True}),
    ("vad 0.3, ep 0.3, preemptive LLM+TTS", 0.3, 0.3, {"enabled": True, "preemptive_tts": True}),
]


async def _run(clip: common.Clip, plan: TurnPlan, configs: list) -> list[dict[str, Any]]:
    rows = []
    for name, min_silence, ep, preemptive in configs:
        handling: dict[str, Any] = {
            "turn_detection": "vad",
            "endpointing": {"min_delay": ep},
            "interruption": {"mode": "vad"},
        }
        if preemptive is not None:
            handling["preemptive_generation"] = preemptive
        log = await offline.run_bare(
            clip, plan, 30 + plan.turns * 12, turn_handling=handling, vad_min_silence=min_silence
        )
        d = describe(log)
        s = d["voice_to_voice"]
        print(
            f"  {name:<34} p50 {common.fmt(s['p50']):>7}  p95 {common.fmt(s['p95']):>7}  n={s['n']}"
            f"  premature={d['premature_replies']} unanswered={d['unanswered']} errors={len(d['errors'])}",
            flush=True,
        )
        rows.append(
            {
                "name": name,
                "vad_min_silence": min_silence,
                "endpointing_min_delay": ep,
                "preemptive_generation": preemptive,
                **d,
            }
        )
    return rows


def main(turns: int, profile: str, out: str, quick: bool = False) -> list[dict[str, Any]]:
    env = common.apply_profile(profile)
    configs = CONFIGS[:2] if quick else CONFIGS
    print(f"== settings sweep (bare AgentSession, profile {profile}, {turns} turns each)")
    rows = asyncio.run(_run(common.speech_clip(16000), TurnPlan(turns=turns), configs))
    common.write_result(
        out,
        {
            "kind": "settings_sweep",
            "profile": profile,
            "provider_env": env,
            "turns_per_config": turns,
            "rows": rows,
        },
    )
    return rows
