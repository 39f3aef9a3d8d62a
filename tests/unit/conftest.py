"""Unit tests: the real Django/Channels/DRF app and real AgentSession with Silero VAD,
with fakes injected for the cloud providers and the LiveKit server (no network)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from channels.testing import WebsocketCommunicator

from app.asgi import application
from app.voice.agent.livekit_gateway import get_gateway
from devtools import setup
from devtools.stack import ROOT
from fakes.livekit import FakeLiveKitGateway

ORIGIN = (b"origin", b"http://127.0.0.1:5000")


@pytest.fixture(autouse=True)
def offline_settings(settings: object) -> Iterator[None]:
    settings.LIVEKIT_GATEWAY = "fakes.livekit.FakeLiveKitGateway"  # type: ignore[attr-defined]
    settings.VOICE_PROVIDERS = "fake"  # type: ignore[attr-defined]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}  # type: ignore[attr-defined]
    get_gateway.cache_clear()
    yield
    get_gateway.cache_clear()


@pytest.fixture
def gateway() -> FakeLiveKitGateway:
    fake = get_gateway()
    assert isinstance(fake, FakeLiveKitGateway)
    return fake


@pytest.fixture(scope="session")
def speech_wav() -> Path:
    """Real English speech (espeak-ng), 16 kHz, no padding: the fake person adds their own."""
    return setup.speech_wav(
        "Hello agent, can you hear me?",
        ROOT / "artifacts" / "audio" / "hello-16k.wav",
        rate=16000,
        lead_silence=0,
        tail_silence=0,
    )


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    """HTTP through the project's real ASGI application, on the test's event loop.

    Django's ASGIHandler runs each sync view in its own thread context, as under uvicorn
    (django.test.AsyncClient does not, which makes a DELETE wait behind the agent's own
    database calls until the stop timeout).
    """
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def open_socket() -> AsyncIterator[object]:
    sockets: list[WebsocketCommunicator] = []

    async def connect(path: str) -> WebsocketCommunicator:
        communicator = WebsocketCommunicator(application, path, headers=[ORIGIN])
        sockets.append(communicator)
        connected, _ = await communicator.connect()
        assert connected
        return communicator

    yield connect
    for communicator in sockets:
        await communicator.disconnect()


async def receive_until(socket: WebsocketCommunicator, predicate: object, timeout: float = 15.0) -> list[dict]:
    """Collect messages until one satisfies `predicate` (returned list includes it)."""
    received: list[dict] = []
    async with asyncio.timeout(timeout):
        while True:
            message = await socket.receive_json_from(timeout=timeout)
            received.append(message)
            if predicate(message):  # type: ignore[operator]
                return received
