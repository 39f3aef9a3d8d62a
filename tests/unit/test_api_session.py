"""POST /session, GET/DELETE /session/{id}: every status code of the API (README, "API").

Requests that start an agent go through the real ASGI app on the test's loop (`api`);
requests that are refused before any agent starts use DRF's test client.
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from django.db import OperationalError
from django.test import override_settings
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.test import APIClient

from app.voice.models import VoiceSession
from app.voice.sessions import store as session_store
from app.voice.structured_logs import JsonFormatter
from fakes.livekit import FakeLiveKitGateway
from tests.unit.support import JSON, assert_error

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"room": "room-1", "identity": "alice"}

# Fixed, not random: every test worker must collect the same parameters.
UNKNOWN_ID = "3e9b7a52-1c4d-4f60-8a2e-5d7c9b1f0a36"


async def start(api, body: dict = BODY) -> dict:
    response = await api.post("/session", json=body)
    assert response.status_code == 201, response.content
    return response.json()


async def test_post_creates_a_running_session_and_delete_ends_it(api) -> None:
    created = await start(api)
    session_id = created["session_id"]
    assert uuid.UUID(session_id).version == 4  # unguessable
    assert created["room"] == "room-1" and created["identity"] == "alice"
    assert created["status"] == "running"
    assert created["ws_path"] == f"/ws/transcript/{session_id}"
    assert created["started_at"] and created["ended_at"] is None and created["end_reason"] == ""

    response = await api.get(f"/session/{session_id}")
    assert response.status_code == 200
    assert (response.json()["session_id"], response.json()["status"]) == (session_id, "running")

    response = await api.delete(f"/session/{session_id}")
    assert response.status_code == 204 and response.content == b""
    state = (await api.get(f"/session/{session_id}")).json()
    assert (state["status"], state["end_reason"]) == ("ended", "deleted")
    assert state["ended_at"] and state["duration_seconds"] is not None

    # Deleting an ended session again is harmless, and changes nothing.
    response = await api.delete(f"/session/{session_id}")
    assert response.status_code == 204
    assert (await api.get(f"/session/{session_id}")).json() == state


async def test_a_busy_room_is_409_naming_the_live_session_then_free_after_delete(api) -> None:
    first = await start(api)
    response = await api.post("/session", json={"room": "room-1", "identity": "bob"})
    error = assert_error(response, 409, "room_busy")
    assert error["session_id"] == first["session_id"]

    other_room = await start(api, {"room": "room-2", "identity": "bob"})  # other rooms unaffected
    for session in (first, other_room):
        assert (await api.delete(f"/session/{session['session_id']}")).status_code == 204
    again = await start(api)  # the room is free once its session ended
    assert again["session_id"] != first["session_id"]
    assert (await api.delete(f"/session/{again['session_id']}")).status_code == 204


async def test_agent_that_cannot_join_is_503_and_leaves_nothing_live(
    api, gateway: FakeLiveKitGateway, caplog: pytest.LogCaptureFixture
) -> None:
    gateway.reachable = False
    caplog.set_level(logging.INFO, logger="app.voice")
    response = await api.post("/session", json=BODY)
    assert_error(response, 503, "service_unavailable")

    session = await VoiceSession.objects.aget(room="room-1")
    assert (session.status, session.end_reason) == ("ended", "error")
    failed = [r for r in caplog.records if r.getMessage() == "session.start_failed"]
    assert failed and failed[0].levelno == logging.ERROR
    assert (failed[0].session_id, failed[0].room) == (str(session.id), "room-1")

    gateway.reachable = True
    created = await start(api)  # the failed attempt did not keep the room busy
    assert (await api.delete(f"/session/{created['session_id']}")).status_code == 204


async def test_start_and_stop_are_logged_as_json_with_session_id_and_room(
    api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.voice")
    session_id = (await start(api))["session_id"]
    assert (await api.delete(f"/session/{session_id}")).status_code == 204

    events = {r.getMessage(): r for r in caplog.records if r.name.startswith("app.voice")}
    for event in ("session.starting", "session.started", "session.ended"):
        line = json.loads(JsonFormatter().format(events[event]))
        assert line["event"] == event
        assert (line["session_id"], line["room"]) == (session_id, "room-1")
    assert json.loads(JsonFormatter().format(events["session.ended"]))["reason"] == "deleted"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"room": "room-1"},
        {"identity": "alice"},
        {"room": 5, "identity": "alice"},
        {"room": "room-1", "identity": None},
        {"room": ["room-1"], "identity": "alice"},
        {"room": {"name": "x"}, "identity": "alice"},
        {"room": "room 1", "identity": "alice"},
        {"room": "room-1\n", "identity": "alice"},
        {"room": "r" * 129, "identity": "alice"},
        {"room": "room-1", "identity": ""},
    ],
)
def test_invalid_body_is_400(client: APIClient, body: dict) -> None:
    response = client.post("/session", body, format="json")
    assert_error(response, 400, "invalid_request")
    assert not VoiceSession.objects.exists()


@pytest.mark.parametrize("raw", ["[]", '"room-1"', "null", "42", '[{"room": "a", "identity": "b"}]'])
def test_json_that_is_not_an_object_is_400(client: APIClient, raw: str) -> None:
    assert_error(client.post("/session", raw, content_type=JSON), 400, "invalid_request")


@pytest.mark.parametrize("raw", ['{"room": ', "room=room-1&identity=alice", "\xff\xfe", "{'room': 'a'}"])
def test_malformed_json_is_400(client: APIClient, raw: str) -> None:
    assert_error(client.post("/session", raw, content_type=JSON), 400, "parse_error")


def test_empty_json_body_is_400(client: APIClient) -> None:
    assert_error(client.post("/session", "", content_type=JSON), 400, "invalid_request")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_415(client: APIClient, content_type: str) -> None:
    response = client.post("/session", "room=room-1&identity=alice", content_type=content_type)
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "raw_id",
    [UNKNOWN_ID, "not-a-uuid", "1", "%00", "x" * 300, "00000000-0000-0000-0000-00000000000g"],
)
@pytest.mark.parametrize("method", ["get", "delete"])
def test_unknown_or_malformed_id_is_404(client: APIClient, method: str, raw_id: str) -> None:
    assert_error(getattr(client, method)(f"/session/{raw_id}"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/session"),
        ("put", "/session"),
        ("patch", "/session"),
        ("delete", "/session"),
        ("post", f"/session/{UNKNOWN_ID}"),
        ("put", f"/session/{UNKNOWN_ID}"),
        ("post", "/token"),
        ("delete", "/token"),
        ("post", "/transcripts"),
        ("delete", f"/transcripts/{UNKNOWN_ID}"),
        ("post", "/healthz"),
        ("put", "/readyz"),
    ],
)
def test_wrong_method_is_405(client: APIClient, method: str, path: str) -> None:
    assert_error(getattr(client, method)(path), 405, "method_not_allowed")


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/nope", "/token/", "/session/", "/admin/", "/ws/transcript/x", "/%ff"])
def test_unknown_path_is_a_json_404_even_with_debug_on(client: APIClient, settings, debug: bool, path: str) -> None:
    settings.DEBUG = debug
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize("path", ["/token?room=r&identity=i", "/session", f"/session/{UNKNOWN_ID}", "/healthz"])
def test_a_format_no_renderer_has_is_a_json_404_not_a_500(client: APIClient, path: str) -> None:
    """DRF's negotiation raises Django's Http404 for ?format=xml: it answers in the error shape."""
    separator = "&" if "?" in path else "?"
    assert_error(client.get(f"{path}{separator}format=xml"), 404, "not_found")


@pytest.mark.parametrize("debug", [False, True])
def test_a_host_not_in_allowed_hosts_is_refused_in_the_error_shape(client: APIClient, debug: bool) -> None:
    # With DEBUG on (development), Django's own answer is its HTML debug page, settings and all.
    with override_settings(DEBUG=debug, ALLOWED_HOSTS=["voice.example.com"]):
        for path in ("/healthz", "/token?room=r&identity=i", "/nope"):
            assert_error(client.get(path, HTTP_HOST="evil.example.com"), 400, "bad_request")
        assert client.get("/healthz", HTTP_HOST="voice.example.com").status_code == 200


@pytest.mark.parametrize("debug", [False, True])
def test_what_django_itself_refuses_in_a_view_is_a_4xx_not_a_500(client: APIClient, debug: bool) -> None:
    """The ASGI body limit (app/body_limit.py) stops large bodies first; DRF's test client
    goes around it, as anything that reaches Django's own checks would."""
    with override_settings(DEBUG=debug):
        body = json.dumps({"room": "room-1", "identity": "alice", "pad": "x" * 3_000_000})  # > 2.5 MB
        assert_error(client.post("/session", body, content_type=JSON), 413, "payload_too_large")
        fields = "&".join(f"f{n}=1" for n in range(1001))  # > DATA_UPLOAD_MAX_NUMBER_FIELDS
        assert_error(client.get(f"/transcripts?{fields}"), 400, "bad_request")
        assert_error(client.get(f"/token?room=r&identity=i&{fields}"), 400, "bad_request")


def test_deeply_nested_json_is_400_not_500(client: APIClient) -> None:
    assert_error(client.post("/session", "[" * 10_000, content_type=JSON), 400, "parse_error")


def test_an_oversized_body_is_413(client: APIClient) -> None:
    body = json.dumps({"room": "room-1", "identity": "alice", "pad": "x" * 100_000})
    assert_error(client.post("/session", body, content_type=JSON), 413, "payload_too_large")


@pytest.mark.parametrize("error", [OperationalError("the database system is shutting down"), RedisConnectionError()])
async def test_a_dependency_down_is_a_503_with_a_warning_not_a_500_with_a_traceback(
    api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    """PostgreSQL restarting or Redis down under a request (found by the soak's pg_restart):
    the client hears "try again in a moment", and the log holds a warning, not an error."""

    async def down(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(session_store, "claim_room", down)
    with caplog.at_level("WARNING", logger="app.voice.errors"):
        response = await api.get("/token", params={"room": "room-1", "identity": "alice"})
    assert_error(response, 503, "service_unavailable")
    assert [(r.levelname, r.message, r.exc_info) for r in caplog.records if r.name == "app.voice.errors"] == [
        ("WARNING", "request.dependency_down", None)
    ]
