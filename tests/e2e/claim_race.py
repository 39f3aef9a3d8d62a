"""One side of a race for room names, run as a process of its own against the database in
DATABASE_URL: `python -m tests.e2e.claim_race NAME PREFIX COUNT`.

It connects, prints `ready` and waits for a line on stdin: the start, given to both sides at
once. Then it claims the rooms PREFIX-claim-0..COUNT-1 as the identity NAME (the token path),
starts a session in each of PREFIX-session-0..COUNT-1 (the session path), in the same order
as the other side, and prints what it won as one JSON line. Its sessions stay live until a
second line on stdin (both sides are done), so that a side that ran late still raced the
other's live sessions; then it ends them and exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import timedelta


async def race(name: str, prefix: str, count: int) -> None:
    from app.voice.models import EndReason
    from app.voice.sessions import store
    from app.voice.sessions.errors import RoomBusy, RoomTaken

    await store.get_session("00000000-0000-0000-0000-000000000000")  # connect before the start
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # the start line both sides share
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
    print(json.dumps({"name": name, **won}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # both sides are done
    for session in sessions:
        await store.mark_ended(session.id, EndReason.DELETED)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.settings")
    import django

    django.setup()
    name, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    asyncio.run(race(name, prefix, count))


if __name__ == "__main__":
    main()
