"""Everything the backend needs from a LiveKit server, behind one small seam.

Token minting is local (a signed JWT); joining, creating and deleting rooms, dispatching
agents and the readiness probe talk to the server. The server is configured not to create
rooms on join (``room.auto_create: false``): a room exists from ``create_room`` (when a
token is minted for it, and again when its session starts) until ``delete_room`` (when its
session ends). Each claim of a room name has a LiveKit room of its own
(sessions.media_rooms), so a token minted for a session's room joins nothing once the
session is over, not even the room of the name's next owner.

It sits in the bottom layer, beside the models: the web views, the session lifecycle, the
agent and the session endings all talk to the server through ``get_gateway()``. Unit tests
and the offline benchmark route it to a fake with ``using_gateway``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Protocol

import aiohttp
import httpx
from django.conf import settings
from livekit import api, rtc
from livekit.agents import Agent, AgentSession, room_io
from livekit.agents.voice.io import TextOutput
from livekit.agents.voice.room_io.types import TextInputCallback

log = logging.getLogger("app.voice.livekit")
# Room administration calls are small; a LiveKit server that does not answer within this
# long is treated as down (the caller logs and goes on where it can).
ROOM_API_TIMEOUT = 5.0
# Right after the Redis that LiveKit nodes share restarts, no node has reported itself again
# and room creation fails with "could not find any available nodes" for a second or two: it
# is retried this often for this long before the caller hears of it.
NO_NODE_RETRY = 0.5
NO_NODE_PATIENCE = 6.0
# A departure seen while the agent's own connection is re-established, or this soon after,
# is the media server's doing (a LiveKit node lost: the room moves, its people with it).
RECONNECT_WINDOW = 5.0

RpcHandler = Callable[[rtc.RpcInvocationData], Awaitable[str]]


class AgentRoom(Protocol):
    """The agent's presence in one room: what the session runner needs, nothing more."""

    def has_participant(self, identity: str) -> bool: ...

    def on_participant_joined(self, callback: Callable[[str], None]) -> None: ...

    def on_participant_left(self, callback: Callable[[str], None]) -> None: ...

    def on_connection_lost(self, callback: Callable[[], None]) -> None: ...

    def reconnected_lately(self) -> bool:
        """Whether the agent's link to the server is being, or was just, re-established."""
        ...

    async def start_session(
        self,
        session: AgentSession,
        agent: Agent,
        *,
        participant_identity: str,
        transcription: TextOutput | None = None,
        text_input: TextInputCallback | None = None,
    ) -> None:
        """Start `session` on the room's media. `transcription` receives the agent's words
        as its audio plays them (transcription synchronised with playout); `text_input`
        handles what the person types (LiveKit's text input for agents, topic "lk.chat")."""
        ...

    def register_rpc_method(self, method: str, handler: RpcHandler) -> None:
        """Answer the room's RPC calls of `method` to the agent (LiveKit RPC); what `handler`
        returns is the answer, an ``rtc.RpcError`` it raises the caller's error."""
        ...

    async def aclose(self) -> None: ...


class LiveKitRoom:
    """AgentRoom over a connected ``rtc.Room``: the session's audio flows through RoomIO."""

    def __init__(self, room: rtc.Room) -> None:
        self.room = room
        self._closing = False
        self._reconnecting = False
        self._reconnected_at = -RECONNECT_WINDOW
        room.on("reconnecting", self._on_reconnecting)
        room.on("reconnected", self._on_reconnected)

    def _on_reconnecting(self) -> None:
        self._reconnecting = True

    def _on_reconnected(self) -> None:
        self._reconnecting, self._reconnected_at = False, time.monotonic()

    def reconnected_lately(self) -> bool:
        return self._reconnecting or time.monotonic() - self._reconnected_at < RECONNECT_WINDOW

    def has_participant(self, identity: str) -> bool:
        return identity in self.room.remote_participants

    def on_participant_joined(self, callback: Callable[[str], None]) -> None:
        self.room.on("participant_connected", lambda p: callback(p.identity))

    def on_participant_left(self, callback: Callable[[str], None]) -> None:
        self.room.on("participant_disconnected", lambda p: callback(p.identity))

    def on_connection_lost(self, callback: Callable[[], None]) -> None:
        # Our own leave (aclose) is not a lost connection.
        self.room.on("disconnected", lambda *_: None if self._closing else callback())

    async def start_session(
        self,
        session: AgentSession,
        agent: Agent,
        *,
        participant_identity: str,
        transcription: TextOutput | None = None,
        text_input: TextInputCallback | None = None,
    ) -> None:
        await session.start(
            agent=agent,
            room=self.room,
            room_options=room_io.RoomOptions(
                participant_identity=participant_identity,
                # Silero listens at 16 kHz: asking for it here resamples once, in the SDK.
                # The browser already levels the microphone (getUserMedia's autoGainControl),
                # so a second gain control here would only cost CPU on every frame.
                audio_input=room_io.AudioInputOptions(sample_rate=16000, auto_gain_control=False),
                # The runner ends the session itself on any departure, network drops included.
                close_on_disconnect=False,
                # Typed lines arrive on the "lk.chat" text stream (enabled by default).
                text_input=room_io.TextInputOptions(text_input_cb=text_input) if text_input else True,
                # The agent's transcript is released word by word as its audio plays, to the
                # room (lk.transcription) and then to `transcription`.
                text_output=room_io.TextOutputOptions(sync_transcription=True, next_in_chain=transcription),
            ),
            record=False,
            # No RemoteSession over the room: the page follows the session through our own
            # socket, and nobody else in the room may drive or observe it.
            session_host=False,
        )

    def register_rpc_method(self, method: str, handler: RpcHandler) -> None:
        self.room.local_participant.register_rpc_method(method, handler)

    async def aclose(self) -> None:
        self._closing = True
        await self.room.disconnect()


class LiveKitGateway:
    def __init__(self, *, url: str, api_key: str, api_secret: str) -> None:
        self.url = url
        self._api_key = api_key
        self._api_secret = api_secret

    def mint_token(
        self, *, room: str, identity: str, ttl: timedelta, name: str | None = None, agent: bool = False
    ) -> str:
        """A JWT that lets `identity` join `room` only, to publish what a voice call needs
        (microphone audio, and data for typed lines) and subscribe; nothing admin. `agent`
        marks the participant as the room's agent: the page plays only an agent's audio."""
        grants = api.VideoGrants(
            room_join=True,
            room=room,
            can_publish=True,
            can_publish_sources=["microphone"],
            can_subscribe=True,
            can_publish_data=True,
        )
        token = (
            api.AccessToken(self._api_key, self._api_secret)
            .with_identity(identity)
            .with_name(name or identity)
            .with_grants(grants)
            .with_ttl(ttl)
        )
        if agent:
            token = token.with_kind("agent")
        return token.to_jwt()

    async def join_room(self, *, room: str, identity: str) -> AgentRoom:
        """Connect a server-side participant (the agent) to `room`."""
        connection = rtc.Room()
        token = self.mint_token(room=room, identity=identity, ttl=timedelta(minutes=5), name="Agent", agent=True)
        await connection.connect(self.url, token, rtc.RoomOptions(auto_subscribe=True))
        return LiveKitRoom(connection)

    async def dispatch_agent(self, *, room: str, agent_name: str, metadata: str) -> None:
        """Ask LiveKit to send a registered agent worker into `room` (explicit dispatch)."""
        async with api.LiveKitAPI(self._http_url, self._api_key, self._api_secret) as lkapi:
            await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=agent_name, room=room, metadata=metadata)
            )

    async def create_room(self, room: str) -> None:
        """Create `room` on the server (a no-op when it exists): with rooms not created on
        join, only a created room can be joined."""
        deadline = time.monotonic() + NO_NODE_PATIENCE
        while True:
            try:
                async with self._api() as lkapi:
                    await lkapi.room.create_room(api.CreateRoomRequest(name=room))
                return
            except api.TwirpError as exc:
                if "available nodes" not in exc.message or time.monotonic() >= deadline:
                    raise
                log.info("room.create_retry", extra={"room": room, "error": exc.message})
            await asyncio.sleep(NO_NODE_RETRY)

    async def delete_room(self, room: str) -> bool:
        """Delete `room`: everyone in it is disconnected, and since rooms are not created on
        join, no token minted for it can enter it again. False when there was no such room."""
        async with self._api() as lkapi:
            try:
                await lkapi.room.delete_room(api.DeleteRoomRequest(room=room))
            except api.TwirpError as exc:
                if exc.code == api.TwirpErrorCode.NOT_FOUND:
                    return False
                raise
        return True

    def _api(self) -> api.LiveKitAPI:
        timeout = aiohttp.ClientTimeout(total=ROOM_API_TIMEOUT)
        return api.LiveKitAPI(self._http_url, self._api_key, self._api_secret, timeout=timeout)

    @property
    def _http_url(self) -> str:
        return self.url.replace("wss://", "https://", 1).replace("ws://", "http://", 1)

    async def ping(self, timeout: float = 2.0) -> None:
        """Raise if the LiveKit server does not answer its HTTP health check."""
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(self._http_url.rstrip("/") + "/")
            response.raise_for_status()


_in_use: LiveKitGateway | None = None


def get_gateway() -> LiveKitGateway:
    """The gateway to the configured server: built from the settings on each call (a few
    strings, no connection), unless a fake is in use."""
    return _in_use or LiveKitGateway(
        url=settings.LIVEKIT_URL,
        api_key=settings.LIVEKIT_API_KEY,
        api_secret=settings.LIVEKIT_API_SECRET,
    )


@contextlib.contextmanager
def using_gateway(gateway: LiveKitGateway) -> Iterator[LiveKitGateway]:
    """Route every call to the server through `gateway` inside the block (tests, benchmarks)."""
    global _in_use
    previous, _in_use = _in_use, gateway
    try:
        yield gateway
    finally:
        _in_use = previous


async def close_room(room: str) -> None:
    """Delete a session's room at its end (sessions.ending calls this)."""
    if await get_gateway().delete_room(room):
        log.info("room.deleted", extra={"room": room})
