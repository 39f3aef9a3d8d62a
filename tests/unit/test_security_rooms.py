"""Who may mint a token for which room, and the bounds on live sessions.

A room belongs to the identity holding its live session, or else to the identity whose
token claim on it is unexpired and newer than the room's last ended session. Another
identity gets 409 room_busy (a live session) or 403 room_taken (a token claim); once the
session ends the name is free again, and the next claim of it joins a LiveKit room of its
own, so no token of an earlier owner reaches the next one. Live sessions are bounded per identity and per
client IP (429 too_many_sessions), enforced in session_store, below the HTTP edge.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import jwt
import pytest
from django.utils import timezone

from app.asgi import application
from app.voice.models import EndReason, RoomClaim, VoiceSession
from app.voice.sessions import store as session_store
from app.voice.sessions.errors import RoomBusy, RoomTaken, TooManySessions
from app.voice.sessions.media_rooms import room_of
from fakes.livekit import FakeLiveKitGateway
from tests.unit.support import assert_error, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


def token(api, room: str, identity: str):
    return api.get("/token", params={"room": room, "identity": identity})


async def start(api, room: str, identity: str) -> str:
    response = await api.post("/session", json={"room": room, "identity": identity})
    assert response.status_code == 201, response.content
    return response.json()["session_id"]


async def stop(api, session_id: str) -> None:
    assert (await api.delete(f"/session/{session_id}")).status_code == 204


async def test_a_token_claims_the_room_for_its_identity_only(api) -> None:
    assert (await token(api, "room-x", "alice")).status_code == 200
    assert (await token(api, "room-x", "alice")).status_code == 200  # alice again: fine
    assert_error(await token(api, "room-x", "mallory"), 403, "room_taken")
    refused = await api.post("/session", json={"room": "room-x", "identity": "mallory"})
    assert_error(refused, 403, "room_taken")
    assert not await VoiceSession.objects.filter(room="room-x").aexists()
    # The owner starts her session in her room.
    session_id = await start(api, "room-x", "alice")
    await stop(api, session_id)


async def test_a_live_session_holds_the_room_and_no_session_id_leaks_through_token(api) -> None:
    session_id = await start(api, "room-y", "alice")  # straight to POST, no token first
    busy = assert_error(await token(api, "room-y", "mallory"), 409, "room_busy")
    assert "already has a live agent session" in busy["message"]  # what the UI shows
    assert "session_id" not in busy
    # POST /session keeps its own documented answer for a live room: 409 (README "Security").
    assert_error(await api.post("/session", json={"room": "room-y", "identity": "mallory"}), 409, "room_busy")
    assert (await token(api, "room-y", "alice")).status_code == 200  # the owner may rejoin
    await stop(api, session_id)


async def test_ending_the_session_releases_the_name_for_the_next_visitor(
    api, open_socket, gateway: FakeLiveKitGateway
) -> None:
    # As the e2e suite does: "alpha-room" reused by other identities after each test.
    for identity in ("alpha-user", "alpha-room-user", "alpha-room-stress"):
        assert (await token(api, "alpha-room", identity)).status_code == 200
        session_id = await start(api, "alpha-room", identity)
        assert_error(await token(api, "alpha-room", "someone-else"), 409, "room_busy")
        await stop(api, session_id)
    # A session ended by the agent side (here: the person left the room) releases it too.
    assert (await token(api, "alpha-room", "a")).status_code == 200
    session_id = await start(api, "alpha-room", "a")
    socket = await open_socket(f"/ws/transcript/{session_id}")
    gateway.rooms["alpha-room"].person_leaves()
    ended = await receive_until(socket, lambda m: m.get("event") == "session_ended")
    assert ended[-1] == {"event": "session_ended", "reason": "participant_left"}
    assert (await token(api, "alpha-room", "b")).status_code == 200


async def test_a_claim_lapses_with_the_token_lifetime(api, settings) -> None:
    settings.LIVEKIT_TOKEN_TTL_SECONDS = 600
    assert (await token(api, "room-z", "alice")).status_code == 200
    claim = await RoomClaim.objects.aget(room="room-z")
    assert timedelta(seconds=599) < claim.expires_at - claim.claimed_at <= timedelta(seconds=600)
    assert_error(await token(api, "room-z", "bob"), 403, "room_taken")
    await RoomClaim.objects.filter(pk=claim.pk).aupdate(expires_at=timezone.now() - timedelta(seconds=1))
    assert (await token(api, "room-z", "bob")).status_code == 200
    assert_error(await token(api, "room-z", "alice"), 403, "room_taken")  # now it is bob's


async def test_a_failed_start_does_not_keep_the_name(api, gateway: FakeLiveKitGateway) -> None:
    assert (await token(api, "room-f", "alice")).status_code == 200
    gateway.reachable = False
    assert_error(await api.post("/session", json={"room": "room-f", "identity": "alice"}), 503)
    gateway.reachable = True
    assert (await token(api, "room-f", "bob")).status_code == 200


# --- bounds on live sessions -------------------------------------------------------------


async def test_at_most_two_live_sessions_per_identity(api, settings) -> None:
    assert settings.VOICE_MAX_SESSIONS_PER_IDENTITY == 2  # the default
    first, second = [await start(api, f"room-{n}", "alice") for n in (1, 2)]
    refused = await api.post("/session", json={"room": "room-3", "identity": "alice"})
    error = assert_error(refused, 429, "too_many_sessions")
    assert "at most 2" in error["message"]
    assert not await VoiceSession.objects.filter(room="room-3").aexists()  # nothing left behind
    other = await start(api, "room-3", "bob")  # other identities are not affected
    await stop(api, first)  # an ended session no longer counts
    third = await start(api, "room-4", "alice")
    for session_id in (second, other, third):
        await stop(api, session_id)


async def test_live_sessions_per_client_ip_are_bounded_and_the_ip_is_stored(api, settings) -> None:
    settings.VOICE_MAX_SESSIONS_PER_IP = 2
    ids = [await start(api, f"room-{n}", f"user-{n}") for n in (1, 2)]
    assert {s.client_ip async for s in VoiceSession.objects.all()} == {"127.0.0.1"}
    assert_error(await api.post("/session", json={"room": "room-3", "identity": "user-3"}), 429, "too_many_sessions")
    transport = httpx.ASGITransport(app=application, client=("192.0.2.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as elsewhere:
        elsewhere_id = await start(elsewhere, "room-3", "user-3")  # another address: its own bound
        assert (await VoiceSession.objects.aget(room="room-3")).client_ip == "192.0.2.7"
        await stop(elsewhere, elsewhere_id)
    for session_id in ids:
        await stop(api, session_id)


async def test_the_bounds_live_in_the_service_code_not_the_view(settings) -> None:
    settings.VOICE_MAX_SESSIONS_PER_IDENTITY = 1
    settings.VOICE_MAX_SESSIONS_PER_IP = 2
    await session_store.create_session("room-1", "alice", "198.51.100.1")
    with pytest.raises(TooManySessions) as bound:
        await session_store.create_session("room-2", "alice", "198.51.100.1")
    assert (bound.value.scope, bound.value.limit) == ("identity", 1)
    await session_store.create_session("room-2", "bob", "198.51.100.1")
    with pytest.raises(TooManySessions) as bound:
        await session_store.create_session("room-3", "carol", "198.51.100.1")
    assert (bound.value.scope, bound.value.limit) == ("ip", 2)
    await session_store.create_session("room-3", "carol", None)  # no address known: identity bound only
    await VoiceSession.objects.exclude(status="ended").aupdate(status="ended", end_reason=EndReason.SHUTDOWN)
    await session_store.create_session("room-4", "alice", "198.51.100.1")  # ended ones do not count
    assert await VoiceSession.objects.exclude(status="ended").acount() == 1


async def test_claims_in_the_service_code(settings) -> None:
    ttl = timedelta(minutes=15)
    await session_store.claim_room("room-1", "alice", ttl)
    with pytest.raises(RoomTaken):
        await session_store.claim_room("room-1", "bob", ttl)
    with pytest.raises(RoomTaken):
        await session_store.create_session("room-1", "bob", None)
    live = await session_store.create_session("room-1", "alice", None)
    with pytest.raises(RoomBusy) as busy:
        await session_store.claim_room("room-1", "bob", ttl)
    assert busy.value.session_id is None  # another identity's session: not named to bob
    await session_store.mark_ended(live.id, EndReason.DELETED)
    await session_store.claim_room("room-1", "bob", ttl)
    assert (await RoomClaim.objects.aget(room="room-1")).identity == "bob"


# --- a room name passed on: each claim has a LiveKit room of its own -----------------------


def media_room_of(response) -> str:
    """The LiveKit room a /token answer's JWT joins."""
    assert response.status_code == 200, response.content
    return jwt.decode(response.json()["token"], options={"verify_signature": False})["video"]["room"]


async def test_a_token_from_an_earlier_claim_cannot_join_the_next_owners_room(
    api, new_visitor, gateway: FakeLiveKitGateway
) -> None:
    """The eavesdropping finding: A's token for R, kept after A's session ended, must not
    join R once B holds it. Each claim joins a LiveKit room of its own; A's is deleted."""
    a, b = api, new_visitor()
    a_room = media_room_of(await token(a, "room-r", "ann"))
    assert a_room == "room-r"  # the name's first use: its own name
    session_id = await start(a, "room-r", "ann")
    assert (await VoiceSession.objects.aget(pk=session_id)).livekit_room == a_room  # the agent joined A's
    assert gateway.rooms["room-r"].name == a_room
    await stop(a, session_id)
    assert a_room in gateway.deleted and a_room not in gateway.open_rooms

    b_room = media_room_of(await token(b, "room-r", "ben"))
    b_session = await start(b, "room-r", "ben")
    assert room_of(b_room) == "room-r" and b_room != a_room  # used before: a room of its own
    assert (await VoiceSession.objects.aget(pk=b_session)).livekit_room == b_room
    assert gateway.rooms["room-r"].name == b_room
    # A's token names a room that is gone for good: no claim or session will bring it back.
    assert a_room not in gateway.open_rooms
    assert not await VoiceSession.objects.filter(livekit_room=a_room).exclude(pk=session_id).aexists()
    await stop(b, b_session)


async def test_the_same_claim_keeps_its_livekit_room_and_a_new_claim_gets_a_new_one(api) -> None:
    first = media_room_of(await token(api, "room-k", "kim"))
    assert media_room_of(await token(api, "room-k", "kim")) == first  # asked again: the same claim
    session_id = await start(api, "room-k", "kim")
    assert (await VoiceSession.objects.aget(pk=session_id)).livekit_room == first
    # Once the claim has lapsed, a live session still keeps its room for its identity.
    await RoomClaim.objects.filter(room="room-k").aupdate(expires_at=timezone.now() - timedelta(seconds=1))
    assert media_room_of(await token(api, "room-k", "kim")) == first
    await stop(api, session_id)
    # Ended: even its own identity starts over in a new room.
    again = media_room_of(await token(api, "room-k", "kim"))
    assert again != first and room_of(again) == "room-k"


async def test_a_session_without_a_token_gets_a_new_livekit_room(api) -> None:
    ids = []
    for _ in range(2):
        ids.append(await start(api, "room-n", "nia"))
        await stop(api, ids[-1])
    rooms = [s.livekit_room async for s in VoiceSession.objects.filter(pk__in=ids)]
    assert len(set(rooms)) == 2 and {room_of(r) for r in rooms} == {"room-n"}


async def test_a_name_counts_as_used_while_an_expired_token_of_it_could_still_join(api, new_visitor) -> None:
    """LiveKit accepts a token up to a minute past its expiry: the claim's row stays for
    store.EXPIRED_TOKEN_GRACE, so the next claim still gets a room of its own."""
    first = media_room_of(await token(api, "room-g", "gus"))
    assert first == "room-g"
    just_expired = timezone.now() - timedelta(seconds=1)
    await RoomClaim.objects.filter(room="room-g").aupdate(expires_at=just_expired)
    again = media_room_of(await token(new_visitor(), "room-g", "gil"))
    assert again != first and room_of(again) == "room-g"
    # Long expired, the row gone, no session ever: nothing can join it any more, the name is new.
    await RoomClaim.objects.filter(room="room-g").aupdate(
        expires_at=timezone.now() - session_store.EXPIRED_TOKEN_GRACE - timedelta(seconds=1)
    )
    assert media_room_of(await token(new_visitor(), "room-h", "hal")) == "room-h"  # housekeeping ran
    assert not await RoomClaim.objects.filter(room="room-g").aexists()
    assert media_room_of(await token(new_visitor(), "room-g", "gia")) == "room-g"
