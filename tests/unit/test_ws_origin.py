"""The transcript socket's handshake (app.voice.ws.origins): the Host must be an allowed
host, and the Origin the Flask UI's exact origin (scheme, host and port) or the socket's own;
no Origin at all (a non-browser client) is let through to the visitor check. Refused
sockets are closed before accept (HTTP 403), as Channels does."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from channels.testing import WebsocketCommunicator

from app.asgi import application
from app.voice.contract import close_codes
from tests.unit.support import HOST, ORIGIN, cookie_header

pytestmark = pytest.mark.django_db(transaction=True)

FLASK = ORIGIN[1].decode()
SERVER = HOST[1].decode()  # the backend, another port of the Flask UI's host

# Each: the Host header, the Origin header.
ACCEPTED = [
    pytest.param(SERVER, FLASK, id="the-flask-origin"),
    pytest.param("testserver", "http://testserver", id="same-origin"),
    pytest.param(SERVER, f"http://{SERVER}", id="same-origin-with-a-port"),
    # Behind a TLS proxy: the browser says https, the Host has no port (443 by the Origin).
    pytest.param("testserver", "https://testserver", id="same-origin-https-host-without-port"),
    pytest.param("[::1]:8000", "http://[::1]:8000", id="same-origin-ipv6"),
]
REFUSED = [
    # Cookies are per host, not per port: any local page would carry the visitor's.
    pytest.param(SERVER, "http://127.0.0.1:6666", id="the-ui-host-on-another-port"),
    pytest.param(SERVER, "https://127.0.0.1:5000", id="the-ui-host-and-port-over-https"),
    pytest.param("testserver", "http://testserver:8080", id="the-socket-host-on-another-port"),
    pytest.param("testserver", "https://testserver:80", id="the-socket-host-https-on-port-80"),
    pytest.param("testserver", "http://evil.example", id="a-foreign-host"),
    pytest.param("testserver", "http://testserver.evil.example", id="a-host-extending-the-socket-host"),
    pytest.param("testserver", "null", id="an-opaque-origin"),
    pytest.param("testserver", "http://testserver:99999", id="a-port-out-of-range"),
    pytest.param("evil.example", "http://evil.example", id="a-host-not-in-allowed-hosts"),
    pytest.param("evil.example", FLASK, id="a-host-not-in-allowed-hosts-from-the-flask-origin"),
    pytest.param(None, FLASK, id="no-host-header"),
]


def headers(host: str | None, origin: str | None, *extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    named = [(b"host", host), (b"origin", origin)]
    return [(name, value.encode()) for name, value in named if value is not None] + list(extra)


Handshake = Callable[[list[tuple[bytes, bytes]]], Awaitable[tuple[WebsocketCommunicator, bool]]]


@pytest.fixture
async def handshake() -> AsyncIterator[Handshake]:
    """Open a socket with these headers: (it, whether it was accepted); all closed at teardown."""
    sockets: list[WebsocketCommunicator] = []

    async def connect(header_list: list[tuple[bytes, bytes]]) -> tuple[WebsocketCommunicator, bool]:
        # An unknown session: a socket past the handshake is closed by the consumer (4401, 4404).
        socket = WebsocketCommunicator(application, f"/ws/transcript/{uuid.uuid4()}", headers=header_list)
        sockets.append(socket)
        connected, _ = await socket.connect()
        return socket, connected

    yield connect
    for socket in sockets:
        await socket.disconnect()


async def next_close_code(socket: WebsocketCommunicator) -> int:
    output = await socket.receive_output(timeout=5)
    assert output["type"] == "websocket.close", output
    return output["code"]


@pytest.mark.parametrize(("host", "origin"), ACCEPTED)
async def test_the_flask_origin_and_the_socket_own_origin_are_accepted(
    api: httpx.AsyncClient, handshake: Handshake, host: str, origin: str
) -> None:
    socket, connected = await handshake(headers(host, origin, await cookie_header(api)))
    assert connected
    assert await next_close_code(socket) == close_codes.UNKNOWN_SESSION  # the consumer's answer


@pytest.mark.parametrize(("host", "origin"), REFUSED)
async def test_another_port_another_host_or_a_host_not_allowed_is_refused_at_the_handshake(
    api: httpx.AsyncClient, handshake: Handshake, host: str | None, origin: str
) -> None:
    _, connected = await handshake(headers(host, origin, await cookie_header(api)))
    assert not connected  # closed before accept: the server answers HTTP 403


async def test_no_origin_is_a_non_browser_client_let_through_to_the_visitor_check(
    api: httpx.AsyncClient, handshake: Handshake
) -> None:
    socket, connected = await handshake(headers(SERVER, None))
    assert connected
    assert await next_close_code(socket) == close_codes.NO_VISITOR  # it needs a cookie of its own
    socket, connected = await handshake(headers(SERVER, None, await cookie_header(api)))
    assert connected
    assert await next_close_code(socket) == close_codes.UNKNOWN_SESSION


async def test_a_refusal_is_logged_once_without_the_cookie(
    api: httpx.AsyncClient, handshake: Handshake, caplog: pytest.LogCaptureFixture
) -> None:
    cookie = await cookie_header(api)
    caplog.set_level(logging.INFO, logger="app.voice.ws")
    _, connected = await handshake(headers(SERVER, "http://127.0.0.1:6666", cookie))
    assert not connected
    refusals = [record for record in caplog.records if record.getMessage() == "ws.refused_origin"]
    assert len(refusals) == 1
    refusal = refusals[0]
    assert (refusal.levelno, refusal.origin, refusal.host) == (logging.INFO, "http://127.0.0.1:6666", SERVER)
    assert cookie[1].decode().partition("=")[2] not in str(vars(refusal))
