"""`python -m bench capacity`: N concurrent sessions, each a headless bot in its own room
talking to our backend through one LiveKit server, N increasing until p95 voice-to-voice
exceeds 2x the single-session p95 or errors appear. CPU and memory come from /proc (psutil)
of the backend (which hosts every agent), livekit-server, and this driver (the bots).
The WS fan-out latency (bridge hand-over → bot's WebSocket) is measured at every step.

`python -m bench capacity-dispatch [--providers fake|offline]`: the production shape. The
agents run in dispatched livekit-agents workers (`python -m app.voice.agent.worker start`,
WORKERS processes, each job a process of its own), with Redis as the channel layer. The
workers are pinned to the last core (`taskset`), this driver, its bots, livekit-server,
Redis and the web process to the others, so the agents' CPU is their own. Agent CPU and
memory are those of the worker process trees (memory as PSS: shared pages split fairly
between the processes that map them). `offline`: the production openai providers against
the stack's offline OpenAI-compatible server, which runs with the rest on the other cores
(so the agent core's figures leave Whisper and Piper out; bench.offline_server has those)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from bench import common
from bench.live import LOGS, BenchStack, attach_metrics, bench_stack, fanout, fanout_kinds, read_probe, run_bots
from bench.turns import TurnLog, TurnPlan

WORKERS = 2


class Sampler:
    """CPU seconds and peak RSS of a few processes (with children) over one step."""

    def __init__(self, pids: dict[str, int | list[int]], pss: bool = False) -> None:
        self.procs = {
            name: [psutil.Process(p) for p in (pid if isinstance(pid, list) else [pid])] for name, pid in pids.items()
        }
        self.pss = pss
        self.peak_rss = {name: 0 for name in pids}
        self._stop = threading.Event()

    def _tree(self, ps: list[psutil.Process]) -> list[psutil.Process]:
        out = []
        for p in ps:
            if p.pid == os.getpid():
                out.append(p)  # the driver's children are the stack's servers, counted on their own
                continue
            try:
                out += [p, *p.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return out

    def _cpu(self) -> dict[str, float]:
        out = {}
        for name, p in self.procs.items():
            total = 0.0
            for q in self._tree(p):
                try:
                    t = q.cpu_times()
                    total += t.user + t.system
                    if q.pid != os.getpid():
                        # Job processes that ended during the step: their parent reaped them.
                        total += t.children_user + t.children_system
                except psutil.NoSuchProcess:
                    pass
            out[name] = total
        return out

    def _rss(self) -> None:
        for name, p in self.procs.items():
            rss = 0
            for q in self._tree(p):
                try:
                    rss += q.memory_full_info().pss if self.pss else q.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            self.peak_rss[name] = max(self.peak_rss[name], rss)

    def __enter__(self) -> Sampler:
        self.t0, self.cpu0 = time.monotonic(), self._cpu()
        self.sys0 = psutil.cpu_times()
        self._rss()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self._rss()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.elapsed = time.monotonic() - self.t0
        cpu1, sys1 = self._cpu(), psutil.cpu_times()
        self.cpu_pct = {k: 100 * (cpu1[k] - self.cpu0[k]) / self.elapsed for k in cpu1}
        busy = lambda t: t.user + t.system + t.nice + t.irq + t.softirq  # noqa: E731
        total = lambda t: busy(t) + t.idle + t.iowait  # noqa: E731
        self.machine_busy_pct = 100 * (busy(sys1) - busy(self.sys0)) / max(1e-9, total(sys1) - total(self.sys0))


class DispatchStack(BenchStack):
    """The bench stack with Redis and dispatched agent workers pinned to their own core."""

    agent_cores: str = ""

    def start(self, with_ui: bool = False) -> DispatchStack:  # type: ignore[override]
        from devtools.stack import free_port

        self.config.backend_port = self.config.backend_port or free_port()
        self.config.ui_port = self.config.ui_port or free_port()
        try:
            self.start_postgres()  # with no server of its own: the config's database_url
            self.start_livekit()
            self.start_offline_openai()  # when the config asks for it: --providers offline
            self.start_redis()
            self.start_backend()
            self.start_agent_workers()
        except BaseException:
            self.stop()
            raise
        return self

    def start_agent_workers(self) -> None:
        from devtools.stack import PYTHON, wait_for_log

        for index in range(self.config.agent_workers):
            env = self.backend_env() | {"VOICE_WORKER_PORT": "0", "VOICE_WORKER_MAX_SESSIONS": "100"}
            cmd = ["taskset", "-c", self.agent_cores, PYTHON, "-m", "app.voice.agent.worker", "start"]
            self._spawn(f"agent-worker-{index + 1}", cmd, env)
        for index in range(self.config.agent_workers):
            wait_for_log(self.processes[f"agent-worker-{index + 1}"], "registered worker", timeout=90)


@contextlib.contextmanager
def dispatch_stack(profile: str, providers: str, workers: int) -> Iterator[DispatchStack]:
    from devtools import setup
    from devtools.stack import StackConfig

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("capacity-dispatch needs 2 cores: one for the agents, one for the rest")
    os.sched_setaffinity(0, set(cores[:-1]))  # this driver and every server it starts
    tmp = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    probe = tmp / "probe.jsonl"
    probe.touch()
    if providers not in ("fake", "offline"):
        raise SystemExit(f"capacity-dispatch: providers fake or offline, not {providers!r}")
    offline = providers == "offline"  # the production openai set, on the stack's offline server
    fake = {**common.PROFILES[profile], "FAKE_STT_UTTERANCES": common.STT_UTTERANCE, "VOICE_PROVIDERS": "fake"}
    env = {
        **({} if offline else fake),
        "BENCH_PROBE_FILE": str(probe),
        "LOG_LEVEL": "WARNING",
        "VOICE_PARTICIPANT_TIMEOUT": "60",
        "VOICE_START_TIMEOUT": "60",
        "PYTHONPATH": str(common.ROOT),
    }
    config = StackConfig(
        livekit_server=setup.livekit_server(),
        log_dir=LOGS,
        database_url=f"sqlite:///{tmp}/bench.sqlite3",
        extra_env=env,
        redis_server=setup.redis_server(),
        agent_workers=workers,
        livekit_auto_create=True,  # the bots join with tokens of their own, before POST /session
        offline_openai=offline,
    )
    stack = DispatchStack(config)
    stack.probe_file = probe
    stack.agent_cores = str(cores[-1])
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
        os.sched_setaffinity(0, set(cores))


def main(
    profile: str,
    steps: list[int],
    turns: int,
    out: str,
    extra_env: dict[str, str] | None = None,
    *,
    workers: int = 0,
    providers: str = "fake",
) -> dict[str, Any]:
    clip = common.speech_clip(16000)
    plan = TurnPlan(turns=turns)
    rows: list[dict[str, Any]] = []
    shape = f"{workers} dispatched workers on their own core, {providers} providers" if workers else "in-process"
    print(f"== capacity ({shape}), profile {profile}, {turns} turns per session, steps {steps}")
    stack_cm = dispatch_stack(profile, providers, workers) if workers else bench_stack(profile, extra=extra_env)
    with stack_cm as stack:
        pids: dict[str, int | list[int]] = {
            "backend": stack.processes["backend"].pid,
            "livekit": stack.processes["livekit"].pid,
            "bots(driver)": os.getpid(),
        }
        if workers:
            pids["agents"] = [p.pid for name, p in stack.processes.items() if name.startswith("agent-worker")]
        agent = "agents" if workers else "backend"
        idle = Sampler(pids, pss=bool(workers))
        with idle:
            time.sleep(3)
        baseline_rss = dict(idle.peak_rss)
        base_p95 = None
        for n in steps:
            with Sampler(pids, pss=bool(workers)) as sampler:
                results = asyncio.run(run_bots(stack, n, plan, clip, prefix=f"cap{n}", cheap=True))
            records = read_probe(stack.probe_file)
            merged = TurnLog()
            lat: list[float] = []
            fan: list[float] = []
            kinds: dict[str, list[float]] = {}
            errors: list[str] = []
            for r in results:
                attach_metrics(r.log, records, r.session_id)
                lat += [x for x in r.log.latencies() if x is not None]
                errors += r.log.errors
                fan += fanout(r, records)
                for k, v in fanout_kinds(r, records).items():
                    kinds.setdefault(k, []).extend(v)
                merged.user_metrics += r.log.user_metrics
                merged.agent_metrics += r.log.agent_metrics
            unanswered = sum(x is None for r in results for x in r.log.latencies())
            s = common.summary(lat)
            base_p95 = base_p95 or s["p95"]
            per_session_cpu = (sampler.cpu_pct[agent] - idle.cpu_pct[agent]) / n
            rss_per = (sampler.peak_rss[agent] - baseline_rss[agent]) / n / 2**20
            row = {
                "sessions": n,
                "voice_to_voice": s,
                "unanswered": unanswered,
                "errors": errors,
                "ws_fanout": common.summary(fan),
                "ws_fanout_by_kind": {k: common.summary(v) for k, v in kinds.items()},
                "setup_s_p50": common.pct([r.setup_seconds for r in results], 50),
                "cpu_pct": sampler.cpu_pct,
                "idle_cpu_pct": idle.cpu_pct,
                "machine_busy_pct": sampler.machine_busy_pct,
                "agent_process": agent,
                "backend_cpu_pct_per_session": per_session_cpu,
                "peak_rss_mb": {k: v / 2**20 for k, v in sampler.peak_rss.items()},
                "backend_rss_mb_per_session": rss_per,
                "stage_p50": {
                    "end_of_turn_delay": common.pct(
                        [m["end_of_turn_delay"] for m in merged.user_metrics if "end_of_turn_delay" in m], 50
                    ),
                    "llm_ttft": common.pct(
                        [m["llm_node_ttft"] for m in merged.agent_metrics if "llm_node_ttft" in m], 50
                    ),
                    "tts_ttfb": common.pct(
                        [m["tts_node_ttfb"] for m in merged.agent_metrics if "tts_node_ttfb" in m], 50
                    ),
                },
                "step_seconds": sampler.elapsed,
            }
            rows.append(row)
            over = s["p95"] is not None and base_p95 is not None and s["p95"] > 2 * base_p95
            print(
                f"  N={n:>3}  v2v p50 {common.fmt(s['p50']):>7} p95 {common.fmt(s['p95']):>7}"
                f" (n={s['n']}, unanswered {unanswered})"
                f"  ws p50/p99 {common.fmt(row['ws_fanout']['p50'])}/{common.fmt(row['ws_fanout']['p99'])}"
                f"  cpu% backend {sampler.cpu_pct['backend']:.0f} livekit {sampler.cpu_pct['livekit']:.0f}"
                f" bots {sampler.cpu_pct['bots(driver)']:.0f} machine {sampler.machine_busy_pct:.0f}"
                + (f" agents {sampler.cpu_pct['agents']:.0f}" if workers else "")
                + f"  {agent}/session {per_session_cpu:.1f}% {rss_per:.1f} MB  errors={len(errors)}"
                f"  [{sampler.elapsed:.0f} s]",
                flush=True,
            )
            if over or errors or unanswered:
                print(f"  stop: {'p95 > 2x single-session p95' if over else 'errors/unanswered turns'} at N={n}")
                break
    knee = max(
        (
            r["sessions"]
            for r in rows
            if not r["errors"]
            and not r["unanswered"]
            and r["voice_to_voice"]["p95"] is not None
            and r["voice_to_voice"]["p95"] <= 2 * base_p95
        ),
        default=None,
    )
    print(f"  knee: {knee} concurrent sessions hold p95 <= 2x single-session p95 ({common.fmt(base_p95)})")
    common.write_result(
        out,
        {
            "kind": "capacity",
            "profile": profile,
            "backend_extra_env": extra_env or {},
            "shape": shape,
            "workers": workers,
            "providers": providers,
            "provider_env": common.PROFILES[profile] if providers == "fake" else {},
            "turns_per_session": turns,
            "single_session_p95": base_p95,
            "knee_sessions": knee,
            "rows": rows,
        },
    )
    _plot(rows, base_p95, out)
    return {"rows": rows, "knee": knee}


def _plot(rows: list[dict[str, Any]], base_p95: float | None, out: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("   (matplotlib missing: ./dev.sh setup installs it, for the plot)")
        return
    n = [r["sessions"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=90)
    for q, style in (("p50", "o-"), ("p95", "s-")):
        ax.plot(n, [(r["voice_to_voice"][q] or 0) * 1000 for r in rows], style, label=f"voice-to-voice {q}")
    if base_p95:
        ax.axhline(2000 * base_p95, color="grey", ls="--", lw=1, label="2x single-session p95")
    ax.set_xlabel("concurrent sessions (bots via LiveKit)")
    ax.set_ylabel("ms (log)")
    ax.set_yscale("log")
    ax2 = ax.twinx()
    ax2.plot(
        n, [r["machine_busy_pct"] for r in rows], "^:", color="tab:red", label="machine CPU % (2 cores, incl. others)"
    )
    ax2.plot(
        n, [r["cpu_pct"]["backend"] for r in rows], "v:", color="tab:purple", label="backend process CPU % of 1 core"
    )
    ax2.set_ylabel("CPU %")
    ax2.set_ylim(0, 105)
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="upper left")
    ax.set_title(f"Latency vs concurrent sessions ({out})", fontsize=9)
    fig.tight_layout()
    path = common.RESULTS / f"{out}.png"
    fig.savefig(path)
    print(f"   -> {path.relative_to(common.ROOT)}")


if __name__ == "__main__":  # python -m bench.capacity NAME: redraw NAME.png from NAME.json
    import json
    import sys

    data = json.loads((common.RESULTS / f"{sys.argv[1]}.json").read_text())
    _plot(data["rows"], data["single_session_p95"], sys.argv[1])
