"""Session lifecycle: start an agent for a room, stop it from any process, end it once.

The state lives in the database (``session_store``); the running agent lives in
whichever process hosts it (``agent_host``). Stop goes through the channel layer,
so a DELETE served by one worker reaches an agent hosted by another.
"""

from __future__ import annotations

import asyncio
import logging

from channels.layers import get_channel_layer
from django.conf import settings

from app.voice import messages, session_store
from app.voice.groups import control_group, transcript_group
from app.voice.models import EndReason, VoiceSession
from app.voice.providers import SessionInfo

log = logging.getLogger("app.voice.sessions")


async def start_session(room: str, identity: str, client_ip: str | None = None) -> VoiceSession:
    """Create the session row and start its agent; raises RoomBusy, RoomTaken,
    TooManySessions (the bounds per identity and per client IP) or AgentStartFailed."""
    from app.voice.agent_host import get_host  # the host imports livekit-agents: load lazily

    session = await session_store.create_session(room, identity, client_ip)
    info = SessionInfo(session_id=str(session.id), room=room, identity=identity)
    log.info("session.starting", extra={"session_id": info.session_id, "room": room})
    try:
        await get_host().start(info)
    except Exception as exc:
        log.exception("session.start_failed", extra={"session_id": info.session_id, "room": room})
        await end_session(info, EndReason.ERROR)
        raise AgentStartFailed(str(exc)) from exc
    await session_store.mark_running(session.id)
    log.info("session.started", extra={"session_id": info.session_id, "room": room})
    return await session_store.get_session(session.id)


async def stop_session(session: VoiceSession, reason: EndReason = EndReason.DELETED) -> None:
    """Ask the hosting process to stop the agent and wait for it; end the row regardless."""
    if not session.is_live:
        return
    layer = get_channel_layer()
    reply_to = await layer.new_channel()
    await layer.group_send(
        control_group(session.id), {"type": "session.stop", "reason": reason, "reply_to": reply_to}
    )
    try:
        await asyncio.wait_for(layer.receive(reply_to), settings.VOICE_STOP_TIMEOUT)
    except TimeoutError:
        # No host answered (it crashed or never started): the row must not stay live.
        log.warning("session.stop_unanswered", extra={"session_id": str(session.id)})
    info = SessionInfo(session_id=str(session.id), room=session.room, identity=session.identity)
    await end_session(info, reason)


async def end_session(info: SessionInfo, reason: EndReason) -> None:
    """Mark the session ended (once) and tell its WebSocket clients."""
    if not await session_store.mark_ended(info.session_id, reason):
        return
    log.info(
        "session.ended",
        extra={"session_id": info.session_id, "room": info.room, "reason": str(reason)},
    )
    await get_channel_layer().group_send(
        transcript_group(info.session_id),
        {"type": "session.ended", "message": messages.session_ended(str(reason))},
    )


class AgentStartFailed(Exception):
    pass
