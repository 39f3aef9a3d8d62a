"""/healthz (liveness) and /readyz (LiveKit reachable, channel layer carries a message)."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import InMemoryChannelLayer
from rest_framework.test import APIClient

from app.voice.sessions.groups import channel_layer
from fakes.livekit import FakeLiveKitGateway

pytestmark = pytest.mark.django_db


class UnreachableChannelLayer(InMemoryChannelLayer):
    """Injected by CHANNEL_LAYERS: a layer whose backend (e.g. Redis) is down."""

    async def send(self, channel: str, message: dict) -> None:
        raise ConnectionError("channel layer backend is down")


def test_liveness_is_ok(client: APIClient, gateway: FakeLiveKitGateway) -> None:
    gateway.reachable = False  # liveness checks nothing but the process
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_ready_when_livekit_and_the_channel_layer_answer(client: APIClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"livekit": "ok", "channel_layer": "ok"}}


def test_not_ready_when_livekit_is_unreachable(client: APIClient, gateway: FakeLiveKitGateway) -> None:
    gateway.reachable = False
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"livekit": "unavailable", "channel_layer": "ok"}}


def test_not_ready_when_the_channel_layer_is_down(client: APIClient, settings) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.UnreachableChannelLayer"}}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"livekit": "ok", "channel_layer": "unavailable"}}


async def test_the_readiness_probes_run_at_once(api, gateway: FakeLiveKitGateway, monkeypatch) -> None:
    """Each probe waits until the other has started: one after the other, the first would
    give up (and the answer would be 503) before the second began."""
    started = {"livekit": asyncio.Event(), "channel_layer": asyncio.Event()}

    async def wait_for_the_other(me: str, other: str) -> None:
        started[me].set()
        await asyncio.wait_for(started[other].wait(), 5)

    async def ping(timeout: float = 2.0) -> None:
        await wait_for_the_other("livekit", "channel_layer")

    layer = channel_layer()
    send = layer.send

    async def send_once_livekit_is_asked(channel: str, message: dict) -> None:
        await wait_for_the_other("channel_layer", "livekit")
        await send(channel, message)

    monkeypatch.setattr(gateway, "ping", ping)
    monkeypatch.setattr(layer, "send", send_once_livekit_is_asked)
    response = await api.get("/readyz")
    assert (response.status_code, response.json()["checks"]) == (200, {"livekit": "ok", "channel_layer": "ok"})
