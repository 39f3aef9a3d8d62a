"""GET /token beyond the basics in test_token.py: TTL from settings, no admin grants,
boundaries of the name rule, and the error shape."""

from __future__ import annotations

import time

import jwt
import pytest
from rest_framework.test import APIClient

from app.voice.sessions.media_rooms import room_of
from tests.unit.support import assert_error

pytestmark = pytest.mark.django_db

ADMIN_GRANTS = {"roomCreate", "roomList", "roomRecord", "roomAdmin", "ingressAdmin", "hidden", "recorder", "agent"}


def claims_of(response, settings) -> dict:
    assert response.status_code == 200, response.content
    return jwt.decode(response.json()["token"], settings.LIVEKIT_API_SECRET, algorithms=["HS256"])


def test_ttl_comes_from_settings_and_the_url_is_the_public_one(client: APIClient, settings) -> None:
    settings.LIVEKIT_TOKEN_TTL_SECONDS = 120
    settings.LIVEKIT_PUBLIC_URL = "wss://media.example.com"
    response = client.get("/token", {"room": "r", "identity": "i"})
    claims = claims_of(response, settings)
    assert abs(claims["exp"] - (time.time() + 120)) < 5
    assert claims["nbf"] <= time.time() + 1
    assert response.json()["url"] == "wss://media.example.com"


def test_no_admin_or_cross_room_grants(client: APIClient, settings) -> None:
    claims = claims_of(client.get("/token", {"room": "room-a", "identity": "alice"}), settings)
    video = claims["video"]
    assert not ADMIN_GRANTS & {k for k, v in video.items() if v}
    assert room_of(video["room"]) == "room-a" and video["roomJoin"] is True
    other = claims_of(client.get("/token", {"room": "room-b", "identity": "alice"}), settings)
    assert room_of(other["video"]["room"]) == "room-b"
    assert claims.get("kind", "") in ("", "standard")  # never the agent's kind: the page plays only the agent


def test_the_token_lives_two_minutes_by_default() -> None:
    """Long enough to join; LiveKit refreshes a joined client's token itself."""
    from django.conf import settings as defaults

    assert defaults.LIVEKIT_TOKEN_TTL_SECONDS == 120


@pytest.mark.parametrize("name", ["a", "A.b_c-9", "x" * 128])
def test_names_at_the_edges_of_the_rule_are_accepted(client: APIClient, settings, name: str) -> None:
    claims = claims_of(client.get("/token", {"room": name, "identity": name}), settings)
    assert (claims["sub"], room_of(claims["video"]["room"])) == (name, name)


@pytest.mark.parametrize(
    "query",
    [
        "room=room-1%0A&identity=alice",  # a trailing newline must not slip past the rule
        "room=room-1&identity=%00",
        "room=room-1&identity=al%20ice",
        "room=r%C3%BCm&identity=alice",
        "room=&identity=",
        "room=room-1&identity=" + "a" * 5000,
        "room=room-1&room=room-2&identity=alice",  # which room? refuse rather than guess
    ],
)
def test_bad_names_are_400_in_the_error_shape(client: APIClient, query: str) -> None:
    assert_error(client.get(f"/token?{query}"), 400, "invalid_request")
