"""A request body over a limit is refused (413) before the application reads any of it.

Django's ASGI handler reads the whole body (into a temporary file past 2.5 MB) before a view
can refuse it, and both WSGI adapters that can serve the Flask pages (uvicorn's and
asgiref's) read it all before calling Flask: a 400 MB POST went to disk before its 405. This
middleware answers first: at once when Content-Length is over the limit; for a body without
one (chunked), it reads at most limit + 1 bytes, then refuses or hands them on.

Plain ASGI, no Django: the API (app/asgi.py) and the pages (ui/asgi.py) both use it, and the
UI may not import app.voice.http (the import-linter contracts in pyproject.toml).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from app.voice.contract.messages import error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]  # Django's, asgiref's: each types its own


class BodyLimit:
    """Wraps an ASGI app: HTTP requests whose body is over `max_bytes` get a 413 in the
    project's error shape; everything else (other scopes, bodies within it) passes through."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None:
            # The server delivers no more than Content-Length: deciding on it is enough.
            if length > self.max_bytes:
                await self._refuse(send)
            else:
                await self.app(scope, receive, send)
            return
        # No (valid) Content-Length: read up to the limit here, then replay what came.
        chunks: list[Message] = []
        received = 0
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":  # the client went away
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            error_body("payload_too_large", f"The request body must be at most {self.max_bytes} bytes.")
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            # The rest of the body is never read: the connection cannot carry another request.
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else None
    return None
