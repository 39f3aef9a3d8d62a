"""ASGI lifespan: load the VAD model before the first request, end live sessions at exit."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("app.voice.lifespan")


def with_lifespan(app: Any) -> Any:
    async def application(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)
        from app.voice.agent_host import get_host

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.to_thread(get_host().prewarm)
                log.info("server.started")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await get_host().shutdown()
                log.info("server.stopped")
                await send({"type": "lifespan.shutdown.complete"})
                return

    return application
