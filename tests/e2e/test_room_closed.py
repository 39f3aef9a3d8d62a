"""When a session ends, its LiveKit room is deleted on the real server: whoever is still in
it is disconnected, and the tokens minted for it cannot bring it back, not even once the
room name has passed to another visitor (each claim of a name has a LiveKit room of its
own). In a live room, the page plays the agent's audio and nobody else's.

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

import jwt
import numpy as np
import pytest
from livekit import api as lkapi
from livekit import rtc
from playwright.sync_api import Page

from app.voice.sessions.media_rooms import room_of
from devtools.stack import LIVEKIT_DEV_KEY, LIVEKIT_DEV_SECRET, Stack
from tests.e2e.support import Api, open_chat, press_start, press_stop, unique, wait_until, wait_until_ended

T = TypeVar("T")
RATE = 48000


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

    async def publish_tone(self) -> None:
        """Publish a microphone track that plays a 440 Hz tone (until the participant leaves)."""
        assert self.room is not None
        source = rtc.AudioSource(RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("tone", source)
        await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        samples = (np.sin(2 * np.pi * 440 * np.arange(RATE // 50) / RATE) * 8000).astype(np.int16)

        async def play() -> None:
            with contextlib.suppress(Exception):  # the room went away under it: the tone ends
                while self.room is not None and self.room.isconnected():
                    await source.capture_frame(rtc.AudioFrame(samples.tobytes(), RATE, 1, len(samples)))

        self.tone = asyncio.get_running_loop().create_task(play())

    async def leave(self) -> None:
        if self.room is not None:
            await self.room.disconnect()


def media_room(grant: dict[str, Any]) -> str:
    """The LiveKit room a GET /token answer joins (its JWT's room grant)."""
    return str(jwt.decode(grant["token"], options={"verify_signature": False})["video"]["room"])


def listener_token(room: str) -> str:
    """Another valid token for the (LiveKit) room: joining and listening, for its lifetime."""
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
    listener = clients.participant(grant["url"], listener_token(media_room(grant)))
    clients.run(person.join())  # the token works at once: GET /token created the room

    status, body = api.post("/session", {"room": room, "identity": identity})
    assert status == 201, body
    session_id = body["session_id"]
    clients.run(listener.join())
    agent = f"agent-{session_id[:8]}"
    wait_until(lambda: agent in listener.others() and identity in listener.others(), 20, "the listener sees both")
    assert media_room(grant) in clients.run(rooms_on_server(stack))

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
    assert media_room(grant) not in clients.run(rooms_on_server(stack))


def test_a_token_kept_from_an_earlier_claim_cannot_join_the_names_next_owner(
    stack: Stack, api: Api, clients: LoopThread
) -> None:
    """The eavesdropping finding: visitor A keeps the token of room R after its session ends;
    visitor B later takes R and talks. A's token, still within its lifetime, gets nowhere."""
    room, ann, ben = unique("reused"), unique("ann"), unique("ben")
    status, a_grant = api.get(f"/token?room={room}&identity={ann}")
    assert status == 200, a_grant
    a = clients.participant(a_grant["url"], a_grant["token"])
    clients.run(a.join())
    status, body = api.post("/session", {"room": room, "identity": ann})
    assert status == 201, body
    assert api.delete(f"/session/{body['session_id']}")[0] == 204
    wait_until(lambda: a.disconnect_reason is not None, 15, "A to be disconnected")

    b_api = Api(stack.backend_url)
    status, b_grant = b_api.get(f"/token?room={room}&identity={ben}")
    assert status == 200, b_grant  # the name passed to B
    b = clients.participant(b_grant["url"], b_grant["token"])
    clients.run(b.join())
    status, body = b_api.post("/session", {"room": room, "identity": ben})
    assert status == 201, body
    agent = f"agent-{body['session_id'][:8]}"
    wait_until(lambda: agent in b.others(), 20, "the agent in B's room")

    intruder = clients.participant(a.url, a.token)
    with pytest.raises(rtc.ConnectError):
        clients.run(intruder.join())
    assert b.others() == {agent}  # B's room holds B and the agent, nobody else
    on_server = clients.run(rooms_on_server(stack))
    assert media_room(b_grant) in on_server and media_room(a_grant) not in on_server
    assert {room_of(media_room(a_grant)), room_of(media_room(b_grant))} == {room}
    assert b_api.delete(f"/session/{body['session_id']}")[0] == 204


def test_the_page_plays_only_the_agents_audio(page: Page, stack: Stack, clients: LoopThread) -> None:
    """Someone else in the page's LiveKit room (here with a token forged from the server's
    key) publishes audio: the page does not play it, as it would have played a second
    'agent' before."""
    room = unique("only-agent")
    open_chat(page, stack, room=room, identity=unique("guest"))
    press_start(page)
    audio_elements = "() => document.querySelectorAll('audio').length"
    page.wait_for_function(audio_elements + " === 1")  # the agent's
    [livekit_room] = [r for r in clients.run(rooms_on_server(stack)) if room_of(r) == room]
    other = clients.participant(stack.livekit_url, listener_token(livekit_room))
    with page.expect_console_message(lambda m: "not the agent" in m.text, timeout=20_000):
        clients.run(other.join())
        clients.run(other.publish_tone())
    assert page.evaluate(audio_elements) == 1
    assert page.evaluate("() => document.getElementById('agent-audio').srcObject.getAudioTracks().length") == 1
    press_stop(page)
