"""`python -m bench report`: the results tables (Markdown) from bench/results/*.json, and
their plots redrawn (bench/results/*.png); `python -m bench report offline`: the tables of
the offline set's section (bench.report_offline)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench import report_offline
from bench.common import RESULTS, fmt


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _commit(d: dict | None) -> str:
    """The commit and day a result was measured on."""
    env = (d or {}).get("environment", {})
    return f"`{env.get('git', {}).get('commit', '?')}`, {str(env.get('date', '?'))[:10]}"


CAPACITY = (
    "capacity",
    "capacity_dispatch_fake",
    "capacity_dispatch_offline",
    "capacity_dispatch_local",
    "capacity_dispatch_fake_process",
)


def main(argv: list[str] | None = None) -> int:
    out: list[str] = []
    w = out.append
    if (sys.argv[1:] if argv is None else argv) == ["offline"]:
        report_offline.tables(w, _load, _commit)
        sys.stdout.write("\n".join(out).lstrip("\n") + "\n")
        return 0
    w("| measurement | profile | p50 | p95 | ours/bare p50 · p95 | n |")
    w("|---|---|---|---|---|---|")
    for name, label in (
        ("latency_offline", "server-side, fake room (offline)"),
        ("latency_live", "server-side, LiveKit + bot"),
    ):
        d = _load(name)
        for profile, r in (d or {}).get("results", {}).items():
            for side in ("bare", "ours"):
                s = r[side]["voice_to_voice"]
                ratio = r["ratio_ours_over_bare"]
                rr = f"{ratio['p50']:.3f} · {ratio['p95']:.3f}" if side == "ours" and ratio["p50"] else ""
                w(
                    f"| {label}, {side} ({_commit(d)}) | {profile} | {fmt(s['p50'])} | {fmt(s['p95'])} | {rr}"
                    f" | {s['n']} |"
                )
    for name, label in (("latency_browser_before", "before"), ("latency_browser", "now")):
        d = _load(name)
        for profile, r in (d or {}).get("results", {}).items():
            s = r["voice_to_voice"]
            w(
                f"| browser (Chromium fake mic → agent track), ours, {label} ({_commit(d)}) | {profile} "
                f"| {fmt(s['p50'])} | {fmt(s['p95'])} | | {s['n']} |"
            )
    w("")
    w("Breakdown, p50 per stage (ms):")
    w("")
    w(
        "| run | profile | side | VAD end lag (+uplink) | end of turn (VAD silence, STT final, endpointing) "
        "| LLM TTFT | TTS TTFB | downlink | outside the session | total p50 |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|")
    for name in ("latency_offline", "latency_live"):
        d = _load(name)
        for profile, r in (d or {}).get("results", {}).items():
            for side in ("bare", "ours"):
                b = r[side]["breakdown_p50"]
                w(
                    f"| {name.split('_')[1]} | {profile} | {side} | {fmt(b['vad_end_lag'])} | "
                    f"{fmt(b['end_of_turn_delay'])} | "
                    f"{fmt(b['llm_ttft'])} | {fmt(b['tts_ttfb'])} | {fmt(b.get('downlink_transport'))} | "
                    f"{fmt(b.get('outside_session'))} | {fmt(r[side]['voice_to_voice']['p50'])} |"
                )
    for name in ("latency_offline", "latency_live"):
        d = _load(name)
        for profile, r in (d or {}).get("results", {}).items():
            f = r["ours"].get("ws_fanout")
            if f:
                w(f"\nWS fan-out ({name}, {profile}, 1 session): p50 {fmt(f['p50'])}, p99 {fmt(f['p99'])} (n={f['n']})")
    d = _load("capacity")
    if d:
        w("")
        w(
            f"Capacity, one backend process hosting every agent ({_commit(d)}; profile {d['profile']},"
            f" {d['turns_per_session']} turns per session;"
            f" knee = **{d['knee_sessions']}** sessions):"
        )
        w("")
        w(
            "| N | v2v p50 | v2v p95 | WS fan-out p50 / p99 | backend CPU % (per session) | livekit CPU % "
            "| bots CPU % | machine busy % | backend RSS MB (per session) | errors |"
        )
        w("|---|---|---|---|---|---|---|---|---|---|")
        for r in d["rows"]:
            # No fan-out in newer rows: the stack has no probe in it (bench/README.md).
            s, f, c = r["voice_to_voice"], r.get("ws_fanout") or {}, r["cpu_pct"]
            w(
                f"| {r['sessions']} | {fmt(s['p50'])} | {fmt(s['p95'])} | {fmt(f.get('p50'))} / {fmt(f.get('p99'))} | "
                f"{c['backend']:.0f} ({r['backend_cpu_pct_per_session']:.1f}) | {c['livekit']:.0f} | "
                f"{c['bots(driver)']:.0f} | "
                f"{r['machine_busy_pct']:.0f} | {r['peak_rss_mb']['backend']:.0f} "
                f"({r['backend_rss_mb_per_session']:.1f}) | "
                f"{len(r['errors']) + r['unanswered']} |"
            )
    _dispatch(w)
    d = _load("api")
    if d:
        w("")
        w(f"API throughput ({_commit(d)}):")
        w("")
        w("| API | concurrency | throughput | p50 | p99 | errors |")
        w("|---|---|---|---|---|---|")
        for key, r in d["results"].items():
            what = "GET /token" if key.startswith("token") else "POST + DELETE /session (pair)"
            w(
                f"| {what} | {r['concurrency']} | {r['rps']:.1f}/s | {fmt(r['latency']['p50'])} | "
                f"{fmt(r['latency']['p99'])} | {sum(r['errors'].values())} |"
            )
    for d in (_load("sweep"), _load("sweep_zero")):
        if not d:
            continue
        w("")
        w(f"Settings (bare AgentSession, profile {d['profile']}, {d['turns_per_config']} turns each; {_commit(d)}):")
        w("")
        w("| setting | p50 | p95 | premature replies |")
        w("|---|---|---|---|")
        for r in d["rows"]:
            s = r["voice_to_voice"]
            w(f"| {r['name']} | {fmt(s['p50'])} | {fmt(s['p95'])} | {r['premature_replies']} |")
    _endpointing(w)
    _profiles(w)
    for name in CAPACITY:
        if d := _load(name):
            capacity_plot(d["rows"], d["single_session_p95"], name)
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def _dispatch(w: Any) -> None:
    """The production shape: dispatched agent workers pinned to one core of their own."""
    for name in CAPACITY[1:]:  # _local: the deleted PocketSphinx + flite set, kept as a record
        d = _load(name)
        if not d:
            continue
        executor = "its own process" if name.endswith("_process") else "a thread of the worker"
        w("")
        w(
            f"Capacity, production shape (`{name}`, {_commit(d)}): {d['workers']} agent worker on one core of its"
            f" own (pinned), each session in {executor}, {d['providers']} providers, profile {d['profile']},"
            f" {d['turns_per_session']} turns per session; knee = **{d['knee_sessions']}** sessions"
            f" (p95 <= 2 x {fmt(d['single_session_p95'])}):"
        )
        w("")
        w(
            "| N | v2v p50 | v2v p95 | agent core CPU % | per session: CPU % of a core, PSS MB | livekit CPU % "
            "| bots CPU % | machine busy % | failed turns |"
        )
        w("|---|---|---|---|---|---|---|---|---|")
        for r in d["rows"]:
            s, c = r["voice_to_voice"], r["cpu_pct"]
            w(
                f"| {r['sessions']} | {fmt(s['p50'])} | {fmt(s['p95'])} | {c['agents']:.0f} |"
                f" {r['backend_cpu_pct_per_session']:.1f}, {r['backend_rss_mb_per_session']:.1f} | {c['livekit']:.0f} |"
                f" {c['bots(driver)']:.0f} | {r['machine_busy_pct']:.0f} | {len(r['errors']) + r['unanswered']} |"
            )


def _endpointing(w: Any) -> None:
    d = _load("endpointing")
    if not d:
        return
    t = d["test_set"]
    w("")
    w(
        f"End of turn on the natural-pause set ({_commit(d)}; {t['utterances']} utterances,"
        f" {t['pauses']} pauses of 0.2-0.7 s;"
        " real Silero VAD, the session's endpointing rule; [plot](results/endpointing.png)):"
    )
    w("")
    w(
        "| option | Silero min_silence | endpointing delay | false end of turn | end-of-turn delay p50 / p95 "
        "| openai v2v p50 (model), preemptive off / LLM / LLM+TTS |"
    )
    w("|---|---|---|---|---|---|")
    for r in d["rows"]:
        e = r["end_of_turn_delay"]
        v2v = " / ".join(fmt(r[f"openai_v2v_preemptive_{m}"]["p50"]) for m in ("off", "llm", "llm+tts"))
        w(
            f"| {r['option']} | {r['vad_min_silence']:g} s | {r['min_delay']:g} s |"
            f" {r['false_end_of_turn']}/{r['utterances']} = {100 * r['false_rate']:.1f} % |"
            f" {fmt(e['p50'])} / {fmt(e['p95'])} | {v2v} |"
        )
    _endpointing_plot(d)


def _endpointing_plot(d: dict) -> None:
    if (plt := _pyplot()) is None:
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for option, marker, label in (
        ("vad", "o", "Silero min_silence = delay, swept"),
        ("vad 0.3 + delay", "s", "Silero 0.3 s, endpointing delay swept"),
    ):
        rs = [r for r in d["rows"] if r["option"] == option]
        xs = [100 * r["false_rate"] for r in rs]
        left.plot(xs, [1000 * r["end_of_turn_delay"]["p50"] for r in rs], marker=marker, label=label)
        right.plot(xs, [1000 * r["openai_v2v_preemptive_llm+tts"]["p50"] for r in rs], marker=marker, label=label)
    panels = ((left, "end-of-turn delay p50 (ms)"), (right, "openai-profile v2v p50 (model), preemptive LLM+TTS (ms)"))
    for ax, title in panels:
        ax.axvline(5, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("false end of turn (% of utterances)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "endpointing.png", dpi=110)


def _profiles(w: Any) -> None:
    rows = [(name, _load(name)) for name in ("profile_before", "profile")]
    rows = [(n, d) for n, d in rows if d]
    if not rows:
        return
    w("")
    w("One session, fake providers, openai profile (`python -m bench profile`):")
    w("")
    w("| run | commit | CPU % of a core | turns | v2v p50 |")
    w("|---|---|---|---|---|")
    for name, d in rows:
        w(
            f"| {name} | {d['environment']['git']['commit']} | {100 * d['core_share']:.1f} | {d['turns']} |"
            f" {fmt(d['voice_to_voice']['p50'])} |"
        )


def _pyplot() -> Any:
    """matplotlib's pyplot drawing to files, or None where it is not installed (the dev lock has it)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def capacity_plot(rows: list[dict[str, Any]], base_p95: float | None, out: str) -> Path | None:
    """Latency and CPU against concurrent sessions: bench/results/OUT.png (None: no matplotlib)."""
    if (plt := _pyplot()) is None:
        return None
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
    path = RESULTS / f"{out}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


if __name__ == "__main__":
    sys.exit(main())
