"""The real stack under load: the stack exactly as devtools.stack starts it for `./dev.sh
run` and the end-to-end tests (LiveKit, the web process serving app.asgi, the UI; the
offline server for the offline profiles; Redis and dispatched agent workers for the
production shape), with only the profile's environment, driven by headless bots
(bench.bot) through LiveKit and the transcript socket. Used by every benchmark that needs
a stack; `python -m bench live` is ours vs a bare agent through LiveKit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import common
from bench.bot import Bot, BotResult
from bench.turns import TurnLog, TurnPlan, ours_vs_bare
from devtools import setup
from devtools.stack import LIVEKIT_DEV_KEY, LIVEKIT_DEV_SECRET, ROOT, Stack, StackConfig, descendants, running_stack

LOGS = common.CACHE / "logs"


@contextlib.contextmanager
def real_stack(profile: str, *, workers: int = 0) -> Iterator[Stack]:
    """The stack with `profile`'s providers, on a PostgreSQL server of its own (as production;
    SQLite refuses concurrent writers). `workers` > 0: the production shape, Redis and that
    many dispatched agent workers pinned to the last core, everything else (this driver and
    its bots too) on the other cores."""
    env = {
        **common.profile_env(profile),
        "LOG_LEVEL": "WARNING",
        "VOICE_PARTICIPANT_TIMEOUT": "60",
        "VOICE_START_TIMEOUT": "60",
        "VOICE_WORKER_MAX_SESSIONS": "100",
    }
    config = StackConfig(
        livekit_server=setup.livekit_server(),
        log_dir=LOGS,
        postgres_bin=setup.postgres_bin(),
        extra_env=env,
        offline_openai=profile in common.OFFLINE_PROFILES,
        redis_server=setup.redis_server() if workers else None,
        agent_workers=workers,
    )
    cores = sorted(os.sched_getaffinity(0))
    if workers and len(cores) < 2:
        raise SystemExit("the production shape needs 2 cores: one for the agents, one for the rest")
    try:
        if workers:
            os.sched_setaffinity(0, set(cores[:-1]))  # inherited by every server the stack starts
        with running_stack(config) as stack:
            if workers:
                agents = [p.pid for name, p in stack.processes.items() if name.startswith("agent-worker")]
                pin(agents, cores[-1])
            yield stack
    finally:
        os.sched_setaffinity(0, set(cores))


def pin(roots: list[int], core: int) -> None:
    """Every thread of these processes and of their children onto `core`; what they start
    later inherits it."""
    for pid in (pid for root in roots for pid in descendants(root)):
        with contextlib.suppress(OSError):  # gone meanwhile
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(tid), {core})


@contextlib.contextmanager
def offline_server() -> Iterator[tuple[Stack, float]]:
    """The offline OpenAI-compatible server alone, started by the stack's launcher: the
    stack (its `openai_url`, its `processes["offline-openai"]`) and the seconds from launch
    to /healthz answering (models checked and loaded)."""
    stack = Stack(StackConfig(livekit_server=None, log_dir=LOGS, offline_openai=True))
    started = time.monotonic()
    try:
        stack.start_offline_openai()
        stack.wait_for_offline_openai()
        yield stack, time.monotonic() - started
    finally:
        stack.stop()


def _not_closed_loop_noise(record: logging.LogRecord) -> bool:
    return "Event loop is closed" not in record.getMessage()


async def run_bots(
    stack: Stack,
    n: int,
    plan: TurnPlan,
    clip: common.Clip,
    *,
    prefix: str,
    stagger: float = 0.25,
    cheap: bool = False,
) -> list[BotResult]:
    # The rtc SDK's native side logs each event it still had for a closed event loop (each
    # asyncio.run of a step): noise, not a failure.
    logging.getLogger("livekit").addFilter(_not_closed_loop_noise)
    timeout = 60 + plan.turns * 15
    async with httpx.AsyncClient(base_url=stack.backend_url, timeout=60, headers={"Origin": stack.ui_url}) as http:
        # One visitor for all the bots: its cookie is in the jar before they start at once.
        (await http.get("/transcripts")).raise_for_status()

        async def one(i: int) -> BotResult:
            await asyncio.sleep(i * stagger)
            name, room = f"{prefix}-user-{i}", f"{prefix}-room-{i}"
            frames = {"listen_ms": 50, "speak_ms": 40} if cheap else {}
            bot = Bot(name, room, stack.livekit_url, stack.backend_url, clip, plan, **frames)
            # As the page does: the token for the room's LiveKit room comes from GET /token.
            granted = await http.get("/token", params={"room": room, "identity": name})
            granted.raise_for_status()
            return await bot.run(granted.json()["token"], http, timeout)

        return await asyncio.gather(*(one(i) for i in range(n)))


async def run_bare_bot(stack: Stack, plan: TurnPlan, clip: common.Clip, profile: str) -> TurnLog:
    """A bot and bench.bare_agent (with `profile`'s fakes) in a room of their own, made and
    granted through the product's gateway (no backend involved)."""
    from app.voice.livekit_gateway import LiveKitGateway

    gateway = LiveKitGateway(url=stack.livekit_url, api_key=LIVEKIT_DEV_KEY, api_secret=LIVEKIT_DEV_SECRET)
    room, name, timeout = "bare-room", "bare-user", 60 + plan.turns * 15
    await gateway.create_room(room)
    metrics = Path(tempfile.mkdtemp(prefix="bench-bare-")) / "metrics.jsonl"
    metrics.touch()
    bot = Bot(name, room, stack.livekit_url, None, clip, plan)
    # The person joins first, as in the browser flow; the agent follows.
    ttl = timedelta(minutes=30)
    bot_task = asyncio.create_task(bot.run(gateway.mint_token(room=room, identity=name, ttl=ttl), None, timeout))
    await asyncio.sleep(1.0)
    agent_token = gateway.mint_token(room=room, identity="bare-agent", ttl=ttl, name="Agent", agent=True)
    with (LOGS / "bare-agent.log").open("ab") as logf:
        agent = subprocess.Popen(  # noqa: ASYNC220 - starts a process, returns at once
            [sys.executable, "-m", "bench.bare_agent", stack.livekit_url, agent_token, name, str(metrics)],
            cwd=ROOT,
            env={
                **os.environ,
                **common.profile_env(profile),
                "PYTHONPATH": str(ROOT),
                "BENCH_BARE_TIMEOUT": str(timeout),
            },
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
    try:
        result = await bot_task
    finally:
        agent.terminate()
        try:
            agent.wait(15)
        except subprocess.TimeoutExpired:
            agent.kill()
        await gateway.delete_room(room)
    for line in metrics.read_text().splitlines():
        record = json.loads(line)
        result.log.add_metrics(record["role"], record["metrics"])
    return result.log


def latency_main(turns: int, profiles: list[str], out: str) -> dict[str, Any]:
    clip = common.speech_clip(16000)
    plan = TurnPlan(turns=turns)
    results: dict[str, Any] = {}
    for profile in profiles:
        print(f"== live (LiveKit server + bot), profile {profile}: {turns} turns bare, then {turns} turns ours")
        started = time.monotonic()
        with real_stack(profile) as stack:
            bare_log = asyncio.run(run_bare_bot(stack, plan, clip, profile))
            (ours,) = asyncio.run(run_bots(stack, 1, plan, clip, prefix=f"lat-{profile}"))
        result = ours_vs_bare(bare_log, ours.log, started)
        result["ours"]["post_session_to_ready_s"] = ours.setup_seconds
        results[profile] = {"provider_env": common.profile_env(profile), **result}
    common.write_result(out, {"kind": "latency_live", "turns_per_run": turns, "results": results})
    return results
