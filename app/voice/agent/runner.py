"""One agent in one room: join, run the AgentSession, bridge its events, leave.

An ``AgentRun`` owns everything a session allocates (room connection, session,
publisher, control listener) and ``stop()`` releases all of it exactly once,
whatever asked first: DELETE, the person leaving, a lost connection, shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from livekit.agents import AgentSession, CloseEvent, CloseReason, utils

from app.voice.agent import event_bridge
from app.voice.agent.providers import ProviderSet, build_providers
from app.voice.agent.push_to_talk import Assistant, PushToTalk
from app.voice.agent.turn import turn_handling
from app.voice.agent.typed_input import TypedInputGate
from app.voice.livekit_gateway import AgentRoom, get_gateway
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
# An ending that fails (the database or Redis unreachable) is tried this many times, the
# delay doubling between tries: a blip ends the row with its true reason. A longer outage is
# left to the sweeper, which retries forever anyway and ends the row (reason error) once its
# heartbeat, stopped by now, is stale; retrying here for longer would keep the dead run, its
# worker job and the host's shutdown waiting on the database.
END_ATTEMPTS = 3
END_RETRY_DELAY = 0.5
# A control listener whose receive fails (Redis restarting) retries after this long,
# doubling up to the max.
CONTROL_RETRY_DELAY = 0.2
CONTROL_RETRY_MAX_DELAY = 5.0
# How long an ended run gives its listener to answer the stop requests that reached it
# before it left the control group.
CONTROL_DRAIN_TIMEOUT = 1.0
CONTROL_CLOSE = "session.control_close"  # the run's last message to its own listener


class AgentRun:
    def __init__(self, info: SessionInfo, providers: ProviderSet | None = None) -> None:
        """`providers`: the services to talk through (default: the set the settings name)."""
        self.info = info
        self.providers = providers
        self.room: AgentRoom | None = None
        self.session: AgentSession | None = None
        self.publisher: event_bridge.TranscriptPublisher | None = None
        self.push_to_talk: PushToTalk | None = None
        self._control_task: asyncio.Task[None] | None = None
        self._timeout_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        self._control_channel = ""
        self._stop_replies: list[str] = []
        self._start_settled: asyncio.Event | None = None  # set once start() has succeeded or failed
        self.ended = asyncio.Event()

    @property
    def agent_identity(self) -> str:
        return f"agent-{self.info.session_id[:8]}"

    async def start(self, room: AgentRoom | None = None) -> None:
        """Join the room (or use the one a dispatcher joined) and start talking. A stop
        asked for meanwhile waits until the start has settled, so it releases all the start
        took; a start that fails is a stop (reason error, unless one was asked for), then
        raises."""
        if self._stop_task is not None:
            raise RuntimeError("the session was stopped before its agent started")
        self._start_settled = asyncio.Event()
        try:
            await self._start(room)
        except BaseException:
            self._start_settled.set()
            await asyncio.shield(self.request_stop(EndReason.ERROR))
            raise
        self._start_settled.set()
        if self._stop_task is None:  # a stop under way releases everything: start nothing more
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
        providers = self.providers or build_providers(info)
        # Finals the database could not take for too long are lost: the session ends, saying so.
        self.publisher = event_bridge.TranscriptPublisher(
            info.session_id, on_overflow=lambda: self.request_stop(EndReason.ERROR)
        )
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
            Assistant(instructions=settings.SYSTEM_PROMPT),
            participant_identity=info.identity,
            transcription=bridge.text_output,
            text_input=TypedInputGate(
                bridge.on_typed_input,
                self.publisher.publish,
                per_minute=settings.VOICE_TYPED_PER_MINUTE,
                burst=settings.VOICE_TYPED_BURST,
            ),
        )
        # Hands-free by default; the person's page switches push-to-talk on and off over RPC.
        self.push_to_talk = PushToTalk(self.session, person=info.identity, session_id=info.session_id)
        for method, handler in self.push_to_talk.rpc_methods().items():
            self.room.register_rpc_method(method, handler)
        if not self.room.has_participant(info.identity):
            self._timeout_task = asyncio.create_task(self._end_if_nobody_joins())
        self.session.generate_reply(instructions=GREETING_INSTRUCTIONS)

    async def _listen_for_control(self) -> None:
        """Stop requests reach us through the channel layer, from any process."""
        layer = channel_layer()
        self._control_channel = await layer.new_channel()
        await layer.group_add(control_group(self.info.session_id), self._control_channel)
        self._control_task = asyncio.create_task(self._listen(), name=f"control-{self.info.session_id}")

    async def _listen(self) -> None:
        """Until the run has ended and left its group (_stop_listening). A failure (Redis
        restarting) is logged and retried, and the group joined again (a restarted Redis has
        forgotten it): a dead listener would leave the session to its timeouts."""
        layer = channel_layer()
        delay, rejoin = CONTROL_RETRY_DELAY, False
        while True:
            try:
                if rejoin and not self.ended.is_set():  # once ended, the run is leaving the group
                    await layer.group_add(control_group(self.info.session_id), self._control_channel)
                rejoin = False
                message = await layer.receive(self._control_channel)
                if message.get("type") == CONTROL_CLOSE:
                    return
                if message.get("type") == "session.stop":
                    await self._on_stop_request(message)
                delay = CONTROL_RETRY_DELAY
            except Exception as exc:
                log.warning(
                    "session.control_failed",
                    extra={"session_id": self.info.session_id, "error": repr(exc), "retry_in": delay},
                )
                await asyncio.sleep(delay)
                delay, rejoin = min(2 * delay, CONTROL_RETRY_MAX_DELAY), True

    async def _on_stop_request(self, message: dict[str, Any]) -> None:
        reply_to = message.get("reply_to")
        if self.ended.is_set():  # a request that came while the run was leaving: it is over
            if reply_to:
                await self._answer(reply_to)
            return
        if reply_to:
            self._stop_replies.append(reply_to)
        self.request_stop(EndReason(message.get("reason", EndReason.DELETED)))

    # Room and session callbacks are sync: each schedules the one stop.
    def _on_participant_left(self, identity: str) -> None:
        if identity == self.info.identity:
            # Gone as our own link came back: the media server failed them, not the person.
            lost = self.room is not None and self.room.reconnected_lately()
            self.request_stop(EndReason.ERROR if lost else EndReason.PARTICIPANT_LEFT)

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
        if self._start_settled is not None:
            await self._start_settled.wait()  # a stop during the start releases what it took
        try:
            try:
                await self._release()
            finally:
                await self._end(reason)
        finally:
            # Whatever failed, the run is over: its host, its job and every stop request
            # must hear so (the sweeper ends a row that could not be ended here).
            self.ended.set()
            await self._stop_listening()

    async def _end(self, reason: EndReason) -> None:
        for attempt in range(1, END_ATTEMPTS + 1):
            try:
                await end_session(self.info, reason)
                return
            except Exception as exc:
                log.warning(
                    "session.end_failed",
                    extra={"session_id": self.info.session_id, "attempt": attempt, "error": repr(exc)},
                )
            if attempt < END_ATTEMPTS:
                await asyncio.sleep(END_RETRY_DELAY * 2 ** (attempt - 1))
        log.error("session.end_left_to_sweeper", extra={"session_id": self.info.session_id})

    async def _stop_listening(self) -> None:
        """Answer the stop requests heard so far, then leave the control group. Until then
        the listener answers new ones itself (a DELETE that came while the run was ending
        must not wait out VOICE_STOP_TIMEOUT); one sent after finds the row ended
        (lifecycle.stop_session)."""
        for reply_to in self._stop_replies:
            await self._answer(reply_to)
        if self._control_task is None:
            return
        layer = channel_layer()
        try:
            await layer.group_discard(control_group(self.info.session_id), self._control_channel)
            # Queued behind every request that reached the channel before we left: all are answered.
            await layer.send(self._control_channel, {"type": CONTROL_CLOSE})
            await asyncio.wait({self._control_task}, timeout=CONTROL_DRAIN_TIMEOUT)
        except Exception as exc:
            log.warning("session.control_leave_failed", extra={"session_id": self.info.session_id, "error": repr(exc)})
        finally:
            await utils.aio.cancel_and_wait(self._control_task)

    async def _answer(self, reply_to: str) -> None:
        try:
            await channel_layer().send(reply_to, {"type": "session.stopped"})
        except Exception as exc:  # that DELETE waits out its timeout; the others must not
            log.warning("session.stop_reply_failed", extra={"session_id": self.info.session_id, "error": repr(exc)})

    async def _release(self) -> None:
        for timer in (self._timeout_task, self._heartbeat_task):
            if timer is not None:
                await utils.aio.cancel_and_wait(timer)
        if self.session is not None:
            self.session.off("close", self._on_session_close)
            await self._close_logged("session.close_failed", self.session.aclose)
        if self.publisher is not None:
            await self.publisher.aclose()
        if self.room is not None:
            await self._close_logged("room.leave_failed", self.room.aclose)

    async def _close_logged(self, event: str, close: Callable[[], Awaitable[None]]) -> None:
        """A part that fails to close is logged, and the rest is still released."""
        try:
            await close()
        except Exception as exc:
            log.warning(event, extra={"session_id": self.info.session_id, "error": repr(exc)})
