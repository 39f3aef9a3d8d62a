"""/healthz (liveness) and /readyz (LiveKit reachable, channel layer carries a message)."""

from __future__ import annotations

import pytest
from channels.layers import InMemoryChannelLayer
from rest_framework.test import APIClient

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
