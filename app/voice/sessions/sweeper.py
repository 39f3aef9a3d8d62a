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

from app.voice.models import EndReason
from app.voice.sessions import store
from app.voice.sessions.ending import end_session
from app.voice.sessions.info import SessionInfo

log = logging.getLogger("app.voice.sweeper")


async def sweep_once() -> int:
    stale = await store.stale_live_sessions(timedelta(seconds=settings.VOICE_HEARTBEAT_TIMEOUT))
    for session in stale:
        log.warning("session.host_lost", extra={"session_id": str(session.id), "room": session.room})
        await end_session(SessionInfo.of(session), EndReason.ERROR)
    return len(stale)


async def run_forever() -> None:
    while True:
        try:
            await sweep_once()
        except Exception:
            log.exception("sweeper.failed")
        await asyncio.sleep(settings.VOICE_HEARTBEAT_INTERVAL)
