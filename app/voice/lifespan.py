"""ASGI lifespan: load the VAD model and start the stale-session sweeper before the first
request; end this process's live sessions at exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from app.voice.agent.host import get_host
from app.voice.sessions import sweeper

log = logging.getLogger("app.voice.lifespan")


def with_lifespan(app: Any) -> Any:
    async def application(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        sweeping: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.to_thread(get_host().prewarm)
                sweeping = asyncio.create_task(sweeper.run_forever(), name="session-sweeper")
                log.info("server.started")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if sweeping is not None:
                    sweeping.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sweeping  # gone before the process says it has stopped
                await get_host().shutdown()
                log.info("server.stopped")
                await send({"type": "lifespan.shutdown.complete"})
                return

    return application
