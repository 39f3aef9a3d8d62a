"""`python -m bench capacity`: N concurrent sessions, each a headless bot in its own room
talking to our backend through one LiveKit server, N increasing until p95 voice-to-voice
exceeds 2x the single-session p95 or errors appear. CPU and memory come from /proc (psutil)
of the backend (which hosts every agent), livekit-server, and this driver (the bots); the
stages of each turn from the replies' latency on the transcript socket.

`python -m bench capacity-dispatch [--providers fake|offline]`: the production shape
(bench.live.real_stack with workers). The agents run in dispatched livekit-agents workers
(`python -m app.voice.agent.worker start`, each job a process of its own), with Redis as the
channel layer. The workers are pinned to the last core, this driver, its bots,
livekit-server, Redis and the web process to the others, so the agents' CPU is their own. Agent CPU and
memory are those of the worker process trees (memory as PSS: shared pages split fairly
between the processes that map them). `offline`: the production openai providers against
the stack's offline OpenAI-compatible server, which runs with the rest on the other cores
(so the agent core's figures leave Whisper and Piper out; bench.offline_server has those)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import psutil

from bench import common, report
from bench.live import real_stack, run_bots
from bench.turns import TurnPlan


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


def main(profile: str, steps: list[int], turns: int, out: str, *, workers: int = 0) -> dict[str, Any]:
    """`profile`: a fake one (the fake providers), or an offline one (the product's openai set
    on the stack's offline server)."""
    clip = common.speech_clip(16000)
    plan = TurnPlan(turns=turns)
    rows: list[dict[str, Any]] = []
    providers = "offline" if profile in common.OFFLINE_PROFILES else "fake"
    shape = f"{workers} dispatched workers on their own core, {providers} providers" if workers else "in-process"
    print(f"== capacity ({shape}), profile {profile}, {turns} turns per session, steps {steps}")
    with real_stack(profile, workers=workers) as stack:
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
            lat = [x for r in results for x in r.log.latencies() if x is not None]
            errors = [e for r in results for e in r.log.errors]
            stages = [row for r in results for row in r.log.breakdown()]
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
                "setup_s_p50": common.pct([r.setup_seconds for r in results], 50),
                "cpu_pct": sampler.cpu_pct,
                "idle_cpu_pct": idle.cpu_pct,
                "machine_busy_pct": sampler.machine_busy_pct,
                "agent_process": agent,
                "backend_cpu_pct_per_session": per_session_cpu,
                "peak_rss_mb": {k: v / 2**20 for k, v in sampler.peak_rss.items()},
                "backend_rss_mb_per_session": rss_per,
                "stage_p50": {
                    k: common.pct([row[k] for row in stages if row[k] is not None], 50)
                    for k in ("end_of_turn_delay", "transcription_delay", "llm_ttft", "tts_ttfb", "outside_session")
                },
                "step_seconds": sampler.elapsed,
            }
            rows.append(row)
            over = s["p95"] is not None and base_p95 is not None and s["p95"] > 2 * base_p95
            print(
                f"  N={n:>3}  v2v p50 {common.fmt(s['p50']):>7} p95 {common.fmt(s['p95']):>7}"
                f" (n={s['n']}, unanswered {unanswered})"
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
            "shape": shape,
            "workers": workers,
            "providers": providers,
            "provider_env": common.profile_env(profile),
            "turns_per_session": turns,
            "single_session_p95": base_p95,
            "knee_sessions": knee,
            "rows": rows,
        },
    )
    path = report.capacity_plot(rows, base_p95, out)
    print(f"   -> {path.relative_to(common.ROOT)}" if path else "   (no plot: matplotlib is missing; ./dev.sh setup)")
    return {"rows": rows, "knee": knee}
