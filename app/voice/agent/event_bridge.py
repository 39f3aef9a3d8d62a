"""AgentSession events → the transcript socket's messages.

One source per message kind, so nothing is sent twice: user transcripts from
``user_input_transcribed``, agent finals from ``conversation_item_added``,
speaking events from the user and agent state changes. Messages are numbered,
finals are persisted, then everything goes to the session's channel-layer group,
strictly in the order the session emitted them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.voice.contract import messages
from app.voice.sessions import store
from app.voice.sessions.groups import channel_layer, transcript_group

if TYPE_CHECKING:
    from livekit.agents import AgentSession
    from livekit.agents.voice.events import (
        AgentStateChangedEvent,
        ConversationItemAddedEvent,
        UserInputTranscribedEvent,
        UserStateChangedEvent,
    )

log = logging.getLogger("app.voice.bridge")


class TranscriptPublisher:
    """Ordered, non-blocking outlet: callbacks enqueue, one task persists and fans out."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self._queue: asyncio.Queue[messages.Message | None] = asyncio.Queue()
        self._seq = 0
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
        while (message := await self._queue.get()) is not None:
            self._seq += 1
            numbered = messages.with_seq(message, self._seq)
            try:
                if messages.is_final_transcript(message):
                    await store.save_final_transcript(
                        self.session_id, self._seq, message["role"], message["text"],
                        interrupted=message.get("interrupted", False),
                    )
                await layer.group_send(group, {"type": "transcript.message", "message": numbered})
            except Exception:
                # A lost message must not stop the ones after it.
                log.exception("bridge.publish_failed", extra={"session_id": self.session_id})


def attach(session: AgentSession, publish: Callable[[messages.Message], None]) -> None:
    """Subscribe `publish(message)` to the session events that the WS contract needs."""

    def on_user_transcribed(ev: UserInputTranscribedEvent) -> None:
        if ev.transcript.strip():
            publish(messages.transcript("user", ev.transcript, final=ev.is_final))

    def on_item_added(ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if item.type == "message" and item.role == "assistant":
            text = item.text_content or ""
            if text.strip():
                publish(messages.transcript("agent", text, final=True, interrupted=item.interrupted))

    def on_user_state(ev: UserStateChangedEvent) -> None:
        if event := _speaking_change(ev.old_state, ev.new_state):
            publish(messages.speech("user", event))

    def on_agent_state(ev: AgentStateChangedEvent) -> None:
        if event := _speaking_change(ev.old_state, ev.new_state):
            publish(messages.speech("agent", event))

    session.on("user_input_transcribed", on_user_transcribed)
    session.on("conversation_item_added", on_item_added)
    session.on("user_state_changed", on_user_state)
    session.on("agent_state_changed", on_agent_state)


def _speaking_change(old: str, new: str) -> messages.SpeechEvent | None:
    if new == "speaking" and old != "speaking":
        return "speech_started"
    if old == "speaking" and new != "speaking":
        return "speech_ended"
    return None
