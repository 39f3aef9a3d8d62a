"""`python -m bench profile`: what one session costs, and where (offline fake room).

One session of ours (POST /session through the app in this process, the real AgentRun,
the bench's turn-taking microphone) for N turns with the openai profile. Reported: CPU
seconds of this process per second of session (% of one core), minus an idle sample of
the same process, and with --py-spy the functions that take the samples (py-spy attached
to this process, own time and total time by function).
"""

from __future__ import annotations

import asyncio
import collections
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import common, offline
from bench.turns import TurnPlan


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _idle_cpu_share(seconds: float = 3.0) -> float:
    start_cpu, start = _cpu(), time.monotonic()
    await asyncio.sleep(seconds)
    return (_cpu() - start_cpu) / (time.monotonic() - start)


def _start_py_spy(raw: Path) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        print("  py-spy not installed (it is in the dev lock: ./dev.sh setup)")
        return None
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(os.getpid()),
            "--format",
            "raw",
            "--rate",
            "200",
            "--output",
            str(raw),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/module.py:123)"
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


# Leaves where a thread waits rather than works (py-spy counts a thread in epoll as active).
IDLE_LEAVES = (
    "EpollSelector.select (",
    "_worker (concurrent/futures/thread.py)",
    "Condition.wait (",
    "BaseSelectorEventLoop._write_to_self (",
)


def summarize_raw(raw: Path, top: int = 15) -> dict[str, Any]:
    """Collapsed stacks → own and total busy samples per function (waiting leaves left out)."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            _frame_name(f)
            for f in stack.split(";")
            if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not frames or frames[-1].startswith(IDLE_LEAVES):
            continue
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    return {
        "samples": samples,
        "own": [(name, n / samples) for name, n in own.most_common(top)] if samples else [],
        "total": [(name, n / samples) for name, n in total.most_common(top * 2)] if samples else [],
    }


async def _run(turns: int, spy: bool) -> dict[str, Any]:
    common.apply_profile("openai")
    clip, plan = common.speech_clip(16000), TurnPlan(turns=turns)
    import app.asgi  # noqa: F401 - imported before the clock starts, like a running server

    idle = await _idle_cpu_share()
    raw = common.CACHE / "profile-session.raw"
    raw.parent.mkdir(parents=True, exist_ok=True)
    proc = _start_py_spy(raw) if spy else None
    start_cpu, start = _cpu(), time.monotonic()
    ours = await offline.run_ours(clip, plan, "profile-0", 60 + turns * 12)
    wall, cpu = time.monotonic() - start, _cpu() - start_cpu
    profile = None
    if proc is not None:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        proc.wait(timeout=30)
        if raw.exists():
            profile = summarize_raw(raw)
    log = ours["log"]
    latencies = [x for x in log.latencies() if x is not None]
    return {
        "turns": turns,
        "wall_s": wall,
        "cpu_s": cpu,
        "idle_core_share": idle,
        "core_share": cpu / wall - idle,
        "voice_to_voice": common.summary(latencies),
        "errors": log.errors,
        "profile": profile,
    }


def main(turns: int, out: str, spy: bool) -> dict[str, Any]:
    offline.setup_django()
    print(f"== one session, fake providers, openai profile, {turns} turns (offline fake room)")
    result = asyncio.run(_run(turns, spy))
    print(
        f"  CPU {result['cpu_s']:.1f} s over {result['wall_s']:.1f} s: {100 * result['core_share']:.1f} % of a core"
        f" (idle process {100 * result['idle_core_share']:.1f} % subtracted); v2v p50"
        f" {common.fmt(result['voice_to_voice']['p50'])}; errors {len(result['errors'])}"
    )
    if result["profile"]:
        print(f"  py-spy, {result['profile']['samples']} samples; busy samples by function (own time):")
        for name, share in result["profile"]["own"]:
            print(f"    {100 * share:5.1f} %  {name}")
    common.write_result(out, {"kind": "profile_session", **result})
    return result
