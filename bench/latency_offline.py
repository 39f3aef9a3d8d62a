"""`python -m bench latency`: offline server-side latency, ours vs bare, per profile."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import common, offline
from bench.turns import TurnPlan, ours_vs_bare


async def _run(clip: common.Clip, plan: TurnPlan, profiles: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    timeout = 30 + plan.turns * 12
    for profile in profiles:
        env = common.apply_profile(profile)
        print(f"== offline server-side, profile {profile}: {plan.turns} turns bare, then {plan.turns} turns ours")
        started = time.monotonic()
        bare = await offline.run_bare(clip, plan, timeout)
        ours = await offline.run_ours(clip, plan, f"ours-{profile}", timeout)
        result = ours_vs_bare(bare, ours["log"], started, [x for v in ours["fanout"].values() for x in v])
        result["ours"]["ws_fanout_by_kind"] = {k: common.summary(v) for k, v in ours["fanout"].items()}
        results[profile] = {"provider_env": env, **result}
    return results


def main(turns: int, profiles: list[str], out: str) -> dict[str, Any]:
    offline.setup_django()
    from django.conf import settings

    clip = common.speech_clip(16000)
    print(
        f"clip: {common.USER_SPEECH!r}, {clip.seconds:.2f} s voiced; the app's turn handling: endpointing"
        f" min_delay {settings.VOICE_ENDPOINTING_DELAY} s, Silero min_silence {settings.VOICE_VAD_MIN_SILENCE} s"
    )
    results = asyncio.run(_run(clip, TurnPlan(turns=turns), profiles))
    common.write_result(
        out,
        {
            "kind": "latency_offline",
            "turns_per_run": turns,
            "endpointing_min_delay": settings.VOICE_ENDPOINTING_DELAY,
            "results": results,
        },
    )
    return results
