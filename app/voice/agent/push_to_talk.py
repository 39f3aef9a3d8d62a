"""Push-to-talk: the person holds a key or a button to talk, and the agent takes the turn when
they let go. Hands-free (the session's VAD endpointing) stays the default; the page switches
between the two during a session.

The page calls the agent over LiveKit RPC (methods registered on the agent's participant, as
in livekit-agents' push-to-talk example), and each call is acknowledged with the state it
left, ``{"enabled": bool, "held": bool}``:

- ``ptt.set_mode`` ``{"enabled": true|false}``: on, the session's turn detection becomes
  ``"manual"`` (``AgentSession.update_options``) and its audio input is switched off
  (``session.input.set_audio_enabled(False)``: RoomIO drops the microphone's frames, so
  neither VAD nor the recogniser hears anything); what a hands-free turn had heard so far is
  dropped. Off, the turn detection the session started with comes back and the audio input
  is on again: hands-free exactly as before.
- ``ptt.start_turn`` (press): the agent stops talking (``session.interrupt()``), a pending
  user turn is dropped (``clear_user_turn``), and the microphone is heard.
- ``ptt.end_turn`` (release): the microphone is no longer heard and the turn is committed
  (``commit_user_turn``): the agent answers what was said while held.
- ``ptt.cancel_turn``: the microphone is no longer heard and the held turn is dropped.

Only the session's person may call these (the caller's identity is checked); a payload
larger than MAX_PAYLOAD_BYTES, not JSON, or not of its method's shape is refused. Refusals
are RPC errors whose ``data`` is ``{"code": "<snake_case>"}``; nothing a caller sends
raises anywhere else.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from livekit import rtc
from livekit.agents import Agent, AgentSession
from livekit.agents.llm import ChatContext, ChatMessage, StopResponse

from app.voice.livekit_gateway import RpcHandler

log = logging.getLogger("app.voice.agent")

SET_MODE = "ptt.set_mode"
START_TURN = "ptt.start_turn"
END_TURN = "ptt.end_turn"
CANCEL_TURN = "ptt.cancel_turn"
METHODS = (SET_MODE, START_TURN, END_TURN, CANCEL_TURN)
# Every valid payload is a few bytes; anything longer is not from the page.
MAX_PAYLOAD_BYTES = 256
# On release, how long the session waits for the recogniser's last words (seconds), and how
# much silence it feeds a recogniser that cannot be flushed to make it finish them.
TRANSCRIPT_TIMEOUT = 2.0
STT_FLUSH_SECONDS = 2.0

BAD_REQUEST = 400
NOT_ALLOWED = 403
MODE_OFF = 409
UNAVAILABLE = 503


def refusal(status: int, code: str, message: str) -> rtc.RpcError:
    return rtc.RpcError(status, message, json.dumps({"code": code}))


class Assistant(Agent):
    """The session's agent: livekit-agents' Agent, except that a committed turn with no words
    (a push-to-talk hold in silence) gets no reply. Hands-free, no turn is ever empty."""

    async def on_user_turn_completed(self, turn_ctx: ChatContext, new_message: ChatMessage) -> None:
        if not (new_message.text_content or "").strip():
            raise StopResponse()


class PushToTalk:
    """The person's push-to-talk control over one running session."""

    def __init__(self, session: AgentSession, *, person: str, session_id: str = "") -> None:
        self._session = session
        self._person = person
        self._session_id = session_id
        # What hands-free means for this session: the turn detection it started with.
        self._hands_free = session.turn_detection
        self.enabled = False
        self.held = False
        self._commit: asyncio.Future[str] | None = None  # the last release's, until it is done
        self._calls = asyncio.Lock()  # one call at a time, in the order they came

    # ---- the control ------------------------------------------------------------------------

    def set_mode(self, enabled: bool) -> None:
        if enabled == self.enabled:
            return
        session = self._session
        if enabled:
            session.clear_user_turn()  # half a hands-free turn is no push-to-talk turn
            session.update_options(turn_detection="manual")
            session.input.set_audio_enabled(False)
        else:
            self.held = False
            session.update_options(turn_detection=self._hands_free)
            session.input.set_audio_enabled(True)
        self.enabled = enabled
        log.info("ptt.mode", extra={"session_id": self._session_id, "enabled": enabled})

    async def start_turn(self) -> None:
        if not self.enabled:
            raise refusal(MODE_OFF, "ptt_off", "Push-to-talk is off: switch it on first.")
        self._interrupt()
        if self._commit is not None and not self._commit.done():
            # The last release is still being committed (its last words on their way from the
            # recogniser): the microphone is heard once it is, or its turn would take this
            # hold's first words. The page says "Talking" when this call has answered.
            await asyncio.wait({self._commit}, timeout=TRANSCRIPT_TIMEOUT + STT_FLUSH_SECONDS)
            self._interrupt()  # its answer, if it has started already
        self._session.clear_user_turn()
        self._session.input.set_audio_enabled(True)
        self.held = True

    def _interrupt(self) -> None:
        try:
            self._session.interrupt()
        except RuntimeError:  # a reply that may not be interrupted plays on
            log.info("ptt.not_interrupted", extra={"session_id": self._session_id})

    def end_turn(self) -> None:
        if not self.held:
            return  # a release without a press (the press was refused, or already released)
        self.held = False
        self._session.input.set_audio_enabled(False)
        self._commit = self._session.commit_user_turn(
            transcript_timeout=TRANSCRIPT_TIMEOUT, stt_flush_duration=STT_FLUSH_SECONDS
        )
        self._commit.add_done_callback(self._committed)

    def _committed(self, commit: asyncio.Future[str]) -> None:
        if not commit.cancelled() and (error := commit.exception()) is not None:
            log.warning("ptt.commit_failed", extra={"session_id": self._session_id, "error": repr(error)})

    def cancel_turn(self) -> None:
        if not self.held:
            return
        self.held = False
        self._session.input.set_audio_enabled(False)
        self._session.clear_user_turn()

    @property
    def state(self) -> dict[str, bool]:
        return {"enabled": self.enabled, "held": self.held}

    # ---- over RPC -----------------------------------------------------------------------------

    def rpc_methods(self) -> dict[str, RpcHandler]:
        """The RPC handlers to register on the agent's participant, by method name."""
        return {method: self._handler(method) for method in METHODS}

    def _handler(self, method: str) -> RpcHandler:
        async def handle(data: rtc.RpcInvocationData) -> str:
            return await self.call(method, data.caller_identity, data.payload)

        return handle

    async def call(self, method: str, caller: str, payload: str) -> str:
        """Run one call of `method` by `caller`; the answer is the state it left (JSON)."""
        if caller != self._person:
            log.warning("ptt.refused_caller", extra={"session_id": self._session_id, "method": method})
            raise refusal(NOT_ALLOWED, "ptt_not_allowed", "Only the person in this conversation may do that.")
        body = _parse(payload)
        if method == SET_MODE:
            enabled = body.get("enabled")
            if set(body) != {"enabled"} or not isinstance(enabled, bool):
                raise refusal(BAD_REQUEST, "ptt_bad_request", 'Expected {"enabled": true} or {"enabled": false}.')
        elif body:
            raise refusal(BAD_REQUEST, "ptt_bad_request", f"{method} takes no arguments.")
        try:
            async with self._calls:
                if method == SET_MODE:
                    self.set_mode(body["enabled"])
                elif method == START_TURN:
                    await self.start_turn()
                elif method == END_TURN:
                    self.end_turn()
                else:
                    self.cancel_turn()
        except RuntimeError as exc:  # the session is closing: nothing to control any more
            log.info("ptt.unavailable", extra={"session_id": self._session_id, "method": method, "error": str(exc)})
            raise refusal(UNAVAILABLE, "ptt_unavailable", "The conversation is ending.") from exc
        return json.dumps(self.state)


def _parse(payload: str) -> dict[str, Any]:
    """A call's payload: empty, or a JSON object of at most MAX_PAYLOAD_BYTES."""
    if len(payload) > MAX_PAYLOAD_BYTES or len(payload.encode("utf-8", "replace")) > MAX_PAYLOAD_BYTES:
        raise refusal(BAD_REQUEST, "ptt_bad_request", f"The payload is over {MAX_PAYLOAD_BYTES} bytes.")
    if not payload.strip():
        return {}
    try:
        body = json.loads(payload)
    except ValueError:
        raise refusal(BAD_REQUEST, "ptt_bad_request", "The payload is not JSON.") from None
    if not isinstance(body, dict):
        raise refusal(BAD_REQUEST, "ptt_bad_request", "The payload is not a JSON object.")
    return body
