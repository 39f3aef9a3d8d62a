"""`python -m bench.report`: the results table (Markdown) from bench/results/*.json."""

from __future__ import annotations

import json
import sys

from bench.common import RESULTS, fmt


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main() -> None:
    out = []
    w = out.append
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
                w(f"| {label}, {side} | {profile} | {fmt(s['p50'])} | {fmt(s['p95'])} | {rr} | {s['n']} |")
    d = _load("latency_browser")
    for profile, r in (d or {}).get("results", {}).items():
        s = r["voice_to_voice"]
        w(
            f"| browser (Chromium fake mic → agent track), ours | {profile} | {fmt(s['p50'])} | {fmt(s['p95'])} | "
            f"| {s['n']} |"
        )
    w("")
    w("Breakdown, p50 per stage (ms):")
    w("")
    w(
        "| run | profile | side | VAD end lag (+uplink) | end of turn (VAD silence, STT final, endpointing) "
        "| LLM TTFT | TTS TTFB | downlink | total p50 |"
    )
    w("|---|---|---|---|---|---|---|---|---|")
    for name in ("latency_offline", "latency_live"):
        d = _load(name)
        for profile, r in (d or {}).get("results", {}).items():
            for side in ("bare", "ours"):
                b = r[side]["breakdown_p50"]
                w(
                    f"| {name.split('_')[1]} | {profile} | {side} | {fmt(b['vad_end_lag'])} | "
                    f"{fmt(b['end_of_turn_delay'])} | "
                    f"{fmt(b['llm_ttft'])} | {fmt(b['tts_ttfb'])} | {fmt(b.get('downlink_transport'))} | "
                    f"{fmt(r[side]['voice_to_voice']['p50'])} |"
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
            f"Capacity (profile {d['profile']}, {d['turns_per_session']} turns per session;"
            f" knee = **{d['knee_sessions']}** sessions):"
        )
        w("")
        w(
            "| N | v2v p50 | v2v p95 | WS fan-out p50 / p99 | backend CPU % (per session) | livekit CPU % "
            "| bots CPU % | machine busy % | backend RSS MB (per session) | errors |"
        )
        w("|---|---|---|---|---|---|---|---|---|---|")
        for r in d["rows"]:
            s, f, c = r["voice_to_voice"], r["ws_fanout"], r["cpu_pct"]
            w(
                f"| {r['sessions']} | {fmt(s['p50'])} | {fmt(s['p95'])} | {fmt(f['p50'])} / {fmt(f['p99'])} | "
                f"{c['backend']:.0f} ({r['backend_cpu_pct_per_session']:.1f}) | {c['livekit']:.0f} | "
                f"{c['bots(driver)']:.0f} | "
                f"{r['machine_busy_pct']:.0f} | {r['peak_rss_mb']['backend']:.0f} "
                f"({r['backend_rss_mb_per_session']:.1f}) | "
                f"{len(r['errors']) + r['unanswered']} |"
            )
    d = _load("api")
    if d:
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
        w(f"Settings (bare AgentSession, profile {d['profile']}, {d['turns_per_config']} turns each):")
        w("")
        w("| setting | p50 | p95 | premature replies |")
        w("|---|---|---|---|")
        for r in d["rows"]:
            s = r["voice_to_voice"]
            w(f"| {r['name']} | {fmt(s['p50'])} | {fmt(s['p95'])} | {r['premature_replies']} |")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
