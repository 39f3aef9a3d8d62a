"""Security headers on every response of the pages (create_app registers `add_headers`).

The pages load only their own scripts, styles and the vendored livekit-client module, so the
Content-Security-Policy can be strict: the one inline script, chat.html's import map, carries
a per-request nonce. No style attribute appears in the templates and the scripts set styles
through the CSSOM only (`element.style`), which CSP allows, so style-src needs no
'unsafe-inline'. Played audio is a MediaStream in `srcObject`, which CSP does not check: no
blob:, data: or mediastream: source is needed. No other site may frame the pages: one did,
asking for the microphone.
"""

from __future__ import annotations

import secrets

from flask import current_app, g
from werkzeug.wrappers import Response


def csp_nonce() -> str:
    """This request's nonce for inline scripts (templates: `nonce="{{ csp_nonce() }}"`)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    nonce: str = g.csp_nonce
    return nonce


def _websocket_origin(http_url: str) -> str:
    """ws://host for http://host, wss://host for https://host."""
    return "ws" + http_url.removeprefix("http") if http_url.startswith("http") else ""


def content_security_policy() -> str:
    backend = current_app.config["BACKEND_URL"]  # empty: same origin, which 'self' covers
    connect = ["'self'", backend, _websocket_origin(backend)]
    # The LiveKit server's URL (a WebSocket, and its HTTP form for the client's connection
    # checks) reaches the page only at run time, in GET /token's answer, and may be any host:
    # connect-src has to allow those schemes. Scripts, frames, forms and objects stay locked.
    connect += ["http:", "https:", "ws:", "wss:"]
    directives = {
        "default-src": "'self'",
        "script-src": f"'self' 'nonce-{csp_nonce()}'",
        "style-src": "'self'",
        "img-src": "'self'",
        "media-src": "'self'",
        "connect-src": " ".join(source for source in connect if source),
        "object-src": "'none'",
        "base-uri": "'none'",
        "frame-ancestors": "'none'",
        "form-action": "'self'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def add_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = content_security_policy()
    response.headers["X-Frame-Options"] = "DENY"  # frame-ancestors, for browsers without CSP 2
    response.headers["X-Content-Type-Options"] = "nosniff"
    # The URLs carry the room and name (/chat?room=...&identity=...): never to other sites.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "microphone=(self), camera=(), geolocation=()"
    return response
