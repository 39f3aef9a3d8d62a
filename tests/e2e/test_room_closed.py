"""When a session ends, its LiveKit room is deleted on the real server: whoever is still in
it is disconnected, and the tokens minted for it cannot bring it back.

The participants are LiveKit clients from Python (the same SDK family as the page's): the
person, who joins with the token GET /token gave them (before POST /session, as the page
does), and a listener holding another valid token for the room, who tries to stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from livekit import api as lkapi
from livekit import rtc

from devtools.stack import LIVEKIT_DEV_KEY, LIVEKIT_DEV_SECRET, Stack
from tests.e2e.support import Api, unique, wait_until, wait_until_ended

T = TypeVar("T")


class LoopThread:
    """An asyncio loop of its own for the LiveKit clients, driven from the sync test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.participants: list[Participant] = []

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def participant(self, url: str, token: str) -> Participant:
        self.participants.append(Participant(url, token))
        return self.participants[-1]

    def close(self) -> None:
        """Whatever the test's outcome, every client leaves before the loop stops."""
        for participant in self.participants:
            with contextlib.suppress(Exception):
                self.run(participant.leave(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def clients() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


class Participant:
    """One LiveKit client: joins with a token, remembers why it was disconnected."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.room: rtc.Room | None = None
        self.disconnect_reason: int | None = None

    async def join(self) -> None:
        room = rtc.Room()
        room.on("disconnected", self._disconnected)
        await room.connect(self.url, self.token, rtc.RoomOptions(auto_subscribe=True))
        self.room = room

    def _disconnected(self, reason: int) -> None:
        self.disconnect_reason = reason

    def others(self) -> set[str]:
        return set(self.room.remote_participants) if self.room else set()

    async def leave(self) -> None:
        if self.room is not None:
            await self.room.disconnect()


def listener_token(room: str) -> str:
    """Another valid token for the room: joining and listening, for the token's lifetime."""
    grants = lkapi.VideoGrants(room_join=True, room=room, can_subscribe=True, can_publish=True)
    return (
        lkapi.AccessToken(LIVEKIT_DEV_KEY, LIVEKIT_DEV_SECRET)
        .with_identity(unique("listener"))
        .with_grants(grants)
        .with_ttl(timedelta(minutes=15))
        .to_jwt()
    )


async def rooms_on_server(stack: Stack) -> set[str]:
    url = stack.livekit_url.replace("ws://", "http://", 1)
    async with lkapi.LiveKitAPI(url, LIVEKIT_DEV_KEY, LIVEKIT_DEV_SECRET) as server:
        listed = await server.room.list_rooms(lkapi.ListRoomsRequest())
    return {room.name for room in listed.rooms}


@pytest.mark.parametrize("ending", ["delete", "person_leaves"])
def test_the_room_is_closed_when_the_session_ends(stack: Stack, api: Api, clients: LoopThread, ending: str) -> None:
    room, identity = unique("closed"), unique("guest")
    status, grant = api.get(f"/token?room={room}&identity={identity}")
    assert status == 200, grant
    person = clients.participant(grant["url"], grant["token"])
    listener = clients.participant(grant["url"], listener_token(room))
    clients.run(person.join())  # the token works at once: GET /token created the room

    status, body = api.post("/session", {"room": room, "identity": identity})
    assert status == 201, body
    session_id = body["session_id"]
    clients.run(listener.join())
    agent = f"agent-{session_id[:8]}"
    wait_until(lambda: agent in listener.others() and identity in listener.others(), 20, "the listener sees both")
    assert room in clients.run(rooms_on_server(stack))

    if ending == "delete":
        assert api.delete(f"/session/{session_id}")[0] == 204
    else:
        clients.run(person.leave())
    session, _ = wait_until_ended(api, session_id, 30)
    assert session["end_reason"] == ("deleted" if ending == "delete" else "participant_left")

    # The listener tried to stay: the server threw it out because the room was deleted.
    wait_until(lambda: listener.disconnect_reason is not None, 15, "the listener to be disconnected")
    assert listener.disconnect_reason == rtc.DisconnectReason.ROOM_DELETED
    if ending == "delete":
        wait_until(lambda: person.disconnect_reason is not None, 15, "the person to be disconnected")
        assert person.disconnect_reason == rtc.DisconnectReason.ROOM_DELETED

    # Neither token, both still within their lifetime, gets back in or re-creates the room.
    for who in (listener, person):
        again = clients.participant(who.url, who.token)
        with pytest.raises(rtc.ConnectError):
            clients.run(again.join())
    assert room not in clients.run(rooms_on_server(stack))
