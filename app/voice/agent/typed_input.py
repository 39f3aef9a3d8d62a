"""Bounds on what a person types to the agent (LiveKit's text input, topic ``lk.chat``).

The page's input stops at ``rules.TYPED_MAX_CHARS``, but any client holding the room's
token can send text streams of any size, as often as it likes: each line is an LLM request
(paid, with OpenAI), and a long one keeps this process busy splitting its reply into
sentences. So the agent refuses a line longer than that, or one past a burst of
``VOICE_TYPED_BURST`` at ``VOICE_TYPED_PER_MINUTE``, and says why on the transcript socket
(an error frame); a refused line reaches neither the LLM nor the history.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from livekit.agents import AgentSession, room_io
from livekit.agents.voice.room_io.types import TextInputCallback

from app.voice.contract import messages, rules
from app.voice.sessions.rate import TokenBucket

log = logging.getLogger("app.voice.bridge")


class TypedInputGate:
    """A text input callback that passes bounded lines on to `handle`."""

    def __init__(
        self,
        handle: TextInputCallback,
        publish: Callable[[messages.Message], None],
        *,
        per_minute: int,
        burst: int,
        max_chars: int = rules.TYPED_MAX_CHARS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._handle = handle
        self._publish = publish
        self._max_chars = max_chars
        self._per_minute, self._burst = per_minute, burst
        self._budget = TokenBucket(per_minute / 60.0, burst, clock)

    async def __call__(self, session: AgentSession, ev: room_io.TextInputEvent) -> None:
        length = len(ev.text.strip())
        if length > self._max_chars:
            return self._refuse(
                "typed_too_long",
                f"That message has {length} characters; the agent takes at most {self._max_chars}. "
                "Shorten it and send it again.",
            )
        if length and not self._budget.take():
            return self._refuse(
                "typed_too_fast",
                f"Too many messages at once: the agent takes {self._burst} in a row, then "
                f"{self._per_minute} a minute. Wait a few seconds and send it again.",
            )
        result = self._handle(session, ev)
        if result is not None:
            await result

    def _refuse(self, code: str, message: str) -> None:
        log.info("typed.refused", extra={"code": code})  # never the text: it is the person's words
        self._publish(messages.error_body(code, message))
