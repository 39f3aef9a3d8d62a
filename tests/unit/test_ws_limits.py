"""The transcript socket's abuse bounds (app.voice.ws.limits): binary frames close with 1003,
frames over VOICE_WS_MAX_FRAME_BYTES with 1009, floods with 1008, sockets over the per-session
or per-process bound with 1013; each closes only the offending socket. Through the real ASGI
application (channels' WebsocketCommunicator), plus one real uvicorn server with the stack's
WebSocket flags for what only the server itself checks (invalid UTF-8: 1007; --ws-max-size).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from django.test import override_settings

from app.voice.contract import close_codes
from app.voice.models import VoiceSession
from app.voice.sessions import store as session_store
from app.voice.sessions.rate import TokenBucket
from app.voice.ws.limits import SocketLimit
from app.voice.ws.routing import websocket_urlpatterns
from devtools.stack import ManagedProcess, backend_command, free_port, wait_for_http
from tests.unit.support import ORIGIN, cookie_header, visitor_of

pytestmark = pytest.mark.django_db(transaction=True)

# The one SocketLimit of the transcript route: it counts this process's open sockets.
SOCKET_LIMIT = next(p.callback for p in websocket_urlpatterns if isinstance(p.callback, SocketLimit))


@pytest.fixture(autouse=True)
def every_socket_slot_is_freed() -> Iterator[None]:
    """Each test starts and ends (after open_socket has closed its sockets) with no slot taken."""
    assert (SOCKET_LIMIT.total, dict(SOCKET_LIMIT.per_session)) == (0, {})
    yield
    assert (SOCKET_LIMIT.total, dict(SOCKET_LIMIT.per_session)) == (0, {})


async def live_session(owner: httpx.AsyncClient, room: str = "room-1", identity: str = "alice") -> VoiceSession:
    """A running session (no agent) owned by the visitor `owner`."""
    session = await session_store.create_session(room, identity, visitor=await visitor_of(owner))
    await session_store.mark_running(session.id)
    return session


async def closed_with(socket: WebsocketCommunicator) -> int:
    output = await socket.receive_output(timeout=5)
    assert output["type"] == "websocket.close", output
    return output["code"]


async def answers_ping(socket: WebsocketCommunicator) -> bool:
    await socket.send_json_to({"type": "ping"})
    return await socket.receive_json_from(timeout=5) == {"type": "pong"}


# ---- frames ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"bytes": b'{"type": "ping"}'}, close_codes.BINARY_FRAME),
        ({"text": "x" * 1_000_000}, close_codes.FRAME_TOO_LARGE),
    ],
    ids=["binary", "1MB-text"],
)
async def test_a_binary_or_1_mb_frame_closes_its_socket_only(api, open_socket, frame: dict, code: int) -> None:
    session = await live_session(api)
    bystander = await open_socket(f"/ws/transcript/{session.id}")
    socket = await open_socket(f"/ws/transcript/{session.id}")
    await socket.send_input({"type": "websocket.receive", **frame})
    assert await closed_with(socket) == code
    # The other socket of the session, and a new one, are served as before.
    assert await answers_ping(bystander)
    assert await answers_ping(await open_socket(f"/ws/transcript/{session.id}"))


async def test_a_flood_of_1000_pings_gets_the_burst_answered_then_closes_with_1008(api, open_socket) -> None:
    session = await live_session(api)
    socket = await open_socket(f"/ws/transcript/{session.id}")
    started = time.monotonic()
    for _ in range(1000):  # as fast as the client can: all queued before the first answer is read
        await socket.send_json_to({"type": "ping"})
    pongs = 0
    while (output := await socket.receive_output(timeout=5))["type"] == "websocket.send":
        assert json.loads(output["text"]) == {"type": "pong"}
        pongs += 1
    elapsed = time.monotonic() - started
    assert output == {"type": "websocket.close", "code": close_codes.TOO_MANY_FRAMES}
    # The burst, plus what the bucket refilled while the flood was being read (~0 here).
    burst, rate = settings.VOICE_WS_FRAME_BURST, settings.VOICE_WS_FRAME_RATE
    assert burst <= pongs <= burst + rate * elapsed, (pongs, elapsed)
    # Once the client has gone, every frame of the flood has been read: none got an answer
    # after the close.
    await socket.disconnect(timeout=5)
    assert socket.output_queue.empty()
    # The process is fine: a new socket on the same session is served.
    assert await answers_ping(await open_socket(f"/ws/transcript/{session.id}"))


class Clock:
    """A monotonic clock the test moves by hand (binary-exact steps: no rounding)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def takes(budget: TokenBucket, count: int) -> list[bool]:
    return [budget.take() for _ in range(count)]


def test_frame_budget_allows_a_burst_at_once_then_refuses() -> None:
    budget = TokenBucket(rate=4.0, burst=20, clock=Clock())
    assert takes(budget, 21) == [True] * 20 + [False]
    assert takes(budget, 100) == [False] * 100  # no time passed: refusals do not refill it


def test_frame_budget_refills_at_its_rate() -> None:
    clock = Clock()
    budget = TokenBucket(rate=4.0, burst=3, clock=clock)  # one frame every 0.25 s
    assert takes(budget, 4) == [True, True, True, False]
    clock.now += 0.125  # half a frame
    assert takes(budget, 1) == [False]
    clock.now += 0.125  # a whole frame in all, the refused take notwithstanding
    assert takes(budget, 2) == [True, False]
    clock.now += 0.5  # two frames
    assert takes(budget, 3) == [True, True, False]


def test_frame_budget_never_holds_more_than_its_burst() -> None:
    clock = Clock()
    budget = TokenBucket(rate=4.0, burst=3, clock=clock)
    clock.now += 3600.0  # an hour idle
    assert takes(budget, 4) == [True, True, True, False]


# ---- open sockets ---------------------------------------------------------------------------


async def test_a_session_over_its_socket_bound_refuses_the_extra_socket_with_1013_until_one_closes(
    api, open_socket
) -> None:
    session, other = await live_session(api), await live_session(api, room="room-2")
    path = f"/ws/transcript/{session.id}"
    bound = settings.VOICE_WS_MAX_SOCKETS_PER_SESSION
    sockets = [await open_socket(path) for _ in range(bound)]
    assert await closed_with(await open_socket(path)) == close_codes.TOO_MANY_SOCKETS
    # The session's sockets still work, and so does another session of the same visitor.
    for socket in sockets:
        assert await answers_ping(socket)
    assert await answers_ping(await open_socket(f"/ws/transcript/{other.id}"))
    # Closing one frees exactly one slot (the refused socket took none).
    await sockets.pop().disconnect()
    sockets.append(await open_socket(path))
    assert await answers_ping(sockets[-1])
    assert await closed_with(await open_socket(path)) == close_codes.TOO_MANY_SOCKETS


@pytest.mark.parametrize(
    "spelling",
    [str.upper, lambda id: id.replace("-", ""), lambda id: f"{{{id}}}", lambda id: f"urn:uuid:{id}"],
    ids=["upper-case", "no-hyphens", "braces", "urn"],
)
async def test_the_session_bound_holds_however_the_session_id_is_spelled(api, open_socket, spelling) -> None:
    session = await live_session(api)
    spelled = spelling(str(session.id))
    # The consumer serves the session under this spelling too...
    assert await answers_ping(await open_socket(f"/ws/transcript/{spelled}"))
    for _ in range(settings.VOICE_WS_MAX_SOCKETS_PER_SESSION - 1):
        await open_socket(f"/ws/transcript/{session.id}")
    # ...so it counts towards the same bound.
    assert await closed_with(await open_socket(f"/ws/transcript/{spelled}")) == close_codes.TOO_MANY_SOCKETS


async def test_the_process_bound_refuses_any_socket_over_it_with_1013(api, new_visitor, open_socket) -> None:
    other_visitor = new_visitor()
    first, second = await live_session(api), await live_session(other_visitor, "room-2", "bob")
    with override_settings(VOICE_WS_MAX_SOCKETS=3):
        assert settings.VOICE_WS_MAX_SOCKETS_PER_SESSION > 3  # only the process bound applies here
        sockets = [await open_socket(f"/ws/transcript/{first.id}") for _ in range(2)]
        sockets.append(await open_socket(f"/ws/transcript/{second.id}", other_visitor))
        for session, visitor in ((first, api), (second, other_visitor), (first, api)):
            refused = await open_socket(f"/ws/transcript/{session.id}", visitor)
            assert await closed_with(refused) == close_codes.TOO_MANY_SOCKETS
        # An unknown id or no visitor at all is refused just the same, before any other check.
        assert await closed_with(await open_socket(f"/ws/transcript/{uuid.uuid4()}", None)) == (
            close_codes.TOO_MANY_SOCKETS
        )
        for socket in sockets:
            assert await answers_ping(socket)
        # Closing one frees exactly one slot, for any session.
        await sockets.pop(0).disconnect()
        assert await answers_ping(await open_socket(f"/ws/transcript/{second.id}", other_visitor))
        assert await closed_with(await open_socket(f"/ws/transcript/{first.id}")) == close_codes.TOO_MANY_SOCKETS


# ---- a real server: what uvicorn itself refuses ---------------------------------------------


def copy_test_database(target: Path) -> None:
    """The test database (SQLite in memory), rows and all, into a file another process can open."""
    connection.ensure_connection()
    copy = sqlite3.connect(target)
    try:
        connection.connection.backup(copy)
    finally:
        copy.close()


def start_backend(database: Path, log: Path) -> tuple[ManagedProcess, str]:
    """uvicorn as devtools/stack.py starts the backend (same flags), on the copied database;
    the agents would be dispatched (none is: no session starts), so no model is loaded."""
    port = free_port()
    cmd = backend_command(port)
    env = {**os.environ, "VOICE_DATABASE_URL": f"sqlite:///{database}", "VOICE_AGENT_HOST": "dispatch",
           "PYTHONUNBUFFERED": "1"}
    process = ManagedProcess("backend", cmd, env, log).start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=30, process=process)
    except BaseException:
        process.stop()
        raise
    return process, f"ws://127.0.0.1:{port}"


async def test_a_real_server_closes_invalid_utf8_with_1007_and_frames_over_ws_max_size_with_1009(
    api, tmp_path: Path
) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the server gets a copy of the test database, which only SQLite's backup makes")
    session = await live_session(api)
    _, cookie = await cookie_header(api)
    await sync_to_async(copy_test_database)(tmp_path / "db.sqlite3")
    process, base = await asyncio.to_thread(start_backend, tmp_path / "db.sqlite3", tmp_path / "backend.log")
    try:

        async def closed_by_server(frame: bytes, *, text: bool) -> int | None:
            async with websockets.connect(
                f"{base}/ws/transcript/{session.id}",
                origin=ORIGIN[1].decode(),
                additional_headers={"Cookie": cookie.decode()},
                max_size=None,
            ) as socket:
                await socket.send(json.dumps({"type": "ping"}))
                assert json.loads(await socket.recv()) == {"type": "pong"}  # open, past the checks
                await socket.send(frame, text=text)  # as is: the client does not check it
                with pytest.raises(websockets.ConnectionClosedError):
                    await socket.recv()
                return socket.close_code

        assert await closed_by_server(b'{"type": "\xff\xfe"}', text=True) == close_codes.INVALID_UTF8
        # Over --ws-max-size (64 KiB): refused by the server before the app sees it.
        assert await closed_by_server(b"x" * 65537, text=True) == close_codes.FRAME_TOO_LARGE
        # Under it but over VOICE_WS_MAX_FRAME_BYTES: the app's own check.
        assert await closed_by_server(b"x" * 5000, text=True) == close_codes.FRAME_TOO_LARGE
        assert await closed_by_server(b"\x00\x01", text=False) == close_codes.BINARY_FRAME
        assert process.poll() is None
    finally:
        await asyncio.to_thread(process.stop)
    log = process.output()
    # The app closed the 5000-byte frame; the 64 KiB + 1 one never reached it.
    assert log.count('"event": "ws.closed_for_abuse", "code": 1009') == 1, log
    # The one traceback is uvicorn's own report of the invalid frame: the app raised nothing.
    assert log.count("Traceback") == 1 and "ERROR:    Invalid UTF-8 sequence received from client." in log, log
