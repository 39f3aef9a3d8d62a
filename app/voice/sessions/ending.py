"""End a session once, from wherever its end is noticed: the agent stopping, the sweeper,
a DELETE whose host is gone, a start that failed. Lives below the agent code so the agent
can call it.

Every ending passes here, so this is where the session's LiveKit room is closed: after the
row is ended and the WebSocket clients are told (they learn why before their media drops),
the room is deleted on the server, which disconnects whoever is still in it, and since the
server does not create rooms on join, a token minted for it cannot enter it again.
"""

from __future__ import annotations

import asyncio
import logging

from app.voice.contract import messages
from app.voice.livekit_gateway import close_room
from app.voice.models import EndReason
from app.voice.sessions import store
from app.voice.sessions.groups import channel_layer, transcript_group
from app.voice.sessions.info import SessionInfo

log = logging.getLogger("app.voice.sessions")

# An ending never waits longer than this for LiveKit: a server that is down or stalled
# leaves its room to its own empty/departure timeouts, and the ending goes on.
ROOM_CLOSE_TIMEOUT = 5.0


async def end_session(info: SessionInfo, reason: EndReason) -> None:
    """Mark the session ended (once: the first caller wins), tell its WebSocket clients,
    then close its LiveKit room."""
    if not await store.mark_ended(info.session_id, reason):
        return
    log.info(
        "session.ended",
        extra={"session_id": info.session_id, "room": info.room, "reason": str(reason)},
    )
    try:
        await channel_layer().group_send(
            transcript_group(info.session_id),
            {"type": "session.ended", "message": messages.session_ended(str(reason))},
        )
    except Exception as exc:
        # Redis down: the row has ended, so a retry would stop at mark_ended; the room must
        # still be closed (it disconnects the page, which then learns the end from the API).
        log.warning("session.ended_notice_failed", extra={"session_id": info.session_id, "error": repr(exc)})
    await _close_room(info)


async def _close_room(info: SessionInfo) -> None:
    try:
        await asyncio.wait_for(close_room(info.livekit_room), ROOM_CLOSE_TIMEOUT)
    except Exception as exc:  # LiveKit down or refusing: the session has ended regardless
        log.warning(
            "room.close_failed",
            extra={"session_id": info.session_id, "room": info.room, "error": repr(exc)},
        )
