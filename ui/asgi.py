"""ASGI entry point of the pages: `uvicorn ui.asgi:application` (production) and `python -m ui`.

Flask is a WSGI app, and every WSGI adapter reads a request's whole body before calling it
(uvicorn's `--interface wsgi` into memory, asgiref's into a temporary file): the body limit
in front refuses a large one first, as the API's does (app/body_limit.py).
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from asgiref.wsgi import WsgiToAsgi

from app.body_limit import BodyLimit
from ui import MAX_BODY_BYTES, create_app

flask_app = WsgiToAsgi(create_app())  # type: ignore[no-untyped-call]


async def pages(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":  # nothing to start or stop
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    # Each request in a fresh context. WsgiToAsgi sends from its thread through async_to_sync,
    # and a request task that uvicorn creates meanwhile inherits that request's executor, then
    # fails once it is gone ("CurrentThreadExecutor already quit or is broken", asgiref issue
    # #491): half the requests of concurrent keep-alive connections were 500s.
    await asyncio.create_task(serve(scope, receive, send), context=contextvars.Context())


async def serve(scope: Any, receive: Any, send: Any) -> None:
    # A thread of its own for each request, as Django's ASGI handler gives its views:
    # otherwise WsgiToAsgi runs every request on one shared thread, one after the other.
    async with ThreadSensitiveContext():
        await flask_app(scope, receive, send)


application = BodyLimit(pages, max_bytes=MAX_BODY_BYTES)
