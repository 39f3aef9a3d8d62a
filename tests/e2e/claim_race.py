"""One side of a race for room names, run as a process of its own against the database in
DATABASE_URL: `python -m tests.e2e.claim_race NAME START_AT PREFIX COUNT`.

At the wall-clock time START_AT (both sides are given the same one) it claims the rooms
PREFIX-claim-0..COUNT-1 as the identity NAME (the token path), then starts a session in each
of PREFIX-session-0..COUNT-1 (the session path), in the same order as the other side, and
prints what it won as one JSON line. Sessions it won are ended again before it exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import timedelta


async def race(name: str, start_at: float, prefix: str, count: int) -> dict[str, list[str]]:
    from app.voice.models import EndReason
    from app.voice.sessions import store
    from app.voice.sessions.errors import RoomBusy, RoomTaken

    await store.get_session("00000000-0000-0000-0000-000000000000")  # connect before the start
    await asyncio.sleep(max(0.0, start_at - time.time()))  # the start line both sides share
    won: dict[str, list[str]] = {"claims": [], "sessions": [], "refused": []}
    for n in range(count):
        room = f"{prefix}-claim-{n}"
        try:
            await store.claim_room(room, name, timedelta(minutes=5))
            won["claims"].append(room)
        except (RoomTaken, RoomBusy) as exc:
            won["refused"].append(f"{room}: {type(exc).__name__}")
    sessions = []
    for n in range(count):
        room = f"{prefix}-session-{n}"
        try:  # an identity of its own per room: the per-identity bound is not what races here
            sessions.append(await store.create_session(room, f"{name}-{n}"))
            won["sessions"].append(room)
        except (RoomTaken, RoomBusy) as exc:
            won["refused"].append(f"{room}: {type(exc).__name__}")
    for session in sessions:
        await store.mark_ended(session.id, EndReason.DELETED)
    return won


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.settings")
    import django

    django.setup()
    name, start_at, prefix, count = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    won = asyncio.run(race(name, start_at, prefix, count))
    print(json.dumps({"name": name, **won}), flush=True)


if __name__ == "__main__":
    main()
