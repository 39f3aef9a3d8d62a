"""Unit tests: the real Django/Channels/DRF app and real AgentSession with Silero VAD,
with fakes injected for the cloud providers and the LiveKit server (no network).

Fixtures only; helpers the tests import are in tests/unit/support.py."""

from __future__ import annotations

import asyncio
import inspect
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient

from app.asgi import application
from app.voice.livekit_gateway import using_gateway
from fakes.livekit import FakeLiveKitGateway
from tests.unit.support import HOST, ORIGIN, SPEECH_WAV, cookie_header


@pytest.fixture(autouse=True)
def offline_settings(settings: object) -> None:
    settings.VOICE_PROVIDERS = "fake"  # type: ignore[attr-defined]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def gateway(settings: object) -> Iterator[FakeLiveKitGateway]:
    """Every test talks to a fake LiveKit server of its own (real token minting, scripted rooms)."""
    fake = FakeLiveKitGateway(
        url=settings.LIVEKIT_URL,  # type: ignore[attr-defined]
        api_key=settings.LIVEKIT_API_KEY,  # type: ignore[attr-defined]
        api_secret=settings.LIVEKIT_API_SECRET,  # type: ignore[attr-defined]
    )
    with using_gateway(fake):
        yield fake


# ---- leaked asyncio tasks -------------------------------------------------------------


def _describe(task: asyncio.Task) -> str:
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", None) or type(coro).__name__
    frame = getattr(coro, "cr_frame", None)
    where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else "no frame"
    return f"{task.get_name()}: {name} at {where}"


@pytest.fixture
async def _no_leaked_tasks() -> AsyncIterator[None]:
    before = asyncio.all_tasks()
    yield
    # pytest-asyncio runs this teardown in a task of its own: that one is not a leak.
    leaked = [task for task in asyncio.all_tasks() - before - {asyncio.current_task()} if not task.done()]
    if leaked:
        pytest.fail("the test left asyncio tasks running:\n  " + "\n  ".join(map(_describe, leaked)))


@pytest.fixture(autouse=True)
def fail_on_leaked_tasks(request: pytest.FixtureRequest) -> None:
    """An async test fails if a task created during it (by the test, its fixtures or the
    code under test) is still pending once it and its fixtures have finished.

    Autouse fixtures are set up first, so the check sees the tasks of every other
    fixture of the test and runs after their teardown."""
    if inspect.iscoroutinefunction(getattr(request, "function", None)):
        request.getfixturevalue("_no_leaked_tasks")


# ---- clients ------------------------------------------------------------------------------


@pytest.fixture
def client() -> APIClient:
    """DRF's test client: requests through Django's sync handler, no event loop."""
    return APIClient()


@pytest.fixture
async def new_visitor() -> AsyncIterator[Callable[[], httpx.AsyncClient]]:
    """Makes HTTP clients through the project's real ASGI application, on the test's event
    loop, each one visitor: it keeps the cookie its first answer gives it.

    Django's ASGIHandler gives each request its own thread context for its database calls, as under uvicorn
    (django.test.AsyncClient does not, which makes a DELETE wait behind the agent's own
    database calls until the stop timeout). Requests that start an agent use these."""
    clients: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://testserver")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def api(new_visitor: Callable[[], httpx.AsyncClient]) -> httpx.AsyncClient:
    """The test's first visitor (see new_visitor)."""
    return new_visitor()


@pytest.fixture
async def open_socket(api: httpx.AsyncClient) -> AsyncIterator[Callable[..., Awaitable[WebsocketCommunicator]]]:
    """Connect to a WebSocket path with the UI's origin, as the visitor `api` (or the one
    given; None: no cookie at all); every socket is closed at teardown."""
    sockets: list[WebsocketCommunicator] = []

    async def connect(path: str, visitor: httpx.AsyncClient | None = api) -> WebsocketCommunicator:
        headers = [HOST, ORIGIN] + ([await cookie_header(visitor)] if visitor is not None else [])
        communicator = WebsocketCommunicator(application, path, headers=headers)
        sockets.append(communicator)
        connected, _ = await communicator.connect()
        assert connected
        return communicator

    yield connect
    for communicator in sockets:
        await communicator.disconnect()


# ---- fakes ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def speech_wav() -> Path:
    """Real English speech, 16 kHz, no padding (the fake person adds their own pauses)."""
    assert SPEECH_WAV.is_file(), SPEECH_WAV
    return SPEECH_WAV


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of the test's own on a free loopback port."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        for line in process.stdout:  # type: ignore[union-attr]
            if "Ready to accept connections" in line:
                break
        else:
            raise RuntimeError("redis-server did not start")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
