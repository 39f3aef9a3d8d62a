"""Bounds on the transcript socket, so that no client can make a web process crash or grow.

The socket is server-to-client: a client may send a small ``{"type": "ping"}`` now and then,
nothing else. Each bound closes the socket with its own code (app.voice.contract.close_codes):

- frames larger than ``VOICE_WS_MAX_FRAME_BYTES``: 1009. uvicorn's ``--ws-max-size`` refuses
  larger ones before reading them (devtools/stack.py, docs/production.md); the consumer checks
  again, whatever server runs it.
- binary frames: 1003.
- more than ``VOICE_WS_FRAME_RATE`` frames a second, beyond a burst of
  ``VOICE_WS_FRAME_BURST`` (a token bucket per socket): 1008.
- more than ``VOICE_WS_MAX_SOCKETS_PER_SESSION`` open sockets on one session, or
  ``VOICE_WS_MAX_SOCKETS`` on this process: the new socket is refused with 1013.
- invalid UTF-8 never reaches the app: the server closes with 1007. Idle peers that stop
  answering the server's pings (``--ws-ping-interval``/``--ws-ping-timeout``) are dropped.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.conf import settings

from app.voice.contract import close_codes
from app.voice.sessions import store
from app.voice.sessions.rate import TokenBucket

log = logging.getLogger("app.voice.ws")


def frame_verdict(budget: TokenBucket, text_data: str | None, bytes_data: bytes | None) -> int | None:
    """The close code a client frame earns, or None when it may be read."""
    if not budget.take():
        return close_codes.TOO_MANY_FRAMES
    if text_data is None or bytes_data is not None:
        return close_codes.BINARY_FRAME
    # A str holds at most 4 bytes per character: only a long one needs encoding to measure.
    limit = settings.VOICE_WS_MAX_FRAME_BYTES
    if len(text_data) > limit or (4 * len(text_data) > limit and len(text_data.encode("utf-8", "replace")) > limit):
        return close_codes.FRAME_TOO_LARGE
    return None


Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


class SocketLimit:
    """ASGI wrapper counting this process's open transcript sockets, in all and per session:
    a socket over either bound is accepted only to be closed with TOO_MANY_SOCKETS (a close
    code needs an open socket), and never reaches the consumer."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.total = 0
        self.per_session: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = str(scope.get("url_route", {}).get("kwargs", {}).get("session_id", ""))
        # One session, however its id is spelled (case, hyphens, braces, urn:uuid:), is one key.
        session_id = store.parse_session_id(raw)
        key = str(session_id) if session_id is not None else raw[:64]
        if (
            self.total >= settings.VOICE_WS_MAX_SOCKETS
            or self.per_session[key] >= settings.VOICE_WS_MAX_SOCKETS_PER_SESSION
        ):
            log.warning(
                "ws.refused_too_many_sockets",
                extra={"sockets": self.total, "on_session": self.per_session[key]},
            )
            return await self._refuse(receive, send)
        self.total += 1
        self.per_session[key] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.total -= 1
            self.per_session[key] -= 1
            if self.per_session[key] <= 0:
                del self.per_session[key]

    @staticmethod
    async def _refuse(receive: Receive, send: Send) -> None:
        message = await receive()
        if message.get("type") != "websocket.connect":
            return  # the client went away before the handshake finished
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": close_codes.TOO_MANY_SOCKETS})
