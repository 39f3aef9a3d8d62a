"""Fault soak: N random cycles (seeded) against the production shape, then checks that
nothing was lost or left behind. `python -m bench.soak --cycles N [--seed S]` (`./dev.sh soak N`).

The stack: LiveKit, Redis, PostgreSQL, two web processes, two agent workers (the stack
launcher's production shape) and the product's openai providers on the stack's offline
OpenAI-compatible server (the soak is about lifecycles, but the agent really hears the
visitors' speech, transcribes it with Whisper over the realtime socket and answers with Piper).
Visitors are `bench.soak_client` processes: a LiveKit participant with a microphone plus the
session's WebSocket.

Each cycle is one of:
- start      a new visitor takes a token, joins its room and starts a session;
- talk       a visitor says a sentence (the cycle waits, bounded, for a new final line);
- stop       a visitor presses Stop (DELETE /session);
- tab_close  a visitor leaves the room and closes its socket without a word;
- net_cut    a visitor's process is frozen (SIGSTOP): no goodbye, no packets;
- worker_kill  an agent worker's process group gets SIGKILL, then is started again;
- web_term / web_kill  a web process gets SIGTERM / SIGKILL, then is started again;
- redis_restart / pg_restart  Redis (SIGTERM) / PostgreSQL (fast shutdown) stopped and started
             again on the same port, at once;
- redis_outage / pg_outage  Redis / PostgreSQL (its whole process group) frozen with SIGSTOP
             for 10 s, then resumed: unreachable, nothing lost (a crash is the restarts' case);
- livekit_restart  livekit-server SIGKILLed and started again (same ports and config).
A dependency fault lands mid-conversation, a second after a visitor starts to talk; then each
web process's /readyz is polled (every 0.2 s, bounded) for a 200, timed from the dependency's
return; each session that was live must be ended with a reason or be running with a heartbeat
since the return (bounded), and a survivor must still answer a sentence.
The first cycles go through every kind once (start, talk, then the rest in a seeded order), so a
run of 3 x 13 = 39 cycles has each.

Then, each wait bounded: every visitor still live presses Stop; no session is left running;
no LiveKit room is left open (the server API's list_rooms); every final transcript line a
visitor received over the WebSocket is in the database, or was named by a
`transcript_lines_lost` frame the visitor received; the logs of the web processes and agent
workers hold no exception but the expected ones (EXPECTED_EXCEPTIONS); and the open file descriptors
of each long-lived process and the resident memory of it with its children, sampled through /proc
during the run, with their slope per 100 cycles. The report: N, the count of each fault,
cleanup time (from the action to the session's ended_at) p50/p95/max, lost and orphaned, and
per dependency fault kind: what became of the live sessions and the /readyz recovery time
p50/p95/max against its goal (p95 <= 5 s after Redis or PostgreSQL returns, <= 30 s after
LiveKit restarts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from livekit import api as livekit_api

from bench.common import pct
from devtools import setup
from devtools.stack import (
    LIVEKIT_DEV_KEY,
    LIVEKIT_DEV_SECRET,
    PYTHON,
    ROOT,
    Stack,
    StackConfig,
    descendants,
    running_stack,
    wait_for_http,
    wait_for_log,
)

# Faults of a dependency, each landing mid-conversation (just after a visitor starts to talk).
# The outages freeze the server (SIGSTOP) rather than kill it: unreachable, connections and
# commands hanging as across a network partition, nothing lost; the restarts are the crash
# (or deploy) case, a Redis restart losing all its data (the stack's Redis keeps none on disk).
DEPENDENCY_KINDS = ("redis_restart", "redis_outage", "pg_restart", "pg_outage", "livekit_restart")
KINDS = ("start", "talk", "stop", "tab_close", "net_cut", "worker_kill", "web_term", "web_kill", *DEPENDENCY_KINDS)
WEIGHTS = {
    "start": 4,
    "talk": 4,
    "stop": 2,
    "tab_close": 1.5,
    "net_cut": 1,
    "worker_kill": 0.6,
    "web_term": 0.5,
    "web_kill": 0.5,
    "redis_restart": 0.3,
    "redis_outage": 0.2,
    "pg_restart": 0.3,
    "pg_outage": 0.2,
    "livekit_restart": 0.3,
}
MAX_LIVE = 3  # visitors at once (2 shared cores)
ENDING_KINDS = ("stop", "tab_close", "net_cut")
# Kinds that wait for no restart in progress (a dependency fault also for its readiness to be
# measured on every web process, and its effects told apart from those of a restart).
RESTARTING = ("worker_kill", "web_term", "web_kill", *DEPENDENCY_KINDS)
OUTAGE_SECONDS = 10.0
TALK_LEAD = 1.0  # a dependency fault lands this long after a visitor starts to talk
READY_POLL = 0.2  # /readyz is polled this often after a dependency's return...
READY_BOUND = 60.0  # ...for at most this long
READY_GOAL = {"livekit_restart": 30.0}  # p95 of the time to /readyz 200; others 5 s
# An affected session must be ended (with a reason) or running with a heartbeat since the
# dependency came back, within this long of its return.
AFFECTED_BOUND = 40.0
# The first FIRST_PHASE x len(KINDS) cycles run every kind once: each kind may first need up to
# two starts (an ending, or a worker kill, can leave fewer than two visitors).
FIRST_PHASE = 3
HEARTBEAT_TIMEOUT = 4.0
PARTICIPANT_TIMEOUT = 3.0
# How long after a worker SIGKILL the sweeper has ended the sessions it hosted (heartbeat
# timeout, one sweep interval, a margin); a dependency fault waits that out.
KILL_SETTLE = HEARTBEAT_TIMEOUT + 4.0
# An `error` end this soon after a worker SIGKILL is put down to it; a later one is not.
KILL_BOUND = 3 * KILL_SETTLE
# The stack's environment: short timeouts, so cleanup is quick and a run is bounded.
SOAK_ENV = {
    "VOICE_HEARTBEAT_INTERVAL": "1",
    "VOICE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
    "VOICE_PARTICIPANT_TIMEOUT": str(PARTICIPANT_TIMEOUT),
    "VOICE_WORKER_DRAIN_TIMEOUT": "2",
    "VOICE_MAX_SESSIONS_PER_IP": "1000",  # every visitor is 127.0.0.1
    "LOG_LEVEL": "WARNING",
}


# Exceptions logged (level error, with a traceback) that a fault is expected to cause, by event
# (a plain traceback is never expected); each is handled, then retried or
# answered:
# - session.start_failed: a start while LiveKit, Redis or PostgreSQL is down or a worker was
#   just killed is refused (503) and logged with its cause;
# - sweeper.failed: a sweep while PostgreSQL is down or restarting; the next one (1 s later)
#   runs again.
EXPECTED_EXCEPTIONS = {"session.start_failed", "sweeper.failed"}


EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Shutdown)\b")


def progress(message: str) -> None:
    print(message, flush=True)


def wait_for(condition: Any, timeout: float, interval: float = 0.25) -> float | None:
    """Poll until truthy; the seconds it took, or None if it never was within `timeout`."""
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            return None
        time.sleep(interval)  # poll interval of the condition


# ---- visitors ---------------------------------------------------------------------------
@dataclass
class Visitor:
    name: str
    process: subprocess.Popen[str]
    out: Path
    session_id: str = ""
    lines: list[str] = field(default_factory=list)
    frozen: bool = False
    done: bool = False  # told to stop or close, or frozen: no longer a target

    def read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.strip()
            self.lines.append(line)
            if line.startswith("session "):
                self.session_id = line.split()[1]

    def send(self, command: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()

    def finals(self) -> int:
        try:
            return sum(1 for _ in self.out.open(encoding="utf-8"))
        except FileNotFoundError:
            return 0

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


# ---- /proc sampling ---------------------------------------------------------------------
def usage(root: int) -> tuple[int, float]:
    """The process's own open file descriptors, and the resident MB of it and all its
    descendants. A descriptor leak lives in the long-lived process; its children (an agent
    worker's job processes, PostgreSQL's connection backends) come and go with the sessions,
    so counting theirs would measure the load at the sample, not a leak."""
    fds, rss_kb = 0, 0
    with contextlib.suppress(OSError):
        fds = len(os.listdir(f"/proc/{root}/fd"))
    for pid in descendants(root):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        rss_kb += int(line.split()[1])
    return fds, rss_kb / 1024


# ---- the soak ---------------------------------------------------------------------------
@dataclass
class Soak:
    stack: Stack
    cycles: int
    seed: int
    work: Path
    until_every_kind: bool = False  # stop (before `cycles`) once every kind has run
    rng: random.Random = field(init=False)
    visitors: list[Visitor] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # actions that could not be done
    pending: dict[str, tuple[float, str]] = field(default_factory=dict)  # session → (action time, kind)
    cleanup: dict[str, list[float]] = field(default_factory=dict)  # kind → seconds
    kills: list[float] = field(default_factory=list)  # worker SIGKILL times
    samples: dict[str, list[tuple[int, int, int, float]]] = field(default_factory=dict)  # name → (cycle, pid, fds, MB)
    counter: int = 0
    counted: set[str] = field(default_factory=set)  # sessions whose end is recorded
    spare: Visitor | None = None  # the next visitor, started ahead
    recovering: set[str] = field(default_factory=set)  # processes being restarted
    restarts: list[threading.Thread] = field(default_factory=list)
    restart_errors: list[str] = field(default_factory=list)
    other_ends: Counter[str] = field(default_factory=Counter)  # ends no fault of ours explains, by reason
    other_sessions: list[str] = field(default_factory=list)  # ...and their sessions, to look up in the logs
    affected: dict[str, str] = field(default_factory=dict)  # session → the dependency fault it was live in
    dependency: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind → what its faults did
    log_offsets: dict[str, int] = field(default_factory=dict)  # process → its log's size at the start

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.db = psycopg.connect(self.stack.database_url, autocommit=True)
        for name, process in self.stack.processes.items():
            with contextlib.suppress(OSError):
                self.log_offsets[name] = process.log_path.stat().st_size

    def query(self, sql: str, params: Any = None) -> list[Any]:
        """A query that survives a PostgreSQL restart (a new connection, once)."""
        try:
            return self.db.execute(sql, params).fetchall()
        except psycopg.OperationalError:
            with contextlib.suppress(Exception):
                self.db.close()
            self.db = psycopg.connect(self.stack.database_url, autocommit=True)
            return self.db.execute(sql, params).fetchall()

    # -- database ------------------------------------------------------------------------
    def sessions(self, ids: list[str]) -> dict[str, tuple[str, str, float | None]]:
        if not ids:
            return {}
        rows = self.query(
            "SELECT id::text, status, end_reason, ended_at FROM voice_voicesession WHERE id::text = ANY(%s)", (ids,)
        )
        return {r[0]: (r[1], r[2], r[3].timestamp() if r[3] else None) for r in rows}

    def heartbeats(self, ids: list[str]) -> dict[str, float | None]:
        rows = self.query("SELECT id::text, heartbeat_at FROM voice_voicesession WHERE id::text = ANY(%s)", (ids,))
        return {r[0]: r[1].timestamp() if r[1] else None for r in rows}

    def live_sessions(self) -> list[str]:
        return [r[0] for r in self.query("SELECT id::text FROM voice_voicesession WHERE status <> 'ended'")]

    def settle(self) -> None:
        """Record the cleanup time of sessions that have ended since the last look; release
        the frozen visitors whose session is over."""
        for session_id in self.counted & set(self.pending):  # it had ended before the action
            self.pending.pop(session_id)
        ids = {v.session_id for v in self.visitors if v.session_id} | set(self.pending)
        state = self.sessions(sorted(ids - self.counted))
        for session_id, (status, reason, ended_at) in state.items():
            if status != "ended" or ended_at is None:
                continue
            self.counted.add(session_id)
            if session_id in self.pending:
                at, kind = self.pending.pop(session_id)
                self.cleanup.setdefault(kind, []).append(max(0.0, ended_at - at))
            elif session_id in self.affected:
                self.dependency[self.affected[session_id]]["ends"][reason or "(none)"] += 1
            elif reason == "error" and (kills := [k for k in self.kills if ended_at - KILL_BOUND <= k <= ended_at]):
                self.cleanup.setdefault("worker_kill", []).append(ended_at - kills[-1])
            else:
                self.other_ends[reason] += 1
                self.other_sessions.append(session_id)
        state = self.sessions(sorted({v.session_id for v in self.visitors if v.frozen}))
        for visitor in self.visitors:
            if visitor.frozen and state.get(visitor.session_id, ("",))[0] == "ended":
                visitor.kill()
                visitor.frozen = False
        self.visitors = [v for v in self.visitors if v.process.poll() is None or v.frozen]

    # -- actions ---------------------------------------------------------------------------
    def live_visitors(self) -> list[Visitor]:
        return [
            v
            for v in self.visitors
            if v.session_id and not v.done and v.session_id not in self.counted and v.process.poll() is None
        ]

    def spawn(self) -> Visitor:
        """A visitor process, started ahead of its cycle (Python and its imports take a while)."""
        self.counter += 1
        name = f"soak{self.seed}-{self.counter}"
        out = self.work / f"{name}.jsonl"
        backends = list(self.stack.backend_urls)
        self.rng.shuffle(backends)
        with (self.work / f"{name}.err").open("w") as errors:
            process = subprocess.Popen(
                [PYTHON, "-m", "bench.soak_client", f"{name}-room", name, str(out), self.stack.ui_url, *backends],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                start_new_session=True,
            )
        visitor = Visitor(name, process, out)
        threading.Thread(target=visitor.read_stdout, daemon=True).start()
        return visitor

    def start(self) -> bool:
        visitor, self.spare = self.spare or self.spawn(), self.spawn()
        process = visitor.process
        self.visitors.append(visitor)
        visitor.send("go")
        if wait_for(lambda: visitor.session_id or process.poll() is not None, 40) is None or not visitor.session_id:
            progress(f"    start failed: {visitor.lines[-1:] or 'no answer'}")
            visitor.kill()
            return False
        return True

    def talk(self, visitor: Visitor) -> bool:
        before = visitor.finals()
        visitor.send("talk")
        return wait_for(lambda: visitor.finals() > before or visitor.process.poll() is not None, 12) is not None

    def end_by_visitor(self, visitor: Visitor, kind: str) -> bool:
        visitor.done = True
        self.pending[visitor.session_id] = (time.time(), kind)
        if kind == "net_cut":
            visitor.frozen = True
            os.killpg(visitor.process.pid, signal.SIGSTOP)
        else:
            visitor.send("stop" if kind == "stop" else "close")
        return True

    def restart(self, name: str, how: int, ready: Any) -> None:
        """Signal the process (its whole group), then start it again in the background: the
        cycles go on meanwhile, as visitors would. A process being restarted is no target."""
        process = self.stack.processes[name]
        old = process.popen
        self.recovering.add(name)

        def again() -> None:
            try:
                if how == signal.SIGTERM:
                    process.stop()
                else:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    assert process.popen is not None
                    process.popen.wait(10)
                process.start()  # the same command, environment and log file
                ready(process)
            except Exception as exc:  # noqa: BLE001 - reported, and the end checks still run
                self.restart_errors.append(f"{name}: {exc}")
            finally:
                self.recovering.discard(name)

        self.restarts.append(threading.Thread(target=again, name=f"restart-{name}", daemon=True))
        self.restarts[-1].start()
        if how == signal.SIGKILL:  # a SIGKILL is immediate; its time is the fault's time
            wait_for(lambda: old is None or old.poll() is not None, 10, 0.05)

    def worker_kill(self) -> bool:
        name = self.rng.choice([n for n in self.stack.processes if n.startswith("agent-worker")])
        self.kills.append(time.time())
        self.restart(name, signal.SIGKILL, lambda p: wait_for_log(p, "registered worker", timeout=90))
        return True

    def web_restart(self, how: int) -> bool:
        index = self.rng.randrange(len(self.stack.backend_urls))
        name = "backend" if index == 0 else f"backend-{index + 1}"
        url = self.stack.backend_urls[index]
        self.restart(name, how, lambda p: wait_for_http(f"{url}/healthz", timeout=90, process=p))
        return True

    def dependency_fault(self, kind: str) -> bool:
        """A dependency fault just after a visitor starts to talk; then each web process's
        /readyz is polled until 200 (the time from the dependency's return is recorded), and
        each session that was live is waited for (bounded) to be ended with a reason or to
        be running with a heartbeat since the return; last, a survivor is asked to talk."""
        record = self.dependency.setdefault(
            kind,
            {
                "ready_seconds": [],
                "never_ready": 0,
                "affected": 0,
                "ends": Counter(),
                "survived": 0,
                "stuck": [],
                "talk_after": Counter(),
                "fault_seconds": [],
            },
        )
        if self.kills and (wait := KILL_SETTLE - (time.time() - self.kills[-1])) > 0:
            # The sessions a worker kill took are ended by the sweeper a heartbeat timeout
            # later: let that happen first, so that their end is not put down to this fault.
            time.sleep(wait)
            self.settle()
        if not self.live_visitors() and not self.start():  # it lands mid-conversation
            return False
        live = self.live_visitors()
        talking = self.rng.choice(live)
        for visitor in live:
            self.affected[visitor.session_id] = kind
        record["affected"] += len(live)
        talking.send("talk")
        time.sleep(TALK_LEAD)  # the clip is being said, heard and transcribed
        t0 = time.monotonic()
        if kind == "redis_restart":
            self.stack.restart_redis()
        elif kind == "redis_outage":
            self.stack.pause_redis(OUTAGE_SECONDS)
        elif kind == "pg_restart":
            self.stack.restart_postgres()
        elif kind == "pg_outage":
            self.stack.pause_postgres(OUTAGE_SECONDS)
        else:
            self.stack.restart_livekit()
        back, back_wall = time.monotonic(), time.time()  # the dependency is back
        record["fault_seconds"].append(round(back - t0, 2))
        waiting = list(self.stack.backend_urls)  # every web process, polled in turn
        while waiting and time.monotonic() - back < READY_BOUND:
            for url in list(waiting):
                if _ready(url):
                    record["ready_seconds"].append(time.monotonic() - back)
                    waiting.remove(url)
            if waiting:
                time.sleep(READY_POLL)
        record["never_ready"] += len(waiting)

        def accounted() -> bool:
            ids = [v.session_id for v in live]
            state, beats = self.sessions(ids), self.heartbeats(ids)
            return all(
                (state.get(i, ("",))[0] == "ended" and bool(state[i][1])) or (beats.get(i) or 0) > back_wall
                for i in ids
            )

        with contextlib.suppress(psycopg.Error):
            wait_for(accounted, AFFECTED_BOUND, 0.5)
        ids = [v.session_id for v in live]
        state, beats = self.sessions(ids), self.heartbeats(ids)
        for session_id in ids:
            status, reason, _ = state.get(session_id, ("missing", "", None))
            if status == "ended" and reason:
                continue  # settle() counts its reason
            if status != "ended" and (beats.get(session_id) or 0) > back_wall:
                record["survived"] += 1
                self.affected.pop(session_id, None)  # its later end is no effect of this fault
            else:
                record["stuck"].append({"session": session_id, "status": status, "reason": reason})
        self.settle()
        survivors = [v for v in self.live_visitors() if v in live]
        if survivors:  # still working: a sentence gets its final line
            record["talk_after"]["ok" if self.talk(self.rng.choice(survivors)) else "no final"] += 1
        return True

    def choose(self, cycle: int, order: list[str]) -> str:
        live = self.live_visitors()
        workers_busy = any(n.startswith("agent-worker") for n in self.recovering)
        webs_busy = any(n.startswith("backend") for n in self.recovering)
        possible = [
            k
            for k in KINDS
            if (k != "start" or len(live) < MAX_LIVE)
            and (k not in ("talk", *ENDING_KINDS, *DEPENDENCY_KINDS) or live)
            and (k not in DEPENDENCY_KINDS or not self.recovering)
            and (k != "worker_kill" or not workers_busy)
            and (k not in ("web_term", "web_kill") or not webs_busy)
        ]
        if not live and "start" in possible:
            return "start"
        if cycle < FIRST_PHASE * len(order):  # the first cycles: every kind once, with sessions to hit
            if len(live) < 2 and "start" in possible:
                return "start"
            for kind in order:
                if kind in possible and kind not in self.faults:
                    return kind
        return self.rng.choices(possible, [WEIGHTS[k] for k in possible])[0]

    def cycle(self, kind: str) -> bool:
        if kind == "start":
            return self.start()
        if kind == "worker_kill":
            return self.worker_kill()
        if kind in ("web_term", "web_kill"):
            return self.web_restart(signal.SIGTERM if kind == "web_term" else signal.SIGKILL)
        if kind in DEPENDENCY_KINDS:
            return self.dependency_fault(kind)
        visitor = self.rng.choice(self.live_visitors())
        if kind == "talk":
            return self.talk(visitor)
        return self.end_by_visitor(visitor, kind)

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, cycle: int) -> None:
        for name, process in self.stack.processes.items():
            if process.poll() is None and name not in self.recovering:
                fds, mb = usage(process.pid)
                self.samples.setdefault(name, []).append((cycle, process.pid, fds, mb))

    def trend(self) -> dict[str, dict[str, Any]]:
        """Per process: first/last fds and MB of its latest incarnation, and the slope per 100
        cycles (a least-squares line through that incarnation's samples)."""
        report = {}
        for name, rows in self.samples.items():
            latest = [r for r in rows if r[1] == rows[-1][1]]
            entry: dict[str, Any] = {
                "restarted": len({r[1] for r in rows}) > 1,
                "samples": len(latest),
                "fds": [latest[0][2], latest[-1][2]],
                "rss_mb": [round(latest[0][3], 1), round(latest[-1][3], 1)],
            }
            if len(latest) >= 3 and latest[-1][0] > latest[0][0]:
                x = np.array([r[0] for r in latest], dtype=float)
                entry["fds_per_100_cycles"] = round(float(np.polyfit(x, [r[2] for r in latest], 1)[0]) * 100, 1)
                entry["rss_mb_per_100_cycles"] = round(float(np.polyfit(x, [r[3] for r in latest], 1)[0]) * 100, 1)
            report[name] = entry
        return report

    # -- the checks -------------------------------------------------------------------------
    def open_rooms(self) -> list[str]:
        async def names() -> list[str]:
            url = self.stack.livekit_url.replace("ws://", "http://")
            async with livekit_api.LiveKitAPI(url, LIVEKIT_DEV_KEY, LIVEKIT_DEV_SECRET) as lk:
                rooms = await lk.room.list_rooms(livekit_api.ListRoomsRequest())
                return [room.name for room in rooms.rooms]

        # A thread of its own: the caller may already run an event loop (pytest with Playwright).
        with ThreadPoolExecutor(1) as thread:
            return thread.submit(asyncio.run, names()).result()

    def lost_transcripts(self) -> tuple[int, list[dict[str, Any]]]:
        received = []
        for path in self.work.glob("*.jsonl"):
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(json.JSONDecodeError):  # a line cut short by SIGKILL
                    received.append(json.loads(line))
        declared = set()  # (session, seq) that a transcript_lines_lost frame named
        for path in self.work.glob("*.declared"):
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    entry = json.loads(line)
                    declared |= {(entry["session_id"], seq) for seq in entry["seqs"]}
        stored = {
            (r[0], r[1]): r[2] for r in self.query("SELECT session_id::text, seq, text FROM voice_transcriptentry")
        }
        missing = [m for m in received if stored.get((m["session_id"], m["seq"])) != m["text"]]
        lost = [m for m in missing if (m["session_id"], m["seq"]) not in declared]
        return len(received), len(missing) - len(lost), lost

    def exceptions(self) -> tuple[Counter[str], list[str]]:
        """Exceptions in the logs of the web processes and agent workers since the soak began
        (every incarnation): the expected counted by kind, the others as lines."""
        expected: Counter[str] = Counter()
        unexpected: list[str] = []
        for name, process in self.stack.processes.items():
            if not name.startswith(("backend", "agent-worker")):
                continue
            with process.log_path.open("rb") as log:
                log.seek(self.log_offsets.get(name, 0))
                text = log.read().decode(errors="replace")
            lines = text.splitlines()
            for index, line in enumerate(lines):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    entry = None
                if not isinstance(entry, dict):
                    # A plain traceback (uvicorn's "Exception in ASGI application", a crash):
                    # its exception line, the last of a chain.
                    following = next((x for x in lines[index + 1 :] if x.strip()), "")
                    if (
                        _exception_line(line)
                        and not following.startswith(("During handling", "The above"))
                        and any(x.startswith("Traceback") for x in lines[max(0, index - 200) : index])
                    ):
                        unexpected.append(f"{name}: traceback: {line[:200]}")
                    continue
                if entry.get("level") not in ("error", "critical") or not (entry.get("exc") or entry.get("exc_info")):
                    continue
                event = str(entry.get("event", ""))
                last = str(entry.get("exc", "")).strip().splitlines()[-1:] or [""]
                if event in EXPECTED_EXCEPTIONS:
                    expected[event] += 1
                else:
                    unexpected.append(f"{name}: {entry.get('logger')} {event[:120]} | {last[0][:200]}")
        return expected, unexpected

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        self.spare = self.spawn()
        order = list(KINDS)
        self.rng.shuffle(order)
        # Start, then talk while the first sessions are healthy (so a short run has finals to
        # check), then the other kinds in a seeded order.
        order.remove("start")
        order.remove("talk")
        order[:0] = ["start", "talk"]
        marks = {0, self.cycles // 2, self.cycles} | set(range(0, self.cycles, max(1, self.cycles // 10)))
        ran = 0
        for cycle in range(self.cycles):
            if cycle in marks:
                self.sample(cycle)
            unseen = set(order) - {"start", *self.faults}
            if cycle < FIRST_PHASE * len(order) and self.recovering and unseen <= set(RESTARTING):
                # The kinds still to run first all restart a process: let the restarts finish,
                # so a short run has every kind.
                for thread in self.restarts:
                    thread.join(120)
            kind = self.choose(cycle, order)
            t0 = time.monotonic()
            ok = self.cycle(kind)
            self.faults[kind] += 1
            if not ok:
                self.failures[kind] += 1
            self.settle()
            progress(
                f"[{cycle + 1}/{self.cycles}] {kind}{'' if ok else ' (failed)'} {time.monotonic() - t0:.1f} s; "
                f"{len(self.live_visitors())} live, {len(self.pending)} ending"
            )
            ran = cycle + 1
            if self.until_every_kind and set(KINDS) <= set(self.faults):
                progress(f"every kind ran once: stopping after {ran} cycles")
                break
        # The end: the restarts finish, whoever is still live presses Stop; every wait is bounded.
        for thread in self.restarts:
            thread.join(120)
        for visitor in self.live_visitors():
            self.end_by_visitor(visitor, "stop")
        end_started = time.monotonic()
        bound = HEARTBEAT_TIMEOUT + PARTICIPANT_TIMEOUT + 60
        wait_for(lambda: (self.settle(), not self.live_sessions() and not self.pending)[1], bound, 0.5)
        sessions_left = self.live_sessions()
        took = time.monotonic() - end_started
        progress(f"sessions ended {took:.1f} s after the last cycle; still live: {len(sessions_left)}")
        rooms_took = wait_for(lambda: not self.open_rooms(), 60, 1.0)
        rooms_left = self.open_rooms()
        progress(f"rooms closed {rooms_took:.1f} s later" if rooms_took is not None else f"rooms open: {rooms_left}")
        for visitor in self.visitors:
            visitor.kill()
        self.sample(ran)
        received, declared, lost = self.lost_transcripts()
        expected, unexpected = self.exceptions()
        all_cleanup = [s for values in self.cleanup.values() for s in values]
        total = self.query("SELECT count(*) FROM voice_voicesession")[0]
        return {
            "cycles": ran,
            "seed": self.seed,
            "seconds": round(time.monotonic() - started, 1),
            "faults": dict(sorted(self.faults.items())),
            "failed_actions": dict(self.failures),
            "other_ends": dict(self.other_ends),
            "other_sessions": self.other_sessions,
            "restart_errors": self.restart_errors,
            "sessions": total[0] if total else 0,
            "cleanup_seconds": {
                "n": len(all_cleanup),
                "p50": _round(pct(all_cleanup, 50)),
                "p95": _round(pct(all_cleanup, 95)),
                "max": _round(max(all_cleanup, default=None)),
                "by_kind": {
                    k: {"n": len(v), "p50": _round(pct(v, 50)), "max": _round(max(v))}
                    for k, v in sorted(self.cleanup.items())
                },
            },
            "finals_received": received,
            "declared_lost": declared,
            "dependency_faults": {k: _dependency_report(k, v) for k, v in sorted(self.dependency.items())},
            "expected_exceptions": dict(expected),
            "unexpected_exceptions": unexpected[:50],
            "lost": len(lost),
            "lost_lines": lost[:20],
            "orphaned_sessions": sessions_left,
            "orphaned_rooms": rooms_left,
            "processes": self.trend(),
        }


def _exception_line(line: str) -> bool:
    """Whether a plain log line is the closing line of a traceback, e.g. `redis.exceptions.
    ConnectionError: Error 111 ...` (a dotted or bare exception name, then a colon)."""
    return EXCEPTION_LINE.match(line) is not None


def _dependency_report(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    ready = record["ready_seconds"]
    p95 = pct(ready, 95)
    return {
        "n": len(record["fault_seconds"]),
        "fault_seconds": record["fault_seconds"],
        "readyz_seconds": {
            "n": len(ready),
            "p50": _round(pct(ready, 50)),
            "p95": _round(p95),
            "max": _round(max(ready, default=None)),
            "never": record["never_ready"],
        },
        "readyz_goal_met": p95 is not None and p95 <= READY_GOAL.get(kind, 5.0) and not record["never_ready"],
        "affected": record["affected"],
        "ended": dict(record["ends"]),
        "survived": record["survived"],
        "stuck": record["stuck"],
        "talk_after": dict(record["talk_after"]),
    }


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=3) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def soak_config(log_dir: Path, extra_env: dict[str, str] | None = None) -> StackConfig:
    """The production shape on PostgreSQL, with the soak's environment."""
    return StackConfig(
        livekit_server=setup.livekit_server(),
        log_dir=log_dir,
        redis_server=setup.redis_server(),
        postgres_bin=setup.postgres_bin(),
        backends=2,
        agent_workers=2,
        extra_env={**SOAK_ENV, **(extra_env or {})},
        offline_openai=True,
    )


def run_soak(stack: Stack, cycles: int, seed: int, work: Path, until_every_kind: bool = False) -> dict[str, Any]:
    """`cycles` of the soak; with `until_every_kind`, at most that many: it stops once each
    kind has run (the CI-sized run)."""
    work.mkdir(parents=True, exist_ok=True)
    bound = "at most " if until_every_kind else ""
    progress(f"soak: {bound}{cycles} cycles, seed {seed} (repeat with --seed {seed})")
    soak = Soak(stack, cycles, seed, work, until_every_kind)
    try:
        return soak.run()
    finally:
        for visitor in [*soak.visitors, *([soak.spare] if soak.spare else [])]:
            visitor.kill()
        soak.db.close()


def print_report(report: dict[str, Any]) -> None:
    c = report["cleanup_seconds"]
    progress(
        f"\nsoak report: N={report['cycles']} seed={report['seed']} in {report['seconds']} s, "
        f"{report['sessions']} sessions\n"
        f"  faults: {', '.join(f'{k} {v}' for k, v in report['faults'].items())}\n"
        f"  actions that failed: {report['failed_actions'] or 'none'}; restarts that failed: "
        f"{report['restart_errors'] or 'none'}; other ends: {report['other_ends'] or 'none'}\n"
        f"  cleanup: n={c['n']} p50={c['p50']} s p95={c['p95']} s max={c['max']} s; by kind {c['by_kind']}\n"
        f"  finals received {report['finals_received']}, declared lost {report['declared_lost']}, "
        f"lost (undeclared) {report['lost']}\n"
        f"  orphaned sessions {len(report['orphaned_sessions'])}, open rooms {len(report['orphaned_rooms'])}"
    )
    for kind, d in report["dependency_faults"].items():
        r = d["readyz_seconds"]
        progress(
            f"  {kind}: n={d['n']} (took {d['fault_seconds']} s); /readyz 200 after p50={r['p50']} "
            f"p95={r['p95']} max={r['max']} s, never {r['never']} (goal {READY_GOAL.get(kind, 5.0):g} s: "
            f"{'met' if d['readyz_goal_met'] else 'NOT met'}); sessions live {d['affected']}: ended "
            f"{d['ended'] or 'none'}, survived {d['survived']}, stuck {len(d['stuck'])}; "
            f"talk after {d['talk_after'] or '-'}"
        )
    progress(
        f"  exceptions in the logs: expected {report['expected_exceptions'] or 'none'}; "
        f"unexpected {len(report['unexpected_exceptions'])}"
    )
    for line in report["unexpected_exceptions"][:10]:
        progress(f"    {line}")
    for name, entry in report["processes"].items():
        fds_slope = entry.get("fds_per_100_cycles", "–")
        progress(
            f"  {name:15} fds {entry['fds'][0]}→{entry['fds'][1]} ({fds_slope}/100 cycles)"
            f"  RSS {entry['rss_mb'][0]}→{entry['rss_mb'][1]} MB ({entry.get('rss_mb_per_100_cycles', '–')}/100)"
            f"{'  restarted' if entry['restarted'] else ''}"
        )


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop the stack
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", default=None, help="the JSON report (default artifacts/soak/soak-N-SEED.json)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    base = ROOT / "artifacts" / "soak"
    with running_stack(soak_config(base / "logs")) as stack:
        report = run_soak(stack, args.cycles, seed, base / f"visitors-{seed}")
    print_report(report)
    out = Path(args.out) if args.out else base / f"soak-{args.cycles}-{seed}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    progress(f"  report: {out}")
    return 0 if passed(report) else 1


def passed(report: dict[str, Any]) -> bool:
    """Nothing lost, nothing left running or open, every restarted process back, every
    session a dependency fault hit accounted for, every web process ready again, no exception
    in the logs that is not expected."""
    dependency = report.get("dependency_faults", {}).values()
    return not (
        report["lost"]
        or report["orphaned_sessions"]
        or report["orphaned_rooms"]
        or report["restart_errors"]
        or any(d["stuck"] or d["readyz_seconds"]["never"] for d in dependency)
        or report.get("unexpected_exceptions")
    )


if __name__ == "__main__":
    sys.exit(main())
