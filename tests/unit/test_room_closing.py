"""A session's LiveKit room exists from its token (or its start) until the session ends,
whatever ends it, and is deleted exactly once; LiveKit being down never breaks an ending."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from app.voice import lifecycle
from app.voice.agent.host import get_host
from app.voice.models import RoomClaim, VoiceSession
from app.voice.sessions import ending, sweeper
from app.voice.sessions.groups import channel_layer, transcript_group
from app.voice.sessions.media_rooms import room_of
from fakes.livekit import FakeLiveKitGateway, PersonScript

pytestmark = pytest.mark.django_db(transaction=True)


def names(media_rooms: list[str]) -> list[str]:
    """The room names the LiveKit rooms were made for."""
    return [room_of(media_room) for media_room in media_rooms]


async def start(api, room: str, identity: str = "alice") -> str:
    response = await api.post("/session", json={"room": room, "identity": identity})
    assert response.status_code == 201, response.content
    return response.json()["session_id"]


async def wait_until_ended(session_id: str, timeout: float = 15.0) -> None:
    """The agent's run ends once everything, the room included, is released."""
    run = get_host().runs[session_id]
    await asyncio.wait_for(run.ended.wait(), timeout)


async def assert_ended(session_id: str, reason: str) -> None:
    session = await VoiceSession.objects.aget(pk=session_id)
    assert (session.status, session.end_reason) == ("ended", reason)


async def test_a_token_creates_its_room_so_the_browser_can_join_before_the_session(
    api, gateway: FakeLiveKitGateway
) -> None:
    response = await api.get("/token", params={"room": "room-token", "identity": "alice"})
    assert response.status_code == 200, response.content
    media_room = (await RoomClaim.objects.aget(room="room-token")).livekit_room
    assert room_of(media_room) == "room-token"  # the claim's own LiveKit room
    assert gateway.created == [media_room] and gateway.open_rooms == {media_room}


async def test_a_token_is_still_minted_when_livekit_is_down(api, gateway: FakeLiveKitGateway, caplog) -> None:
    """The contract of GET /token is unchanged; the page's join then fails and says so."""
    gateway.reachable = False
    with caplog.at_level(logging.WARNING, logger="app.voice.http"):
        response = await api.get("/token", params={"room": "room-down", "identity": "alice"})
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"token", "url", "room", "identity"}
    assert [r.message for r in caplog.records] == ["room.create_failed"]
    assert caplog.records[0].room == "room-down"


async def test_delete_closes_the_room_once_after_telling_the_socket_why(
    api, gateway: FakeLiveKitGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = await start(api, "room-del")
    media_room = (await VoiceSession.objects.aget(pk=session_id)).livekit_room
    assert gateway.created == [media_room]  # created before the agent joined
    assert gateway.rooms["room-del"].name == media_room
    layer = channel_layer()
    follower = await layer.new_channel()  # what a transcript socket of the session hears
    await layer.group_add(transcript_group(session_id), follower)
    heard_before_delete: list[dict] = []
    delete_room = gateway.delete_room

    async def delete_after_checking(room: str) -> bool:
        with contextlib.suppress(TimeoutError):  # everything the group had by now
            while True:
                heard_before_delete.append((await asyncio.wait_for(layer.receive(follower), 0.2))["message"])
        return await delete_room(room)

    monkeypatch.setattr(gateway, "delete_room", delete_after_checking)
    assert (await api.delete(f"/session/{session_id}")).status_code == 204
    # Deleted by the time DELETE answers, after the socket's group heard why.
    assert gateway.deleted == [media_room] and not gateway.open_rooms
    assert heard_before_delete[-1] == {"event": "session_ended", "reason": "deleted"}
    # Repeating the DELETE, or any other late ending, deletes nothing more.
    assert (await api.delete(f"/session/{session_id}")).status_code == 204
    await get_host().shutdown()
    assert gateway.deleted == [media_room]
    await assert_ended(session_id, "deleted")


@pytest.mark.parametrize(
    ("event", "reason"),
    [("person_leaves", "participant_left"), ("lose_connection", "error")],
    ids=["participant-left", "connection-lost"],
)
async def test_the_room_going_away_closes_it_once(api, gateway: FakeLiveKitGateway, event: str, reason: str) -> None:
    room = f"room-{event}"
    session_id = await start(api, room)
    getattr(gateway.rooms[room], event)()
    await wait_until_ended(session_id)
    await assert_ended(session_id, reason)
    assert (await api.delete(f"/session/{session_id}")).status_code == 204
    assert gateway.deleted == [gateway.rooms[room].name]


async def test_nobody_joining_closes_the_room(api, gateway: FakeLiveKitGateway, settings) -> None:
    settings.VOICE_PARTICIPANT_TIMEOUT = 0.3
    gateway.script_room("room-empty", PersonScript(present=False))
    session_id = await start(api, "room-empty")
    await wait_until_ended(session_id)
    await assert_ended(session_id, "participant_left")
    assert names(gateway.deleted) == ["room-empty"]


async def test_shutdown_closes_every_room_once(api, gateway: FakeLiveKitGateway) -> None:
    ids = [await start(api, f"room-shut-{n}") for n in range(2)]
    await get_host().shutdown()
    assert sorted(names(gateway.deleted)) == ["room-shut-0", "room-shut-1"]
    for session_id in ids:
        await assert_ended(session_id, "shutdown")


async def test_a_failed_start_closes_the_room_it_created(
    api, gateway: FakeLiveKitGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(**_: str) -> None:
        raise ConnectionError("the agent could not join")

    monkeypatch.setattr(gateway, "join_room", refuse)
    response = await api.post("/session", json={"room": "room-fail", "identity": "alice"})
    assert response.status_code == 503, response.content
    assert names(gateway.created) == ["room-fail"] and gateway.deleted == gateway.created
    assert not gateway.open_rooms
    assert (await VoiceSession.objects.aget(room="room-fail")).end_reason == "error"


async def test_the_sweeper_closes_the_room_of_a_session_whose_host_died(gateway: FakeLiveKitGateway) -> None:
    long_ago = timezone.now() - timedelta(minutes=5)
    dead = await VoiceSession.objects.acreate(
        room="room-dead", livekit_room="room-dead~1", identity="x", status="running", heartbeat_at=long_ago
    )
    gateway.open_rooms.add("room-dead~1")  # its host created it, then died
    assert await sweeper.sweep_once() == 1
    assert gateway.deleted == ["room-dead~1"] and not gateway.open_rooms
    assert await sweeper.sweep_once() == 0
    assert gateway.deleted == ["room-dead~1"]
    await assert_ended(str(dead.id), "error")


async def test_delete_of_an_orphan_closes_its_room(gateway: FakeLiveKitGateway, settings) -> None:
    """No process hosts the agent any more: the DELETE itself ends it, and closes the room."""
    settings.VOICE_STOP_TIMEOUT = 0.2
    orphan = await VoiceSession.objects.acreate(
        room="room-orphan", livekit_room="room-orphan~1", identity="bob", status="running"
    )
    await lifecycle.stop_session(orphan)  # what DELETE /session/{id} does
    assert gateway.deleted == ["room-orphan~1"]
    await assert_ended(str(orphan.id), "deleted")


async def test_livekit_down_at_the_end_does_not_break_the_ending(api, gateway: FakeLiveKitGateway, caplog) -> None:
    session_id = await start(api, "room-lk-down")
    gateway.reachable = False
    with caplog.at_level(logging.WARNING, logger="app.voice.sessions"):
        assert (await api.delete(f"/session/{session_id}")).status_code == 204
    await assert_ended(session_id, "deleted")
    assert session_id not in get_host().runs  # the agent is gone too
    failures = [r for r in caplog.records if r.message == "room.close_failed"]
    assert [r.room for r in failures] == ["room-lk-down"]
    assert "unreachable" in failures[0].error


async def test_a_stalled_livekit_delays_an_ending_by_the_timeout_only(
    api, gateway: FakeLiveKitGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    stalled = asyncio.Event()

    async def hang(room: str) -> bool:
        stalled.set()
        await asyncio.Event().wait()  # never answers
        return True

    session_id = await start(api, "room-stalled")
    monkeypatch.setattr(ending, "ROOM_CLOSE_TIMEOUT", 0.3)
    monkeypatch.setattr(gateway, "delete_room", hang)
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert (await api.delete(f"/session/{session_id}")).status_code == 204
    assert stalled.is_set() and loop.time() - began < 5.0
    await assert_ended(session_id, "deleted")
