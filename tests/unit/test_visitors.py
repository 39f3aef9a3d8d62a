"""Each visitor sees only their own conversations.

The visitor is a signed, HttpOnly cookie given by the first answer to a request without
one (or the signed-in Django user). Alice starts a session; Mallory, a second visitor, tries
every endpoint and the socket on it: another visitor's session is answered exactly like an
unknown id (404, WebSocket 4404), the list is each visitor's own, and an identity belongs to
the visitor who used it first (403 identity_taken). A socket without a cookie is closed 4401.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from http.cookies import SimpleCookie

import httpx
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from app.asgi import application
from app.voice.contract import close_codes
from app.voice.models import IdentityClaim, VoiceSession
from app.voice.sessions import store as session_store
from tests.unit.support import (
    HOST,
    ORIGIN,
    PRODUCTION,
    assert_error,
    cookie_header,
    load_settings,
    receive_until,
    visitor_cookie,
    visitor_in,
    visitor_of,
    visitor_of_sync,
)

pytestmark = pytest.mark.django_db(transaction=True)

COOKIE = "voice_visitor"
FLASK_ORIGIN = "http://127.0.0.1:5000"


async def start(client: httpx.AsyncClient, room: str, identity: str) -> str:
    response = await client.post("/session", json={"room": room, "identity": identity})
    assert response.status_code == 201, response.content
    return response.json()["session_id"]


async def closed_with(socket: WebsocketCommunicator) -> int:
    output = await socket.receive_output(timeout=5)
    assert output["type"] == "websocket.close", output
    return output["code"]


def set_cookie_of(response: httpx.Response) -> SimpleCookie:
    cookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])
    return cookie


async def test_a_second_visitor_can_neither_list_read_follow_nor_stop_the_first_ones_session(
    api: httpx.AsyncClient, new_visitor: Callable[[], httpx.AsyncClient], open_socket
) -> None:
    alice, mallory = api, new_visitor()
    session_id = await start(alice, "room-alice", "alice")
    await start(mallory, "room-mallory", "mallory")  # Mallory is a visitor with a session too
    unknown = str(uuid.uuid4())

    listed = (await mallory.get("/transcripts")).json()
    assert [s["room"] for s in listed["results"]] == ["room-mallory"] and listed["count"] == 1
    assert [s["session_id"] for s in (await alice.get("/transcripts")).json()["results"]] == [session_id]

    for method, path in [
        ("GET", "/session/{}"), ("DELETE", "/session/{}"), ("GET", "/transcripts/{}"),
        ("GET", "/transcripts/{}/export.json"), ("GET", "/transcripts/{}/export.vtt"),
    ]:
        theirs = await mallory.request(method, path.format(session_id))
        nobodys = await mallory.request(method, path.format(unknown))
        assert_error(theirs, 404, "not_found")
        assert (theirs.status_code, theirs.json()) == (nobodys.status_code, nobodys.json()), path
    assert (await alice.get(f"/session/{session_id}")).json()["status"] == "running"  # not stopped

    socket = await open_socket(f"/ws/transcript/{session_id}", visitor=mallory)
    assert await closed_with(socket) == close_codes.UNKNOWN_SESSION  # as for an unknown id
    own = await open_socket(f"/ws/transcript/{session_id}", visitor=alice)
    await own.send_json_to({"type": "ping"})
    # Answered (the agent's greeting may come first: it is already speaking).
    assert (await receive_until(own, lambda m: m.get("type") == "pong", timeout=5))[-1] == {"type": "pong"}

    assert (await alice.delete(f"/session/{session_id}")).status_code == 204
    ended = await receive_until(own, lambda m: m.get("event") == "session_ended")
    assert ended[-1]["reason"] == "deleted"
    for client in (alice, mallory):  # what is left: Mallory's own session
        for session in (await client.get("/transcripts")).json()["results"]:
            if session["status"] != "ended":
                assert (await client.delete(f"/session/{session['session_id']}")).status_code == 204


async def test_a_socket_without_a_cookie_or_with_a_forged_one_is_closed_4401(
    api: httpx.AsyncClient, open_socket
) -> None:
    session_id = await start(api, "room-1", "alice")
    bare = await open_socket(f"/ws/transcript/{session_id}", visitor=None)
    assert await closed_with(bare) == close_codes.NO_VISITOR
    forged_cookie = (await cookie_header(api))[1].replace(b"voice_visitor=", b"voice_visitor=x")
    path = f"/ws/transcript/{session_id}"
    forged = WebsocketCommunicator(application, path, headers=[HOST, ORIGIN, (b"cookie", forged_cookie)])
    assert (await forged.connect())[0]
    assert await closed_with(forged) == close_codes.NO_VISITOR
    await forged.disconnect()
    assert (await api.delete(f"/session/{session_id}")).status_code == 204


async def test_an_identity_belongs_to_the_visitor_who_used_it_first(
    api: httpx.AsyncClient, new_visitor: Callable[[], httpx.AsyncClient]
) -> None:
    alice, mallory = api, new_visitor()
    assert (await alice.get("/token", params={"room": "room-a", "identity": "alice"})).status_code == 200
    taken = await mallory.get("/token", params={"room": "room-m", "identity": "alice"})
    error = assert_error(taken, 403, "identity_taken")
    assert "alice" not in error["message"] and "room" not in error
    assert_error(await mallory.post("/session", json={"room": "room-m", "identity": "alice"}), 403, "identity_taken")
    assert not await VoiceSession.objects.filter(room="room-m").aexists()  # nothing was started
    assert (await IdentityClaim.objects.aget(identity="alice")).visitor == await visitor_of(alice)
    # Alice keeps using it, in other rooms too; Mallory's own name works for Mallory.
    session_id = await start(alice, "room-b", "alice")
    assert (await mallory.get("/token", params={"room": "room-m", "identity": "mallory"})).status_code == 200
    # A busy room does not tell another visitor which session holds it.
    refused = await mallory.post("/session", json={"room": "room-b", "identity": "mallory"})
    busy = assert_error(refused, 409, "room_busy")
    assert "session_id" not in busy
    own = assert_error(await alice.post("/session", json={"room": "room-b", "identity": "alice"}), 409, "room_busy")
    assert own["session_id"] == session_id
    assert (await alice.delete(f"/session/{session_id}")).status_code == 204


async def test_a_client_without_cookies_gets_one_on_its_first_call_and_then_works(
    new_visitor: Callable[[], httpx.AsyncClient],
) -> None:
    fresh = new_visitor()
    first = await fresh.get("/transcripts")
    assert first.json() == {"count": 0, "next": None, "previous": None, "results": []}
    morsel = set_cookie_of(first)[COOKIE]
    assert morsel["httponly"] and morsel["samesite"] == "Lax" and morsel["path"] == "/"
    assert not morsel["secure"]  # development serves plain HTTP; production sets Secure
    assert visitor_in(morsel.value).startswith("anon:")
    session_id = await start(fresh, "room-1", "newcomer")
    assert "set-cookie" not in (await fresh.get(f"/session/{session_id}")).headers  # the same visitor
    assert [s["session_id"] for s in (await fresh.get("/transcripts")).json()["results"]] == [session_id]
    assert (await fresh.delete(f"/session/{session_id}")).status_code == 204
    # Any first answer gives the cookie, an error too, so the next call is the same visitor.
    other = new_visitor()
    assert_error(await other.get(f"/session/{uuid.uuid4()}"), 404, "not_found")
    assert visitor_cookie(other) is not None


async def test_a_cookie_this_server_did_not_sign_makes_a_new_visitor(
    api: httpx.AsyncClient, new_visitor: Callable[[], httpx.AsyncClient]
) -> None:
    session_id = await start(api, "room-1", "alice")
    cookie = visitor_cookie(api)
    assert cookie is not None
    mallory = new_visitor()
    mallory.cookies.set(COOKIE, cookie[:-1] + ("A" if cookie[-1] != "A" else "B"))  # tampered signature
    response = await mallory.get(f"/session/{session_id}")
    assert_error(response, 404, "not_found")
    assert visitor_in(set_cookie_of(response)[COOKIE].value) != await visitor_of(api)
    assert (await api.delete(f"/session/{session_id}")).status_code == 204


def test_sessions_made_before_visitors_existed_are_nobodys(client: APIClient) -> None:
    legacy = VoiceSession.objects.create(room="room-old", identity="alice", status="ended")  # visitor ""
    assert client.get("/transcripts").json()["count"] == 0
    assert_error(client.get(f"/transcripts/{legacy.id}"), 404, "not_found")


def test_a_signed_in_user_is_the_visitor_in_every_browser(django_user_model) -> None:
    user = get_user_model().objects.create_user(username="ana", password="not-used")
    laptop, phone, stranger = APIClient(), APIClient(), APIClient()
    laptop.force_login(user)
    phone.force_login(user)
    assert laptop.get("/token", {"room": "room-1", "identity": "ana"}).status_code == 200
    assert IdentityClaim.objects.get(identity="ana").visitor == f"user:{user.pk}"
    assert phone.get("/token", {"room": "room-2", "identity": "ana"}).status_code == 200  # same person
    assert_error(stranger.get("/token", {"room": "room-3", "identity": "ana"}), 403, "identity_taken")
    session = VoiceSession.objects.create(room="room-1", identity="ana", status="ended", visitor=f"user:{user.pk}")
    for client in (laptop, phone):
        assert [s["session_id"] for s in client.get("/transcripts").json()["results"]] == [str(session.id)]
    assert stranger.get("/transcripts").json()["count"] == 0
    assert not visitor_of_sync(stranger).startswith("user:")


async def test_a_signed_in_users_socket_follows_their_session_in_another_browser() -> None:
    user = await sync_to_async(get_user_model().objects.create_user)(username="ana", password="not-used")
    session = await session_store.create_session("room-1", "ana", visitor=f"user:{user.pk}")
    await session_store.mark_running(session.id)
    phone = APIClient()
    await sync_to_async(phone.force_login)(user)
    cookie = f"{COOKIE}={phone.cookies[COOKIE].value}".encode()
    path = f"/ws/transcript/{session.id}"
    socket = WebsocketCommunicator(application, path, headers=[HOST, ORIGIN, (b"cookie", cookie)])
    assert (await socket.connect())[0]
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}
    await socket.disconnect()


def test_cross_origin_requests_carry_credentials_for_the_allowed_origin_only(client: APIClient) -> None:
    preflight = client.options(
        "/session", HTTP_ORIGIN=FLASK_ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="DELETE"
    )
    assert preflight["Access-Control-Allow-Origin"] == FLASK_ORIGIN
    assert preflight["Access-Control-Allow-Credentials"] == "true"
    answer = client.get("/transcripts", HTTP_ORIGIN=FLASK_ORIGIN)
    assert answer["Access-Control-Allow-Origin"] == FLASK_ORIGIN
    assert answer["Access-Control-Allow-Credentials"] == "true"
    foreign = client.get("/transcripts", HTTP_ORIGIN="http://evil.example")
    assert "Access-Control-Allow-Origin" not in foreign and "Access-Control-Allow-Credentials" not in foreign


def test_the_cookie_is_secure_in_production_and_signed_not_stored() -> None:
    probe = (
        "import json, app.settings as s; print(json.dumps({k: getattr(s, k) for k in ('SESSION_COOKIE_SECURE', "
        "'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_SAMESITE', 'SESSION_COOKIE_NAME', 'SESSION_ENGINE', "
        "'CORS_ALLOW_CREDENTIALS', 'CORS_ALLOWED_ORIGINS')}))"
    )
    result = load_settings(PRODUCTION, probe)
    assert result.returncode == 0, result.stderr
    prod = json.loads(result.stdout)
    assert prod["SESSION_COOKIE_SECURE"] is True and prod["SESSION_COOKIE_HTTPONLY"] is True
    assert (prod["SESSION_COOKIE_SAMESITE"], prod["SESSION_COOKIE_NAME"]) == ("Lax", COOKIE)
    assert prod["SESSION_ENGINE"] == "django.contrib.sessions.backends.signed_cookies"
    assert prod["CORS_ALLOWED_ORIGINS"] == []  # same origin: credentials go nowhere else


async def test_an_identity_unused_for_the_hold_period_passes_to_the_next_visitor(
    api: httpx.AsyncClient, new_visitor: Callable[[], httpx.AsyncClient], settings
) -> None:
    """Names are not held forever: VOICE_IDENTITY_HOLD_DAYS after its last use (a token or a
    session), and with no live session, another visitor may take it."""
    settings.VOICE_IDENTITY_HOLD_DAYS = 30
    alice, bob = api, new_visitor()
    assert (await alice.get("/token", params={"room": "room-a", "identity": "sam"})).status_code == 200
    claim = await IdentityClaim.objects.aget(identity="sam")
    almost = timezone.now() - timedelta(days=29, hours=23)
    await IdentityClaim.objects.filter(pk=claim.pk).aupdate(last_used_at=almost)
    assert_error(await bob.get("/token", params={"room": "room-b", "identity": "sam"}), 403, "identity_taken")
    # Alice uses it again: the hold starts over from now.
    session_id = await start(alice, "room-a", "sam")
    assert (await IdentityClaim.objects.aget(pk=claim.pk)).last_used_at > almost + timedelta(hours=1)
    # Unused for longer than the hold, but in a live session: still hers.
    lapsed = timezone.now() - timedelta(days=31)
    await IdentityClaim.objects.filter(pk=claim.pk).aupdate(last_used_at=lapsed)
    assert_error(await bob.get("/token", params={"room": "room-b", "identity": "sam"}), 403, "identity_taken")
    assert (await alice.delete(f"/session/{session_id}")).status_code == 204
    # Lapsed and not in use: Bob takes it, and now Alice is the one refused.
    assert (await bob.get("/token", params={"room": "room-b", "identity": "sam"})).status_code == 200
    assert (await IdentityClaim.objects.aget(pk=claim.pk)).visitor == await visitor_of(bob)
    assert_error(await alice.get("/token", params={"room": "room-a", "identity": "sam"}), 403, "identity_taken")
