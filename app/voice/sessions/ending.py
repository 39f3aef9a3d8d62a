"""End a session once, from wherever its end is noticed: the agent stopping, the sweeper,
a DELETE whose host is gone. Lives below the agent code so the agent can call it."""

from __future__ import annotations

import logging

from app.voice.contract import messages
from app.voice.models import EndReason
from app.voice.sessions import store
from app.voice.sessions.groups import channel_layer, transcript_group
from app.voice.sessions.info import SessionInfo

log = logging.getLogger("app.voice.sessions")


async def end_session(info: SessionInfo, reason: EndReason) -> None:
    """Mark the session ended (once: the first caller wins) and tell its WebSocket clients."""
    if not await store.mark_ended(info.session_id, reason):
        return
    log.info(
        "session.ended",
        extra={"session_id": info.session_id, "room": info.room, "reason": str(reason)},
    )
    await channel_layer().group_send(
        transcript_group(info.session_id),
        {"type": "session.ended", "message": messages.session_ended(str(reason))},
    )
