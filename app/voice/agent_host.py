"""In-process agent host: runs each session's agent on this ASGI process's event loop.

Keeps the runs it owns so that shutdown can end them all cleanly.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging

from app.voice.agent_runner import AgentRun
from app.voice.models import EndReason
from app.voice.providers import SessionInfo, shared_vad

log = logging.getLogger("app.voice.host")


class InProcessHost:
    def __init__(self) -> None:
        self.runs: dict[str, AgentRun] = {}
        self._watchers: set[asyncio.Task[None]] = set()

    async def start(self, info: SessionInfo) -> None:
        run = AgentRun(info)
        # A fresh context: the caller may be a request served through async_to_sync, whose
        # thread executor dies with the request; the session's tasks must not inherit it.
        await asyncio.create_task(run.start(), context=contextvars.Context())
        self.runs[info.session_id] = run
        # The task reference lives in a set: the loop itself only keeps weak ones.
        task = asyncio.create_task(self._forget_when_ended(run))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _forget_when_ended(self, run: AgentRun) -> None:
        await run.ended.wait()
        self.runs.pop(run.info.session_id, None)

    async def shutdown(self) -> None:
        """End every live session (reason: shutdown) before the process exits."""
        runs = list(self.runs.values())
        if runs:
            log.info("host.shutdown", extra={"sessions": len(runs)})
        await asyncio.gather(*(run.stop(EndReason.SHUTDOWN) for run in runs), return_exceptions=True)

    def prewarm(self) -> None:
        shared_vad()


@functools.cache
def get_host() -> InProcessHost:
    return InProcessHost()
