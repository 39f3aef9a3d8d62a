"""Session services: start an agent for a room, stop it from any process.

The state lives in the database (``sessions.store``); the running agent lives in
whichever process hosts it (``agent.host``). Stop goes through the channel layer,
so a DELETE served by one worker reaches an agent hosted by another. Ending a
session (``sessions.ending``) sits below the agent code, which calls it itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging

from django.conf import settings

from app.voice.agent.host import get_host
from app.voice.livekit_gateway import get_gateway
from app.voice.models import EndReason, VoiceSession
from app.voice.sessions import store
from app.voice.sessions.ending import end_session
from app.voice.sessions.errors import AgentStartFailed
from app.voice.sessions.groups import channel_layer, control_group
from app.voice.sessions.info import SessionInfo

log = logging.getLogger("app.voice.sessions")


# Starts whose caller has gone: the loop keeps only weak references to tasks.
_orphaned_starts: set[asyncio.Task[VoiceSession]] = set()


async def start_session(
    room: str, identity: str, client_ip: str | None = None, *, visitor: str
) -> VoiceSession:
    """Create the session row, owned by `visitor`, and start its agent; raises RoomBusy,
    RoomTaken, IdentityTaken, TooManySessions (the bounds per identity and per client IP)
    or AgentStartFailed. A caller cancelled meanwhile (the client went away, and Django
    cancels its request) does not cancel the start: it runs to its end, so the session is
    running or ended, never left half-started."""
    # A fresh context, as the host gives its runs: the request's database thread goes with it.
    start = asyncio.create_task(
        _start_session(room, identity, client_ip, visitor=visitor), context=contextvars.Context()
    )
    try:
        return await asyncio.shield(start)
    except asyncio.CancelledError:
        _orphaned_starts.add(start)
        start.add_done_callback(_forget_start)
        raise


def _forget_start(start: asyncio.Task[VoiceSession]) -> None:
    _orphaned_starts.discard(start)
    if not start.cancelled():
        start.exception()  # retrieved: a failed start was logged and ended by the start itself


async def _start_session(room: str, identity: str, client_ip: str | None, *, visitor: str) -> VoiceSession:
    session = await store.create_session(room, identity, client_ip, visitor=visitor)
    info = SessionInfo.of(session)
    log.info("session.starting", extra={"session_id": info.session_id, "room": room})
    try:
        # LiveKit does not create rooms on join: the room exists from here (or from the
        # token minted for it) until the session ends (sessions.ending deletes it).
        await get_gateway().create_room(info.livekit_room)
        await get_host().start(info)
    except Exception as exc:
        log.exception("session.start_failed", extra={"session_id": info.session_id, "room": room})
        await end_session(info, EndReason.ERROR)
        raise AgentStartFailed(str(exc)) from exc
    await store.mark_running(session.id)
    log.info("session.started", extra={"session_id": info.session_id, "room": room})
    started = await store.get_session(session.id)
    assert started is not None  # rows are never deleted
    return started


async def stop_session(session: VoiceSession, reason: EndReason = EndReason.DELETED) -> None:
    """Ask the hosting process to stop the agent and wait for it; end the row regardless."""
    if not session.is_live:
        return
    layer = channel_layer()
    reply_to = await layer.new_channel()
    await layer.group_send(
        control_group(session.id), {"type": "session.stop", "reason": reason, "reply_to": reply_to}
    )
    # The host answers every request that reaches it until its run has ended and left the
    # group, even one that came while it was ending on its own; a request sent after that
    # reached nobody, but then the row has ended already: nothing to wait for.
    current = await store.get_session(session.id)
    if current is not None and current.is_live:
        try:
            await asyncio.wait_for(layer.receive(reply_to), settings.VOICE_STOP_TIMEOUT)
        except TimeoutError:
            # No host answered (it crashed or never started): the row must not stay live.
            log.warning("session.stop_unanswered", extra={"session_id": str(session.id)})
    await end_session(SessionInfo.of(session), reason)
