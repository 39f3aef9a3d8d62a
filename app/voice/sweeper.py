"""Ends sessions whose host died: no heartbeat for VOICE_HEARTBEAT_TIMEOUT seconds.

Runs in every web process (ending is a conditional UPDATE, so they never both win).
Covers a killed agent worker, a crashed in-process host, and rows left live by a
backend that was killed rather than stopped.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from django.conf import settings

from app.voice import lifecycle, session_store
from app.voice.models import EndReason
from app.voice.providers import SessionInfo

log = logging.getLogger("app.voice.sweeper")


async def sweep_once() -> int:
    stale = await session_store.stale_live_sessions(timedelta(seconds=settings.VOICE_HEARTBEAT_TIMEOUT))
    for session in stale:
        log.warning("session.host_lost", extra={"session_id": str(session.id), "room": session.room})
        info = SessionInfo(session_id=str(session.id), room=session.room, identity=session.identity)
        await lifecycle.end_session(info, EndReason.ERROR)
    return len(stale)


async def run_forever() -> None:
    while True:
        try:
            await sweep_once()
        except Exception:
            log.exception("sweeper.failed")
        await asyncio.sleep(settings.VOICE_HEARTBEAT_INTERVAL)
