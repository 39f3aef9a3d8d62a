"""python -m bench {latency,live,browser,capacity,capacity-dispatch,api,sweep,profile,endpointing,wer,
offline-server,all} [--quick]: each command is described in bench/README.md."""

from __future__ import annotations

import argparse
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    # SIGTERM unwinds like Ctrl-C, so the stacks' context managers stop what they started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "what",
        choices=[
            "latency", "live", "browser", "capacity", "capacity-dispatch", "api", "sweep",
            "profile", "endpointing", "wer", "offline-server", "all",
        ],
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run (< ~60 s per part), few turns")
    parser.add_argument("--turns", type=int, default=None)
    parser.add_argument("--profiles", default="zero,openai")
    parser.add_argument("--py-spy", action="store_true", help="profile: sample the session with py-spy")
    parser.add_argument(
        "--providers", default="fake", help="capacity-dispatch: fake, or offline (the openai set on the offline server)"
    )
    parser.add_argument("--workers", type=int, default=2, help="capacity-dispatch: agent worker processes")
    parser.add_argument("--out", default=None, help="result file name (bench/results/<out>.json)")
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
        return 0
    if args.what in ("latency",):
        from bench import latency_offline

        latency_offline.main(turns, profiles, "latency_offline" + suffix)
    if args.what in ("live",):
        from bench import live

        live.latency_main(turns, profiles, "latency_live" + suffix)
    if args.what in ("browser",):
        from bench import browser, common

        offline = all(p in common.OFFLINE_PROFILES for p in profiles)
        name = "latency_browser_offline" if offline else "latency_browser"
        browser.main(turns, profiles, args.out or name + suffix)
    if args.what in ("capacity",):
        from bench import capacity

        steps = [1, 2] if args.quick else [1, 2, 3, 4, 6, 8, 10, 12, 16]
        capacity.main("openai", steps, args.turns or (3 if args.quick else 5), "capacity" + suffix)
    if args.what == "capacity-dispatch":
        # The production shape: dispatched agent workers pinned to their own core.
        from bench import capacity

        steps = [1, 2] if args.quick else [1, 2, 4, 6, 8, 10, 12, 15, 18, 21, 25]
        capacity.main(
            "openai",
            steps,
            args.turns or (3 if args.quick else 5),
            args.out or f"capacity_dispatch_{args.providers}" + suffix,
            workers=args.workers,
            providers=args.providers,
        )
    if args.what == "wer":
        from bench import wer

        wer.main(args.quick, args.out or "wer" + suffix)
    if args.what == "offline-server":
        from bench import offline_server

        offline_server.main(args.quick, args.out or "offline_server" + suffix)
    if args.what in ("api",):
        from bench import api

        api.main(args.quick, "api" + suffix)
    if args.what == "endpointing":
        from bench import endpointing

        endpointing.main(args.out or "endpointing" + suffix, args.quick)
    if args.what == "profile":
        from bench import profile_session

        profile_session.main(args.turns or (3 if args.quick else 10), args.out or "profile" + suffix, args.py_spy)
    if args.what in ("sweep",):
        from bench import sweep

        for profile in profiles:
            name = "sweep" if profile == "openai" else f"sweep_{profile}"
            sweep.main(args.turns or (3 if args.quick else 8), profile, name + suffix, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
