"""One agent in one room: join, run the AgentSession, bridge its events, leave.

An ``AgentRun`` owns everything a session allocates (room connection, session,
publisher, control listener) and ``stop()`` releases all of it exactly once,
whatever asked first: DELETE, the person leaving, a lost connection, shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from django.conf import settings
from livekit.agents import Agent, AgentSession, CloseEvent, CloseReason, utils

from app.voice.agent import event_bridge
from app.voice.agent.livekit_gateway import AgentRoom, get_gateway
from app.voice.agent.providers import build_providers
from app.voice.agent.turn import turn_handling
from app.voice.agent.typed_input import TypedInputGate
from app.voice.models import EndReason
from app.voice.sessions import store
from app.voice.sessions.ending import end_session
from app.voice.sessions.groups import channel_layer, control_group
from app.voice.sessions.info import SessionInfo

log = logging.getLogger("app.voice.agent")

# Why the session closed itself → why ours ended. Our own stop detaches the close handler
# before closing, so a "user initiated" close seen here came from the host: a worker's
# job shutting down closes its session with aclose().
CLOSE_REASONS = {
    CloseReason.ERROR: EndReason.ERROR,
    CloseReason.JOB_SHUTDOWN: EndReason.SHUTDOWN,
    CloseReason.USER_INITIATED: EndReason.SHUTDOWN,
    CloseReason.PARTICIPANT_DISCONNECTED: EndReason.PARTICIPANT_LEFT,
    CloseReason.TASK_COMPLETED: EndReason.DELETED,
}
GREETING_INSTRUCTIONS = "Greet the user warmly in one short sentence and offer your help."
# On close the session waits this long for a last final transcript (library default 2 s);
# the person has left or pressed Stop, so a prompt stop matters more than a trailing word.
CLOSE_TRANSCRIPT_TIMEOUT = 0.5


class AgentRun:
    def __init__(self, info: SessionInfo) -> None:
        self.info = info
        self.room: AgentRoom | None = None
        self.session: AgentSession | None = None
        self.publisher: event_bridge.TranscriptPublisher | None = None
        self._control_task: asyncio.Task[None] | None = None
        self._timeout_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._control_channel = ""
        self._stop_replies: list[str] = []
        self.ended = asyncio.Event()

    @property
    def agent_identity(self) -> str:
        return f"agent-{self.info.session_id[:8]}"

    async def start(self, room: AgentRoom | None = None) -> None:
        """Join the room (or use the one a dispatcher joined) and start talking; on
        failure, release what was taken and raise."""
        try:
            await self._start(room)
        except BaseException:
            await self._release()
            raise
        self._heartbeat_task = asyncio.create_task(self._heartbeat())

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(settings.VOICE_HEARTBEAT_INTERVAL)
            try:
                await store.heartbeat(self.info.session_id)
            except Exception:
                # A missed beat is harmless; a silent stop would get the session swept.
                log.warning("session.heartbeat_failed", extra={"session_id": self.info.session_id}, exc_info=True)

    async def _start(self, room: AgentRoom | None) -> None:
        info = self.info
        providers = build_providers(info)
        self.publisher = event_bridge.TranscriptPublisher(info.session_id)
        await self._listen_for_control()
        self.room = room or await get_gateway().join_room(room=info.livekit_room, identity=self.agent_identity)
        self.room.on_participant_left(self._on_participant_left)
        self.room.on_participant_joined(self._on_participant_joined)
        self.room.on_connection_lost(self._on_connection_lost)

        bridge = event_bridge.SessionBridge(self.publisher.publish)
        self.session = AgentSession(
            vad=providers.vad,
            stt=providers.stt,
            llm=providers.llm,
            tts=providers.tts,
            turn_handling=turn_handling(),
            # No echo warm-up: the browser cancels the agent's echo itself (getUserMedia's
            # echoCancellation), and during the library's warm-up (3 s from the agent's first
            # sound) the recogniser hears silence instead of the person and they cannot
            # interrupt: whoever talked over the greeting lost their words.
            aec_warmup_duration=None,
            tts_text_transforms=bridge.tts_text_transforms,
            session_close_transcript_timeout=CLOSE_TRANSCRIPT_TIMEOUT,
        )
        bridge.attach(self.session)
        self.session.on("close", self._on_session_close)
        await self.room.start_session(
            self.session,
            Agent(instructions=settings.SYSTEM_PROMPT),
            participant_identity=info.identity,
            transcription=bridge.text_output,
            text_input=TypedInputGate(
                bridge.on_typed_input,
                self.publisher.publish,
                per_minute=settings.VOICE_TYPED_PER_MINUTE,
                burst=settings.VOICE_TYPED_BURST,
            ),
        )
        if not self.room.has_participant(info.identity):
            self._timeout_task = asyncio.create_task(self._end_if_nobody_joins())
        self.session.generate_reply(instructions=GREETING_INSTRUCTIONS)

    async def _listen_for_control(self) -> None:
        """Stop requests reach us through the channel layer, from any process."""
        layer = channel_layer()
        self._control_channel = await layer.new_channel()
        await layer.group_add(control_group(self.info.session_id), self._control_channel)

        async def listen() -> None:
            while True:
                message = await layer.receive(self._control_channel)
                if message.get("type") == "session.stop":
                    if reply_to := message.get("reply_to"):
                        self._stop_replies.append(reply_to)
                    self.request_stop(EndReason(message.get("reason", EndReason.DELETED)))

        self._control_task = asyncio.create_task(listen(), name=f"control-{self.info.session_id}")

    # Room and session callbacks are sync: each schedules the one stop.
    def _on_participant_left(self, identity: str) -> None:
        if identity == self.info.identity:
            self.request_stop(EndReason.PARTICIPANT_LEFT)

    def _on_participant_joined(self, identity: str) -> None:
        if identity == self.info.identity and self._timeout_task:
            self._timeout_task.cancel()

    def _on_connection_lost(self) -> None:
        self.request_stop(EndReason.ERROR)

    def _on_session_close(self, ev: CloseEvent) -> None:
        """The session closed itself (an error, or its job shutting down)."""
        if ev.error is not None:
            log.error(
                "session.agent_error",
                extra={"session_id": self.info.session_id, "room": self.info.room, "error": str(ev.error)},
            )
        self.request_stop(CLOSE_REASONS.get(ev.reason, EndReason.ERROR))

    async def _end_if_nobody_joins(self) -> None:
        await asyncio.sleep(settings.VOICE_PARTICIPANT_TIMEOUT)
        self.request_stop(EndReason.PARTICIPANT_LEFT)

    def request_stop(self, reason: EndReason) -> asyncio.Task[None]:
        if self._stop_task is None:
            self._stop_task = asyncio.create_task(self._shutdown(reason))
        return self._stop_task

    async def stop(self, reason: EndReason) -> None:
        """Idempotent: the first reason wins; every caller returns once all is released."""
        await asyncio.shield(self.request_stop(reason))

    async def _shutdown(self, reason: EndReason) -> None:
        try:
            await self._release()
        finally:
            await end_session(self.info, reason)
            self.ended.set()
            layer = channel_layer()
            for reply_to in self._stop_replies:
                await layer.send(reply_to, {"type": "session.stopped"})

    async def _release(self) -> None:
        for timer in (self._timeout_task, self._heartbeat_task):
            if timer is not None:
                await utils.aio.cancel_and_wait(timer)
        if self._control_task is not None:
            await utils.aio.cancel_and_wait(self._control_task)
            await channel_layer().group_discard(
                control_group(self.info.session_id), self._control_channel
            )
        if self.session is not None:
            self.session.off("close", self._on_session_close)
            with contextlib.suppress(Exception):
                await self.session.aclose()
        if self.publisher is not None:
            await self.publisher.aclose()
        if self.room is not None:
            with contextlib.suppress(Exception):
                await self.room.aclose()
