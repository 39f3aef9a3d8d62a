"""LiveKit clients from Python for the end-to-end tests (the same SDK family as the page's):
people who join a room with a token, publish a tone, and remember why they were dropped,
on an asyncio loop of their own driven from the sync tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np
from livekit import api as lkapi
from livekit import rtc

from devtools.stack import LIVEKIT_DEV_KEY, LIVEKIT_DEV_SECRET

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

    @property
    def room_name(self) -> str:
        assert self.room is not None, "not joined"
        return self.room.name

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


async def rooms_on_server(livekit_url: str) -> set[str]:
    """The rooms the LiveKit server (any node of it) lists."""
    url = livekit_url.replace("ws://", "http://", 1)
    async with lkapi.LiveKitAPI(url, LIVEKIT_DEV_KEY, LIVEKIT_DEV_SECRET) as server:
        listed = await server.room.list_rooms(lkapi.ListRoomsRequest())
    return {room.name for room in listed.rooms}


def agent_in(room: rtc.Room | None) -> bool:
    """Whether the room holds an agent participant (as the page tells it: its kind)."""
    kind = rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    return room is not None and room.isconnected() and any(p.kind == kind for p in room.remote_participants.values())
