"""Who may open the transcript socket: the Origin check at the handshake (app.asgi).

Channels' AllowedHostsOriginValidator compares only the Origin's host with ALLOWED_HOSTS, so
a page on any port of an allowed host (http://127.0.0.1:6666) passes, and its socket carries
the visitor's cookie, since cookies are per host, not per port. Here the Host header must be
in ALLOWED_HOSTS, and the Origin must be, scheme, host and port, either one of the allowed
cross-origin origins (CORS_ALLOWED_ORIGINS: the Flask UI in development, none in production)
or the socket's own origin (the Host header's host and port; behind a TLS proxy the server
may see ws:// while the browser sends https://, so the port defaults by the Origin's scheme).

A handshake without an Origin header is allowed on purpose: browsers always send one on a
WebSocket, so none means a non-browser client (a script, a bench tool). It cannot ride a
visitor's cookie without holding it, and it still needs a visitor cookie of its own: the
consumer closes it 4401 otherwise.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from app.voice.ws.limits import Receive, Scope, Send

log = logging.getLogger("app.voice.ws")

DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    return next((value.decode("latin-1") for key, value in headers if key == name), None)


def origin_allowed(host: str | None, origin: str | None) -> bool:
    """Whether a handshake with this Host and Origin header may reach the consumer."""
    domain, _ = split_domain_port(host or "")
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    if origin is None or origin in settings.CORS_ALLOWED_ORIGINS:
        return True
    try:
        sent, served = urlsplit(origin), urlsplit(f"//{host}")
        default = DEFAULT_PORTS.get(sent.scheme)
        return (
            default is not None
            and sent.hostname is not None
            and (sent.hostname, sent.port or default) == (served.hostname, served.port or default)
        )
    except ValueError:  # a port that is not a number, or out of range
        return False


class OriginValidator:
    """ASGI wrapper in front of the WebSocket routes: a socket whose Host or Origin
    origin_allowed refuses never reaches them (nor reads its cookie)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        host, origin = _header(scope, b"host"), _header(scope, b"origin")
        if origin_allowed(host, origin):
            await self.app(scope, receive, send)
            return
        # These two headers only, never all of them: the cookie rides with them.
        log.info("ws.refused_origin", extra={"origin": origin, "host": host})
        # As Channels' WebsocketDenier: a close before accept, which the server answers 403.
        if (await receive()).get("type") == "websocket.connect":
            await send({"type": "websocket.close"})
