"""python -m bench COMMAND [options]; each command is described in bench/README.md.

Latency (ours against a bare livekit-agents session where both can run):
  latency            server-side, in process, a fake LiveKit room: ours vs bare
  live               server-side through the real stack and LiveKit, a bot: ours vs bare
  browser            Chromium's fake microphone on /chat of the real stack
  sweep              latency settings on bare sessions
  endpointing        false end-of-turn rate against end-of-turn delay (natural-pause set)
Load and cost (the real stack under load, bench.live.real_stack):
  capacity           N concurrent bot sessions, agents in the web process
  capacity-dispatch  the same, production shape: dispatched agent workers on a core of their own
  api                GET /token and POST+DELETE /session throughput
  profile            one in-process session's CPU share, and where it goes (--py-spy)
  ws-idle BACKEND_URL [-n N] [--pid PID]   idle transcript sockets against a running backend
  soak [--cycles N] [--seed S]             the fault soak on the production shape (./dev.sh soak)
The offline set (Whisper, Piper; no key):
  wer                word error rate on real recordings: HTTP, realtime socket, browser
  offline-server     the offline server's cold start, CPU per session and memory
All of it, and the results:
  all                every part above but capacity-dispatch, profile, endpointing, ws-idle, soak
  report [offline]   the Markdown tables of bench/README.md and the plots, from bench/results/
"""

from __future__ import annotations

import argparse
import signal
import sys
from importlib import import_module

# Commands with options of their own: the rest of the command line is theirs.
OWN_OPTIONS = {"report": "bench.report", "soak": "bench.soak", "ws-idle": "bench.ws_idle"}
COMMANDS = (
    "latency",
    "live",
    "browser",
    "sweep",
    "endpointing",
    "capacity",
    "capacity-dispatch",
    "api",
    "profile",
    "wer",
    "offline-server",
    "all",
    *OWN_OPTIONS,
)


def main(argv: list[str] | None = None) -> int:
    # SIGTERM unwinds like Ctrl-C, so the stacks' context managers stop what they started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in OWN_OPTIONS:
        return int(import_module(OWN_OPTIONS[argv[0]]).main(argv[1:]) or 0)
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=COMMANDS, metavar="COMMAND")
    parser.add_argument("--quick", action="store_true", help="a smoke run (< ~60 s per part), few turns")
    parser.add_argument("--turns", type=int, default=None)
    parser.add_argument("--profiles", default="zero,openai", help="latency, live, browser, sweep")
    parser.add_argument("--py-spy", action="store_true", help="profile: sample the session with py-spy")
    parser.add_argument(
        "--providers",
        default="fake",
        choices=("fake", "offline"),
        help="capacity-dispatch: fake (openai profile), or offline (the openai set on the offline server)",
    )
    parser.add_argument("--workers", type=int, default=2, help="capacity-dispatch: agent worker processes")
    parser.add_argument("--out", default=None, help="result file name (bench/results/<out>.json)")
    if not argv:
        parser.print_help()
        return 2
    args = parser.parse_args(argv)
    profiles = args.profiles.split(",")
    turns = args.turns or (3 if args.quick else 20)
    suffix = "-quick" if args.quick else ""

    if args.what == "all":
        # Smoke (--quick) or full run of every part, one after the other.
        for part in ("latency", "live", "browser", "api", "sweep", "capacity"):
            main([part, *(["--quick"] if args.quick else []), "--profiles", args.profiles])
        for part in ("wer", "offline-server"):  # the offline set's own
            main([part, *(["--quick"] if args.quick else [])])
    elif args.what == "latency":
        from bench import latency_offline

        latency_offline.main(turns, profiles, args.out or "latency_offline" + suffix)
    elif args.what == "live":
        from bench import live

        live.latency_main(turns, profiles, args.out or "latency_live" + suffix)
    elif args.what == "browser":
        from bench import browser, common

        offline = all(p in common.OFFLINE_PROFILES for p in profiles)
        name = "latency_browser_offline" if offline else "latency_browser"
        browser.main(turns, profiles, args.out or name + suffix)
    elif args.what == "capacity":
        from bench import capacity

        steps = [1, 2] if args.quick else [1, 2, 3, 4, 6, 8, 10, 12, 16]
        capacity.main("openai", steps, args.turns or (3 if args.quick else 5), args.out or "capacity" + suffix)
    elif args.what == "capacity-dispatch":
        from bench import capacity

        steps = [1, 2] if args.quick else [1, 2, 4, 6, 8, 10, 12, 15, 18, 21, 25]
        capacity.main(
            "openai" if args.providers == "fake" else "offline-preemptive",  # the offline stacks' default
            steps,
            args.turns or (3 if args.quick else 5),
            args.out or f"capacity_dispatch_{args.providers}" + suffix,
            workers=args.workers,
        )
    elif args.what == "wer":
        from bench import wer

        wer.main(args.quick, args.out or "wer" + suffix)
    elif args.what == "offline-server":
        from bench import offline_server

        offline_server.main(args.quick, args.out or "offline_server" + suffix)
    elif args.what == "api":
        from bench import api

        api.main(args.quick, args.out or "api" + suffix)
    elif args.what == "endpointing":
        from bench import endpointing

        endpointing.main(args.out or "endpointing" + suffix, args.quick)
    elif args.what == "profile":
        from bench import profile_session

        profile_session.main(args.turns or (3 if args.quick else 10), args.out or "profile" + suffix, args.py_spy)
    elif args.what == "sweep":
        from bench import sweep

        for profile in profiles:
            name = "sweep" if profile == "openai" else f"sweep_{profile}"
            sweep.main(args.turns or (3 if args.quick else 8), profile, name + suffix, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
