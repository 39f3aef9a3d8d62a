"""Against a real LiveKit server: the stack (LiveKit dev server + our backend with timing
probes) and headless bots. `python -m bench live` (ours vs bare through LiveKit) and
`python -m bench capacity` (N concurrent sessions)."""

from __future__ import annotations

import asyncio
import contextlib
import json
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
from livekit import api

from bench import common
from bench.bot import Bot, BotResult
from bench.turns import TurnLog, TurnPlan
from devtools import setup
from devtools.stack import PYTHON, ROOT, UVICORN_PROXY_FLAGS, Stack, StackConfig, wait_for_http

LOGS = common.CACHE / "logs"


class BenchStack(Stack):
    """devtools' launcher, with the backend served by bench.asgi (same app + probes)."""

    probe_file: Path

    def start_backend(self) -> None:
        env = self.backend_env()
        subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        cmd = [
            PYTHON,
            "-m",
            "uvicorn",
            "bench.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.config.backend_port),
            "--lifespan",
            "on",
            "--ws",
            "websockets",
            "--no-access-log",
            *UVICORN_PROXY_FLAGS,  # the app alone decides the client address, as in the stack
        ]
        process = self._spawn("backend", cmd, env)
        self.backend_url = f"http://127.0.0.1:{self.config.backend_port}"
        wait_for_http(f"{self.backend_url}/healthz", timeout=90, process=process)

    def start(self, with_ui: bool = False) -> BenchStack:  # type: ignore[override]
        from devtools.stack import free_port

        self.config.backend_port = self.config.backend_port or free_port()
        self.config.ui_port = self.config.ui_port or free_port()
        try:
            # With no PostgreSQL of its own this only takes the config's database_url: without
            # it the backend fell back to the shared var/ SQLite database.
            self.start_postgres()
            self.start_livekit()
            self.start_offline_openai()  # when the config asks for it: the offline profiles
            self.start_backend()
            if with_ui:
                self.start_ui()
        except BaseException:
            self.stop()
            raise
        return self


@contextlib.contextmanager
def bench_stack(profile: str, with_ui: bool = False, extra: dict[str, str] | None = None) -> Iterator[BenchStack]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    probe = tmp / "probe.jsonl"
    probe.touch()
    offline = profile in common.OFFLINE_PROFILES
    providers = (
        common.OFFLINE_PROFILES[profile]  # the production openai set, on the stack's offline server
        if offline
        else {**common.PROFILES[profile], "FAKE_STT_UTTERANCES": common.STT_UTTERANCE, "VOICE_PROVIDERS": "fake"}
    )
    env = {
        **providers,
        "BENCH_PROBE_FILE": str(probe),
        "LOG_LEVEL": "WARNING",
        "VOICE_PARTICIPANT_TIMEOUT": "60",
        "PYTHONPATH": str(ROOT),
        **(extra or {}),
    }
    config = StackConfig(
        livekit_server=setup.livekit_server(),
        log_dir=LOGS,
        database_url=f"sqlite:///{tmp}/bench.sqlite3",
        extra_env=env,
        livekit_auto_create=True,  # the bots join with tokens of their own, before POST /session
        offline_openai=offline,
    )
    stack = BenchStack(config)
    stack.probe_file = probe
    stack.start(with_ui=with_ui)
    try:
        yield stack
    finally:
        stack.stop()


def read_probe(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def token(room: str, identity: str) -> str:
    """A token of our own, for the bare agent's room (no backend, so no GET /token)."""
    return (
        api.AccessToken("devkey", "secret")
        .with_identity(identity)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_ttl(timedelta(minutes=30))
        .to_jwt()
    )


def attach_metrics(log: TurnLog, records: list[dict[str, Any]], session_id: str) -> None:
    for r in records:
        if r["kind"] == "metrics" and r["session_id"] == session_id:
            (log.user_metrics if r["role"] == "user" else log.agent_metrics).append(r["metrics"])


def fanout(result: BotResult, records: list[dict[str, Any]]) -> list[float]:
    from bench.offline import fanout as match

    published = [
        (r["t"], r["message"]) for r in records if r["kind"] == "publish" and r["session_id"] == result.session_id
    ]
    return match(result.ws_received, published)


def fanout_kinds(result: BotResult, records: list[dict[str, Any]]) -> dict[str, list[float]]:
    from bench.offline import fanout_by_kind

    published = [
        (r["t"], r["message"]) for r in records if r["kind"] == "publish" and r["session_id"] == result.session_id
    ]
    return fanout_by_kind(result.ws_received, published)


def downlink(log: TurnLog) -> list[float]:
    """Agent's playout start (its started_speaking_at, wall) → first loud frame at the bot."""
    out = []
    for m in log.agent_metrics:
        start = m.get("started_speaking_at")
        if not start:
            continue
        mono = start - log.wall_minus_mono
        heard = [t for t in log.first_audio if t >= mono - 0.05]
        if heard and heard[0] - mono < 2.0:
            out.append(heard[0] - mono)
    return out


def describe(log: TurnLog) -> dict[str, Any]:
    from bench.latency_offline import describe as base

    d = base(log)
    d["breakdown_p50"]["downlink_transport"] = common.pct(downlink(log), 50)
    return d


async def run_bots(
    stack: BenchStack,
    n: int,
    plan: TurnPlan,
    clip: common.Clip,
    *,
    prefix: str,
    stagger: float = 0.25,
    cheap: bool = False,
) -> list[BotResult]:
    timeout = 60 + plan.turns * 15
    async with httpx.AsyncClient(
        base_url=stack.backend_url, timeout=60, headers={"Origin": "http://127.0.0.1:5000"}
    ) as http:
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


async def run_bare_bot(stack: BenchStack, plan: TurnPlan, clip: common.Clip, profile: str) -> TurnLog:
    tmp = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    metrics = tmp / "metrics.jsonl"
    metrics.touch()
    room, name = "bare-room", "bare-user"
    env = {
        **os.environ,
        **common.PROFILES[profile],
        "FAKE_STT_UTTERANCES": common.STT_UTTERANCE,
        "PYTHONPATH": str(ROOT),
        "BENCH_BARE_TIMEOUT": str(60 + plan.turns * 15),
    }
    bot = Bot(name, room, stack.livekit_url, None, clip, plan)
    # The person joins first, as in the browser flow; the agent follows.
    bot_task = asyncio.create_task(bot.run(token(room, name), None, 60 + plan.turns * 15))
    await asyncio.sleep(1.0)
    with (LOGS / "bare-agent.log").open("ab") as logf:
        agent = subprocess.Popen(  # noqa: ASYNC220 - starts a process, returns at once
            [sys.executable, "-m", "bench.bare_agent", stack.livekit_url, room, name, str(metrics)],
            cwd=ROOT,
            env=env,
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
    attach_metrics(result.log, read_probe(metrics), "bare")
    return result.log


def line(label: str, d: dict[str, Any]) -> str:
    s, b = d["voice_to_voice"], d["breakdown_p50"]
    return (
        f"  {label:<6} n={s['n']:>2}  p50 {common.fmt(s['p50']):>7}  p95 {common.fmt(s['p95']):>7}"
        f"  | p50: vad-end(+uplink) {common.fmt(b['vad_end_lag'])}, end-of-turn {common.fmt(b['end_of_turn_delay'])},"
        f" llm {common.fmt(b['llm_ttft'])}, tts {common.fmt(b['tts_ttfb'])},"
        f" downlink {common.fmt(b['downlink_transport'])}"
        f"  errors={len(d['errors'])}"
    )


def latency_main(turns: int, profiles: list[str], out: str) -> dict[str, Any]:
    clip = common.speech_clip(16000)
    plan = TurnPlan(turns=turns)
    results: dict[str, Any] = {}
    for profile in profiles:
        print(f"== live (LiveKit server + bot), profile {profile}: {turns} turns bare, then {turns} turns ours")
        started = time.monotonic()
        with bench_stack(profile) as stack:
            bare_log = asyncio.run(run_bare_bot(stack, plan, clip, profile))
            (ours,) = asyncio.run(run_bots(stack, 1, plan, clip, prefix=f"lat-{profile}"))
            records = read_probe(stack.probe_file)
        attach_metrics(ours.log, records, ours.session_id)
        d_bare, d_ours = describe(bare_log), describe(ours.log)
        d_ours["ws_fanout"] = common.summary(fanout(ours, records))
        d_ours["post_session_to_ready_s"] = ours.setup_seconds
        ratio = {
            q: (d_ours["voice_to_voice"][q] / d_bare["voice_to_voice"][q])
            if d_ours["voice_to_voice"][q] and d_bare["voice_to_voice"][q]
            else None
            for q in ("p50", "p95")
        }
        print(line("bare", d_bare))
        print(line("ours", d_ours))
        r50 = f"{ratio['p50']:.3f}" if ratio["p50"] else "–"
        r95 = f"{ratio['p95']:.3f}" if ratio["p95"] else "–"
        print(
            f"  ours/bare p50 {r50}  p95 {r95}   WS fan-out p50 {common.fmt(d_ours['ws_fanout']['p50'])}"
            f" p99 {common.fmt(d_ours['ws_fanout']['p99'])}  [{time.monotonic() - started:.0f} s]",
            flush=True,
        )
        results[profile] = {
            "provider_env": common.PROFILES[profile],
            "bare": d_bare,
            "ours": d_ours,
            "ratio_ours_over_bare": ratio,
        }
    common.write_result(out, {"kind": "latency_live", "turns_per_run": turns, "results": results})
    return results
