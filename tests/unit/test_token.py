"""GET /token: a LiveKit JWT that joins one room, nothing more, for a bounded time."""

from __future__ import annotations

import time

import jwt
import pytest
from rest_framework.test import APIClient

from tests.unit.support import assert_error

pytestmark = pytest.mark.django_db


def test_token_grants_join_for_that_room_only(client: APIClient, settings) -> None:
    response = client.get("/token", {"room": "room-1", "identity": "alice"})
    assert response.status_code == 200
    body = response.json()
    assert (body["room"], body["identity"], body["url"]) == ("room-1", "alice", settings.LIVEKIT_PUBLIC_URL)

    claims = jwt.decode(body["token"], settings.LIVEKIT_API_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert claims["iss"] == settings.LIVEKIT_API_KEY
    # A name used for the first time: its LiveKit room is the name itself (later claims of it
    # get rooms of their own: test_security_rooms). The microphone's audio and data only.
    assert claims["video"] == {
        "roomJoin": True,
        "room": "room-1",
        "canPublish": True,
        "canPublishSources": ["microphone"],
        "canSubscribe": True,
        "canPublishData": True,
    }
    assert abs(claims["exp"] - (time.time() + settings.LIVEKIT_TOKEN_TTL_SECONDS)) < 5


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({}, ["room", "identity"]),
        ({"room": "room-1"}, ["identity"]),
        ({"identity": "alice"}, ["room"]),
        ({"room": "", "identity": "alice"}, ["room"]),
        ({"room": "has space", "identity": "alice"}, ["room"]),
        ({"room": "room-1", "identity": "a" * 129}, ["identity"]),
        ({"room": "room/../x", "identity": "alice"}, ["room"]),
        ({"room": "room-1", "identity": "ünïcode"}, ["identity"]),
    ],
)
def test_bad_room_or_identity_is_a_clear_400_naming_the_field(client: APIClient, query: dict, named: list[str]) -> None:
    error = assert_error(client.get("/token", query), 400, "invalid_request")
    # "field: what is wrong; other field: ..." — exactly the fields at fault, in order.
    assert [part.split(":")[0] for part in error["message"].split("; ")] == named, error["message"]
