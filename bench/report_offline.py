"""The tables of bench/README.md's "The offline set (offline_openai)" section, from
wer.json, latency_browser_offline.json and offline_server.json (`python -m bench.report`
prints them after the others)."""

from __future__ import annotations

from typing import Any

from bench.common import fmt


def _load_avg(d: dict) -> str:
    # common.environment() is taken when the result is written, i.e. at the run's end.
    load = d.get("environment", {}).get("machine", {}).get("loadavg_at_start")
    return f"load average {load[0]:.1f} at the end" if load else "load unknown"


def tables(w: Any, load: Any, commit: Any) -> None:
    _wer(w, load("wer"), commit)
    _latency(w, load("latency_browser_offline"), commit)
    _server(w, load("offline_server"), commit)


def _wer(w: Any, d: dict | None, commit: Any) -> None:
    if not d:
        return
    ways = [k for k in ("http", "realtime", "browser") if k in d["results"]]
    w("")
    w(
        f"Word error rate, real recordings ({commit(d)}, {_load_avg(d)}; goal through the browser"
        f" <= {d['goal_browser_pooled']:.2f} pooled):"
    )
    w("")
    w("| recording | words | " + " | ".join(ways) + " | heard in the browser |")
    w("|---|---|" + "---|" * len(ways) + "---|")
    for name, rec in d["recordings"].items():
        cells = " | ".join(f"{d['results'][k]['wer']['per_file'][name]:.3f}" for k in ways)
        heard = d["results"].get("browser", {}).get("files", {}).get(name, {}).get("text", "")
        w(f"| {name} | {len(rec['reference'].split())} | {cells} | {heard} |")
    words = sum(len(r["reference"].split()) for r in d["recordings"].values())
    cells = " | ".join(f"**{d['results'][k]['wer']['pooled']:.3f}**" for k in ways)
    w(f"| pooled | {words} | {cells} | |")


def _latency(w: Any, d: dict | None, commit: Any) -> None:
    if not d:
        return
    w("")
    w(
        f"Browser voice-to-voice, offline set ({commit(d)}, {_load_avg(d)}; goal p50 <= 1.0 s), with the"
        " session's stages (p50):"
    )
    w("")
    w(
        "| profile | p50 | p95 | n | unanswered | VAD end lag (+uplink) | end of turn | STT final after VAD end"
        " | LLM TTFT | TTS TTFB | downlink | outside the session | load average, start → end |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for profile, r in d["results"].items():
        s, b = r["voice_to_voice"], r["breakdown_p50"]
        load = r.get("loadavg")
        load_cell = f"{load['start'][0]:.1f} → {load['end'][0]:.1f}" if load else "–"
        w(
            f"| {profile} | {fmt(s['p50'])} | {fmt(s['p95'])} | {s['n']} | {r['unanswered']} |"
            f" {fmt(b['vad_end_lag'])} | {fmt(b['end_of_turn_delay'])} | {fmt(b['transcription_delay'])} |"
            f" {fmt(b['llm_ttft'])} | {fmt(b['tts_ttfb'])} | {fmt(b.get('downlink_transport'))} |"
            f" {fmt(b.get('outside_session'))} | {load_cell} |"
        )


def _server(w: Any, d: dict | None, commit: Any) -> None:
    if not d:
        return
    c = d["cold_start"]["summary"]
    n = len(d["cold_start"]["runs"])
    w("")
    w(f"Offline server, cold start ({commit(d)}, {_load_avg(d)}; {n} launches, p50 / max):")
    w("")
    w(
        "| launch → /healthz | RSS / PSS at rest | first transcription (2.2 s recording) | second |"
        " first speech, first byte / whole | second speech, first byte / whole |"
    )
    w("|---|---|---|---|---|---|")
    w(
        f"| {fmt(c['ready_s']['p50'])} / {fmt(c['ready_s']['max'])} |"
        f" {c['memory_at_rest_rss_mb']['p50']:.0f} / {c['memory_at_rest_pss_mb']['p50']:.0f} MB |"
        f" {fmt(c['first_transcription_s']['p50'])} / {fmt(c['first_transcription_s']['max'])} |"
        f" {fmt(c['second_transcription_s']['p50'])} |"
        f" {fmt(c['first_speech_ttfb_s']['p50'])} / {fmt(c['first_speech_s']['p50'])} |"
        f" {fmt(c['second_speech_ttfb_s']['p50'])} / {fmt(c['second_speech_s']['p50'])} |"
    )
    w("")
    w(f"Offline server under load (bots through LiveKit, {d['load']['turns_per_session']} turns each):")
    w("")
    w(
        "| N | offline server CPU % of a core | CPU s per conversation s, per session | PSS idle → peak |"
        " CPU s per turn | backend CPU % | machine busy % | bot v2v p50 / p95 | failed turns | load after |"
    )
    w("|---|---|---|---|---|---|---|---|---|---|")
    for r in d["load"]["rows"]:
        s, p = r["voice_to_voice"], r["offline_pss_mb"]
        per = r["offline_cpu_s_per_conversation_s_per_session"]
        w(
            f"| {r['sessions']} | {r['offline_cpu_pct']:.0f} | {per:.3f} |"
            f" {p['idle']:.0f} → {p['peak']:.0f} MB | {r.get('offline_cpu_s_per_turn', float('nan')):.2f} |"
            f" {r['cpu_pct']['backend']:.0f} | {r['machine_busy_pct']:.0f} |"
            f" {fmt(s['p50'])} / {fmt(s['p95'])} | {len(r['errors']) + r['unanswered']} |"
            f" {r['loadavg_after'][0]:.1f} |"
        )
