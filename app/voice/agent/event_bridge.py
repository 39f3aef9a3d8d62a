"""AgentSession events → the transcript socket's messages.

One source per message kind, so nothing is sent twice: user transcripts from
``user_input_transcribed``, typed lines from LiveKit's text input for agents (the
``lk.chat`` text stream, through ``on_typed_input``), agent finals from
``conversation_item_added``, the agent's words in step with its audio from the
transcription that livekit-agents synchronises with playout (``text_output``), speaking
events from the user and agent state changes, the agent's state from
``agent_state_changed``. A reply's latency comes from the session's own per-turn metrics
(``ChatMessage.metrics`` of the person's turn and of the reply). A reply is marked
interrupted only when words of it went unsaid: the session flags any reply it stopped,
even in the silence after its last word, so the bridge also hears each reply's whole text
on its way to the TTS (``tts_text_transforms``) and compares. Messages are numbered,
finals are persisted, then everything goes to the session's channel-layer group,
strictly in the order the session emitted them. A final the database refuses (it is
unreachable) is sent anyway and written, in order, once the database is back; one that
cannot be written by the session's end is reported lost, never dropped silently.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError
from livekit.agents import room_io
from livekit.agents.voice import io
from livekit.agents.voice.agent_session import DEFAULT_TTS_TEXT_TRANSFORMS
from livekit.agents.voice.transcription.text_transforms import TextTransforms

from app.voice.contract import messages
from app.voice.sessions import store
from app.voice.sessions.groups import channel_layer, transcript_group

if TYPE_CHECKING:
    from livekit.agents import AgentSession
    from livekit.agents.llm import MetricsReport
    from livekit.agents.voice.events import (
        AgentStateChangedEvent,
        ConversationItemAddedEvent,
        UserInputTranscribedEvent,
        UserStateChangedEvent,
    )

log = logging.getLogger("app.voice.bridge")

Publish = Callable[[messages.Message], None]

# Finals the database refused are written again after this long, the delay doubling up to
# the max while it stays down; at the session's end, CLOSE_ATTEMPTS more tries.
RETRY_DELAY = 0.5
RETRY_MAX_DELAY = 5.0
CLOSE_ATTEMPTS = 3
LINES_LOST = "transcript_lines_lost"


@dataclass(frozen=True)
class _Final:
    seq: int
    message: messages.Message


class TranscriptPublisher:
    """Ordered, non-blocking outlet: callbacks enqueue, one task persists and fans out.

    A final is written before it is sent (a late subscriber reads the history after joining
    the group, so it misses nothing). While the database is unreachable the live stream does
    not wait for it: a refused final is sent at once and kept, with the finals after it, in a
    buffer of VOICE_FINALS_BUFFER lines written in order when a retry gets through. A final
    that finds the buffer full is lost: `on_overflow` is called (the run ends the session).
    The lines still unwritten at the end are lost too; all lost lines are logged and
    reported on the socket by their seqs."""

    def __init__(self, session_id: str, *, on_overflow: Callable[[], object] | None = None) -> None:
        self.session_id = session_id
        self._queue: asyncio.Queue[messages.Message | None] = asyncio.Queue()
        self._seq = 0
        self._unwritten: deque[_Final] = deque()
        self._lost: list[int] = []
        self._retry_delay = RETRY_DELAY
        self._retry_at = 0.0  # loop time of the next write of the unwritten lines
        self._on_overflow = on_overflow
        self._task = asyncio.create_task(self._run(), name=f"publisher-{session_id}")

    def publish(self, message: messages.Message) -> None:
        self._queue.put_nowait(message)

    async def aclose(self) -> None:
        """Deliver everything already published, then stop."""
        self._queue.put_nowait(None)
        await self._task

    async def _run(self) -> None:
        layer = channel_layer()
        group = transcript_group(self.session_id)
        loop = asyncio.get_running_loop()
        while True:
            if self._unwritten and loop.time() >= self._retry_at:
                await self._write_unwritten()
            try:
                async with asyncio.timeout_at(self._retry_at if self._unwritten else None):
                    message = await self._queue.get()
            except TimeoutError:
                continue  # time to retry the unwritten lines
            if message is None:
                break
            self._seq += 1
            numbered = messages.with_seq(message, self._seq)
            if messages.is_final_transcript(message):
                await self._save(_Final(self._seq, message))
            await self._send(layer, group, numbered)
        await self._close(layer, group)

    async def _send(self, layer: Any, group: str, message: messages.Message) -> None:
        try:
            await layer.group_send(group, {"type": "transcript.message", "message": message})
        except Exception:
            # A lost message must not stop the ones after it.
            log.exception("bridge.publish_failed", extra={"session_id": self.session_id})

    async def _write(self, line: _Final) -> None:
        message = line.message
        await store.save_final_transcript(
            self.session_id, line.seq, message["role"], message["text"],
            interrupted=message.get("interrupted", False),
            typed=message.get("typed", False),
            latency=message.get("latency"),
        )

    async def _save(self, line: _Final) -> None:
        """Write a new final now, or keep it behind the ones already waiting."""
        if not self._unwritten:
            try:
                await self._write(line)
                return
            except Exception as exc:
                log.warning(
                    "transcript.save_failed", extra={"session_id": self.session_id, "seq": line.seq, "error": repr(exc)}
                )
                self._retry_delay = RETRY_DELAY
                self._retry_at = asyncio.get_running_loop().time() + self._retry_delay
        if len(self._unwritten) >= settings.VOICE_FINALS_BUFFER and not await self._write_unwritten():
            self._lost.append(line.seq)
            log.error("transcript.buffer_full", extra={"session_id": self.session_id, "seq": line.seq})
            if self._on_overflow is not None:
                self._on_overflow()
            return
        self._unwritten.append(line)

    async def _write_unwritten(self) -> bool:
        """Write the waiting lines in order, up to the first failure; True once none is left."""
        while self._unwritten:
            try:
                await self._write(self._unwritten[0])
            except IntegrityError:
                pass  # an earlier try was written after all (its answer was lost): never twice
            except Exception as exc:
                self._retry_delay = min(2 * self._retry_delay, RETRY_MAX_DELAY)
                self._retry_at = asyncio.get_running_loop().time() + self._retry_delay
                log.warning(
                    "transcript.save_retry_failed",
                    extra={"session_id": self.session_id, "unwritten": len(self._unwritten), "error": repr(exc)},
                )
                return False
            self._unwritten.popleft()
        return True

    async def _close(self, layer: Any, group: str) -> None:
        """A last bounded try at the unwritten lines; whatever is still lost is said."""
        delay = RETRY_DELAY
        for attempt in range(1, CLOSE_ATTEMPTS + 1):
            if await self._write_unwritten():
                break
            if attempt < CLOSE_ATTEMPTS:
                await asyncio.sleep(delay)
                delay *= 2
        self._lost.extend(line.seq for line in self._unwritten)
        self._unwritten.clear()
        if not self._lost:
            return
        seqs = sorted(self._lost)
        # The seqs only: the lines are the person's words.
        log.error("transcript.lines_lost", extra={"session_id": self.session_id, "seqs": seqs})
        self._seq += 1
        error = messages.error_body(
            LINES_LOST,
            f"{len(seqs)} transcript line(s) could not be saved (the database was unreachable) "
            "and are missing from the conversation's history.",
            seqs=seqs,
        )
        await self._send(layer, group, messages.with_seq(error, self._seq))


@dataclass(frozen=True)
class _Turn:
    """The person's latest turn, waiting for the reply it gets: when it ended (wall clock)
    and, when spoken, the session's measures of it (seconds)."""

    ended_at: float
    end_of_turn: float | None = None
    transcription: float | None = None


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else max(0, round(seconds * 1000))


class SpokenText(io.TextOutput):
    """The last link of the agent's transcription chain. livekit-agents' TranscriptSynchronizer
    releases the reply's words as its audio plays; each one becomes an ``agent_partial`` with
    all the words of the reply so far."""

    def __init__(self, bridge: SessionBridge) -> None:
        super().__init__(label="TranscriptSocket", next_in_chain=None)
        self._bridge = bridge

    async def capture_text(self, text: str) -> None:
        self._bridge.spoken(text)

    def flush(self) -> None:
        """The end of one audio segment; the reply ends with its final line."""


class SessionBridge:
    """Subscribes to one AgentSession and turns what it does into socket messages.

    ``text_output`` and ``on_typed_input`` are the two ends the room's IO must be given:
    the synchronised transcription's sink and the text input callback."""

    def __init__(self, publish: Publish, *, clock: Callable[[], float] = time.time) -> None:
        self._publish = publish
        self._clock = clock
        self._turn: _Turn | None = None
        self._reply = ""  # the current reply's words spoken so far
        self._sent = ""  # the last agent_partial's text
        self._reply_open = True  # False from a reply's final line until the next reply starts
        self.text_output = SpokenText(self)
        self._typed_default = room_io.TextInputOptions().text_input_cb
        # The whole texts of the replies the agent set out to say since its last final line.
        self._whole_replies: list[list[str]] = []

    @property
    def tts_text_transforms(self) -> list[TextTransforms]:
        """The session's ``tts_text_transforms``: the library's defaults, after a first one
        that notes each reply's whole text (as written, like its transcript)."""
        return [self._note_whole_reply, *DEFAULT_TTS_TEXT_TRANSFORMS]

    async def _note_whole_reply(self, text: AsyncIterable[str]) -> AsyncIterator[str]:
        """Pass a reply's text on to the TTS unchanged; once all of it has gone through, it
        is the whole of what the agent meant to say (a reply cut off before its text was all
        written has no whole text, and stays interrupted)."""
        whole = ""
        async for chunk in text:
            whole += chunk
            yield chunk
        self._whole_replies.append(whole.split())

    def attach(self, session: AgentSession) -> None:
        session.on("user_input_transcribed", self._on_user_transcribed)
        session.on("conversation_item_added", self._on_item_added)
        session.on("user_state_changed", self._on_user_state)
        session.on("agent_state_changed", self._on_agent_state)

    # ---- the person -------------------------------------------------------------------------

    def _on_user_transcribed(self, ev: UserInputTranscribedEvent) -> None:
        if ev.transcript.strip():
            self._publish(messages.transcript("user", ev.transcript, final=ev.is_final))

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if event := _speaking_change(ev.old_state, ev.new_state):
            self._publish(messages.speech("user", event))

    async def on_typed_input(self, session: AgentSession, ev: room_io.TextInputEvent) -> None:
        """A line the person typed (LiveKit's text input for agents): the library's own handling
        (interrupt the agent, reply to the text), and a user final marked typed. The line is
        sent once the interrupted reply (if any) has been sent, so the socket keeps the order
        in which things were said."""
        text = ev.text.strip()
        if not text:
            return
        self._turn = _Turn(ended_at=self._clock())
        result = self._typed_default(session, ev)
        if inspect.isawaitable(result):
            await result
        self._publish(messages.transcript("user", text, final=True, typed=True))

    # ---- the agent ----------------------------------------------------------------------------

    def _on_agent_state(self, ev: AgentStateChangedEvent) -> None:
        if ev.new_state == "thinking":
            # A reply starts: its words begin from nothing.
            self._reply, self._sent, self._reply_open = "", "", True
        self._publish(messages.agent_state(ev.new_state))
        if event := _speaking_change(ev.old_state, ev.new_state):
            self._publish(messages.speech("agent", event))

    def spoken(self, text: str) -> None:
        """Words the agent has just said (released by the transcription synchroniser)."""
        if not self._reply_open:
            return  # a finished reply's last words, already in its final line
        self._reply += text
        so_far = self._reply.strip()
        if so_far and so_far != self._sent:
            self._sent = so_far
            self._publish(messages.agent_partial(so_far))

    def _on_item_added(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if item.type != "message":
            return
        if item.role == "user":
            self._note_spoken_turn(item.metrics)
            return
        if item.role != "assistant":
            return
        text = item.text_content or ""
        if not text.strip():
            return
        latency = self._latency(item.metrics)
        interrupted = item.interrupted and text.split() not in self._whole_replies
        self._reply, self._sent, self._reply_open = "", "", False
        self._whole_replies.clear()
        self._publish(messages.transcript("agent", text, final=True, interrupted=interrupted, latency=latency))

    def _note_spoken_turn(self, metrics: MetricsReport) -> None:
        """A spoken turn carries the session's measures of it; a typed one was noted on arrival."""
        if (ended_at := metrics.get("stopped_speaking_at")) is not None:
            self._turn = _Turn(
                ended_at=ended_at,
                end_of_turn=metrics.get("end_of_turn_delay"),
                transcription=metrics.get("transcription_delay"),
            )

    def _latency(self, metrics: MetricsReport) -> messages.Latency | None:
        """The reply's latency, when it answers the person's latest turn: the reply's first
        audio came after that turn ended (the greeting, or a reply cut off before the turn,
        answers none)."""
        turn, started = self._turn, metrics.get("started_speaking_at")
        if turn is None or started is None or started < turn.ended_at:
            return None
        self._turn = None
        total = metrics.get("e2e_latency", started - turn.ended_at)
        return messages.Latency(
            total_ms=_ms(total) or 0,
            end_of_turn_ms=_ms(turn.end_of_turn),
            stt_ms=_ms(turn.transcription),
            llm_ms=_ms(metrics.get("llm_node_ttft")),
            tts_ms=_ms(metrics.get("tts_node_ttfb")),
        )


def attach(session: AgentSession, publish: Publish, **kwargs: Any) -> SessionBridge:
    """Subscribe `publish(message)` to the session events that the WS contract needs; the
    bridge's ``text_output`` and ``on_typed_input`` are for the room's IO."""
    bridge = SessionBridge(publish, **kwargs)
    bridge.attach(session)
    return bridge


def _speaking_change(old: str, new: str) -> messages.SpeechEvent | None:
    if new == "speaking" and old != "speaking":
        return "speech_started"
    if old == "speaking" and new != "speaking":
        return "speech_ended"
    return None
