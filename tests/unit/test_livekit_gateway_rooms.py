"""The real gateway's room creation against a LiveKit API that fails: "no available nodes"
(the nodes' shared Redis just restarted) is waited out, briefly; anything else is the
caller's at once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from livekit import api

from app.voice import livekit_gateway
from app.voice.livekit_gateway import LiveKitGateway

NO_NODES = "could not find any available nodes"


def gateway_whose_api_fails(monkeypatch: pytest.MonkeyPatch, *errors: Exception | None) -> list[str]:
    """A gateway whose create_room calls meet `errors` in turn (None: success); returns the
    rooms asked for, one entry per call."""
    calls: list[str] = []
    outcomes = iter(errors)

    async def create_room(request: api.CreateRoomRequest) -> None:
        calls.append(request.name)
        if (error := next(outcomes)) is not None:
            raise error

    @contextlib.asynccontextmanager
    async def fake_api(self: LiveKitGateway) -> AsyncIterator[SimpleNamespace]:
        yield SimpleNamespace(room=SimpleNamespace(create_room=create_room))

    monkeypatch.setattr(LiveKitGateway, "_api", fake_api)
    monkeypatch.setattr(livekit_gateway, "NO_NODE_RETRY", 0.01)
    return calls


def gateway() -> LiveKitGateway:
    return LiveKitGateway(url="ws://127.0.0.1:7880", api_key="k", api_secret="s" * 32)


async def test_no_available_nodes_is_retried_until_a_node_is_back(monkeypatch: pytest.MonkeyPatch) -> None:
    no_nodes = api.TwirpError("unknown", NO_NODES, status=500)
    calls = gateway_whose_api_fails(monkeypatch, no_nodes, no_nodes, None)
    await gateway().create_room("room-1")
    assert calls == ["room-1"] * 3


async def test_no_available_nodes_for_too_long_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(livekit_gateway, "NO_NODE_PATIENCE", 0.05)
    no_nodes = api.TwirpError("unknown", NO_NODES, status=500)
    calls = gateway_whose_api_fails(monkeypatch, *[no_nodes] * 1000)
    with pytest.raises(api.TwirpError, match=NO_NODES):
        await gateway().create_room("room-1")
    assert 2 <= len(calls) < 1000


async def test_any_other_error_reaches_the_caller_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    denied = api.TwirpError("permission_denied", "no permissions to access the room", status=403)
    calls = gateway_whose_api_fails(monkeypatch, denied, None)
    with pytest.raises(api.TwirpError, match="permissions"):
        await gateway().create_room("room-1")
    assert calls == ["room-1"]
