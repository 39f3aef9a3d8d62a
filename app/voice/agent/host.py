"""Where a session's agent runs, chosen by ``settings.VOICE_AGENT_HOST``.

- ``inprocess`` (one machine): the agent runs on this ASGI process's event loop.
- ``dispatch`` (production): LiveKit dispatches the session to an agent worker
  (``python -m app.voice.agent.worker start``), which reports back on the channel layer.

Either way the session code is the same ``AgentRun``; stop always travels over the
channel layer (see app.voice.lifecycle.stop_session), so it reaches the agent wherever it runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from typing import Protocol

from django.conf import settings
from livekit.agents.utils import http_context

from app.voice.agent.providers import prewarm_providers
from app.voice.agent.runner import AgentRun
from app.voice.livekit_gateway import get_gateway
from app.voice.models import EndReason
from app.voice.sessions.groups import channel_layer
from app.voice.sessions.info import SessionInfo

log = logging.getLogger("app.voice.host")


class AgentHost(Protocol):
    async def start(self, info: SessionInfo) -> None: ...

    async def shutdown(self) -> None: ...

    def prewarm(self) -> None: ...


class InProcessHost:
    def __init__(self) -> None:
        self.runs: dict[str, AgentRun] = {}  # started and not yet ended
        # Every run from its start until its stop is over, starting ones included.
        self._hosting: dict[asyncio.Task[None], AgentRun] = {}

    async def start(self, info: SessionInfo) -> None:
        run = AgentRun(info)
        started = asyncio.get_running_loop().create_future()
        # A fresh context: the caller may be a request, whose context carries Django's
        # per-request thread for database calls; that thread's executor is shut down when the
        # request ends, and the session's tasks must not inherit it.
        task = asyncio.create_task(self._host(run, started), context=contextvars.Context())
        # The task reference lives here: the loop itself only keeps weak ones.
        self._hosting[task] = run
        task.add_done_callback(self._hosting.pop)
        await started

    async def _host(self, run: AgentRun, started: asyncio.Future[None]) -> None:
        """The run's whole life, inside an HTTP session of its own: the plugins take theirs
        (the realtime STT's socket) from the context, which a worker's job provides and
        this process must."""
        async with http_context.open():
            try:
                await run.start()
            except BaseException as exc:
                if not started.done():  # its caller may have gone (a cancelled request)
                    started.set_exception(exc)
                return
            self.runs[run.info.session_id] = run
            if not started.done():
                started.set_result(None)
            await run.ended.wait()
            self.runs.pop(run.info.session_id, None)
            await run.stop(EndReason.SHUTDOWN)  # the stop under way, to its last reply (its reason stands)

    async def shutdown(self) -> None:
        """End every session (reason: shutdown), the ones still starting too (their stop
        waits for the start), and wait until each has let go of everything before the
        process exits."""
        hosting = dict(self._hosting)
        if hosting:
            log.info("host.shutdown", extra={"sessions": len(hosting)})
        await asyncio.gather(*(run.stop(EndReason.SHUTDOWN) for run in hosting.values()), return_exceptions=True)
        await asyncio.gather(*hosting, return_exceptions=True)

    def prewarm(self) -> None:
        prewarm_providers()


# How long to wait for a worker to answer one dispatch before dispatching again.
REDISPATCH_INTERVAL = 3.0


class DispatchHost:
    """Agents live in worker processes registered with LiveKit; this process only asks."""

    async def start(self, info: SessionInfo) -> None:
        layer = channel_layer()
        reply_to = await layer.new_channel()
        metadata = json.dumps({"session_id": info.session_id, "reply_to": reply_to})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.VOICE_START_TIMEOUT
        while True:
            # LiveKit drops a dispatch that finds every worker busy; ask again until one
            # answers (a worker claims the session, so a repeat never starts two agents).
            await get_gateway().dispatch_agent(
                room=info.livekit_room, agent_name=settings.VOICE_AGENT_NAME, metadata=metadata
            )
            wait = min(REDISPATCH_INTERVAL, deadline - loop.time())
            try:
                reply = await asyncio.wait_for(layer.receive(reply_to), wait)
                break
            except TimeoutError:
                if loop.time() >= deadline:
                    raise RuntimeError("no agent worker took the session (are workers running?)") from None
        if reply.get("type") != "session.started":
            raise RuntimeError(f"the agent worker could not start: {reply.get('error', 'unknown')}")

    async def shutdown(self) -> None:
        """Nothing to do here: each worker ends its own sessions when it stops."""

    def prewarm(self) -> None:
        """The models are loaded by the workers, not by the web process."""


HOSTS: dict[str, AgentHost] = {"inprocess": InProcessHost(), "dispatch": DispatchHost()}


def get_host() -> AgentHost:
    return HOSTS[settings.VOICE_AGENT_HOST]
