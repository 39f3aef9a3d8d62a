"""`GET /v1/realtime?intent=transcription`: OpenAI's realtime transcription session over a
WebSocket, as `livekit-plugins-openai`'s `STT(use_realtime=True)` speaks it.

Client events: `session.update`, `input_audio_buffer.append` (base64 pcm16 at 24 kHz, the
only rate the SDK's `AudioPCM` allows), `input_audio_buffer.commit`,
`input_audio_buffer.clear`. Server events: `session.created`/`session.updated`,
`input_audio_buffer.speech_started`/`speech_stopped`/`committed`/`cleared`,
`conversation.item.input_audio_transcription.delta` (while the person speaks; stable words
only, so the deltas only append), `...completed` (never with an empty transcript),
`...failed` and `error`. Every client event is parsed, and every server event built, with
the installed `openai` SDK's own models, so this double follows the SDK in the lock.

Latency: the final decode starts speculatively at the first short pause (see
`stt.endpointing`), so by the time the silence reaches `silence_duration_ms` and the turn
is committed, most of the ~0.2 s decode is already done.

Concurrency: everything about a session happens synchronously on the event loop, in the
handler's read loop or in the decode futures' callbacks; events leave through one queue
and one sender task, so their order is the order they were decided in."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import secrets
import typing
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from openai import BaseModel
from openai.types.realtime import (
    AudioTranscription,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemInputAudioTranscriptionFailedEvent,
    InputAudioBufferAppendEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferClearEvent,
    InputAudioBufferCommitEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeError,
    RealtimeErrorEvent,
    RealtimeTranscriptionSessionAudio,
    RealtimeTranscriptionSessionAudioInput,
    RealtimeTranscriptionSessionCreateRequest,
    SessionCreatedEvent,
    SessionUpdatedEvent,
    SessionUpdateEvent,
)
from openai.types.realtime.conversation_item_input_audio_transcription_completed_event import (
    UsageTranscriptTextUsageDuration,
)
from openai.types.realtime.conversation_item_input_audio_transcription_failed_event import Error as FailedError
from openai.types.realtime.realtime_audio_formats import AudioPCM
from openai.types.realtime.realtime_client_event import RealtimeClientEvent
from openai.types.realtime.realtime_transcription_session_audio_input_turn_detection import SemanticVad, ServerVad
from pydantic import ValidationError

from offline_openai.errors import OpenAIError
from offline_openai.keys import ENGINES
from offline_openai.stt import Decoding, SpeechRecognition
from offline_openai.stt.agreement import LocalAgreement
from offline_openai.stt.audio import AudioBuffer, StreamResampler
from offline_openai.stt.endpointing import PAUSE_SAMPLES, Endpointer, Paused, Resumed, Started, Stopped, TurnSettings
from offline_openai.stt.vad import MIN_SPEECH_SAMPLES, SAMPLE_RATE, WINDOW

logger = logging.getLogger(__name__)

INPUT_RATE: typing.Final = 24_000  # OpenAI's realtime pcm16, the only rate AudioPCM accepts
# A text frame above this gets an `error` event and the session goes on; aiohttp closes
# the socket (1009) on one above the hard limit before it is even buffered.
MAX_MESSAGE_CHARS = 1 << 20
HARD_MAX_MESSAGE_BYTES = 4 << 20
# A client that sends but never reads would grow the outgoing queue without bound.
MAX_UNSENT_EVENTS = 512
# At most one interim decode per this much audio of a turn: each costs ~0.1-0.2 s of a core
# (a short window), and one still running when the speaker stops delays the final by what
# it has left.
INTERIM_SAMPLES = SAMPLE_RATE // 2
# OpenAI refuses to commit less than this.
MIN_COMMIT_MS = 100
# Manual commits only (turn_detection null): the buffer keeps at most this much audio.
MAX_MANUAL_BUFFER_SAMPLES = 10 * 60 * SAMPLE_RATE
# Idle under server VAD: keep enough audio before a start for the prefix padding.
IDLE_KEEP_SAMPLES = SAMPLE_RATE
# semantic_vad has no semantic model here: its eagerness picks a server VAD silence.
SEMANTIC_SILENCE_MS = {"high": 300, "medium": 500, "auto": 500, "low": 1000}
DEFAULT_MODEL = "gpt-4o-mini-transcribe"
_SUPPORTED = ("session.update", "input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear")


def _event_type(model: type[BaseModel]) -> str:
    (value,) = typing.get_args(model.model_fields["type"].annotation)
    return str(value)


# Every client event the SDK knows, by its `type`, straight from the SDK's union.
CLIENT_EVENTS: dict[str, type[BaseModel]] = {
    _event_type(model): model for model in typing.get_args(typing.get_args(RealtimeClientEvent)[0])
}


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def _ms(samples: int) -> int:
    return samples * 1000 // SAMPLE_RATE


class ClientError(Exception):
    """A client event this session refuses: becomes an `error` event; the session goes on."""

    def __init__(self, message: str, *, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.param = message, code, param


def describe(error: ValidationError) -> ClientError:
    """The first meaningful pydantic error as an OpenAI-style one. Union members that the
    input's `type` already ruled out are skipped, and model names drop out of the path."""
    errors = error.errors()
    chosen = next((e for e in errors if not (e["type"] == "literal_error" and e["loc"][-1:] == ("type",))), errors[0])
    param = ".".join(str(part) for part in chosen["loc"] if not (isinstance(part, str) and part[:1].isupper()))
    if chosen["type"] == "missing":
        return ClientError(f"Missing required parameter: '{param}'.", code="missing_required_parameter", param=param)
    code = "invalid_value" if chosen["type"] in ("literal_error", "enum", "union_tag_invalid") else "invalid_type"
    return ClientError(f"Invalid '{param}': {chosen['msg']}.", code=code, param=param)


def _merge(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Fields absent from a session.update keep their value; tagged unions (the audio
    format, the turn detection) are replaced whole rather than mixed."""
    merged = dict(current)
    for key, value in update.items():
        old = merged.get(key)
        whole = key in ("format", "turn_detection")
        merged[key] = _merge(old, value) if isinstance(old, dict) and isinstance(value, dict) and not whole else value
    return merged


def default_session(model: str) -> RealtimeTranscriptionSessionCreateRequest:
    return RealtimeTranscriptionSessionCreateRequest(
        type="transcription",
        audio=RealtimeTranscriptionSessionAudio(
            input=RealtimeTranscriptionSessionAudioInput(
                format=AudioPCM(type="audio/pcm", rate=INPUT_RATE),
                transcription=AudioTranscription(model=model, language="en"),
                turn_detection=ServerVad(
                    type="server_vad", threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500
                ),
                noise_reduction=None,
            )
        ),
    )


def turn_settings(session: RealtimeTranscriptionSessionCreateRequest) -> TurnSettings | None:
    """What the server VAD follows; None for manual commits (turn_detection null)."""
    audio_input = session.audio.input if session.audio else None
    detection = audio_input.turn_detection if audio_input else None
    if isinstance(detection, ServerVad):
        settings = TurnSettings(
            threshold=0.5 if detection.threshold is None else detection.threshold,
            prefix_padding_ms=300 if detection.prefix_padding_ms is None else detection.prefix_padding_ms,
            silence_duration_ms=500 if detection.silence_duration_ms is None else detection.silence_duration_ms,
        )
        if not 0.0 <= settings.threshold <= 1.0:
            raise ClientError(
                "Invalid 'session.audio.input.turn_detection.threshold': expected a number between 0 and 1.",
                code="invalid_value",
                param="session.audio.input.turn_detection.threshold",
            )
        for name in ("prefix_padding_ms", "silence_duration_ms"):
            if not 0 <= getattr(settings, name) <= 10_000:
                param = f"session.audio.input.turn_detection.{name}"
                raise ClientError(f"Invalid '{param}': expected 0 to 10000.", code="invalid_value", param=param)
        return settings
    if isinstance(detection, SemanticVad):
        return TurnSettings(silence_duration_ms=SEMANTIC_SILENCE_MS[detection.eagerness or "auto"])
    return None


def check_supported(session: RealtimeTranscriptionSessionCreateRequest) -> None:
    """Refuse what the engines cannot do: audio other than pcm16, languages other than English."""
    audio_input = session.audio.input if session.audio else None
    if audio_input is None:
        return
    if audio_input.format is not None and not isinstance(audio_input.format, AudioPCM):
        raise ClientError(
            f"Invalid 'session.audio.input.format.type': {audio_input.format.type!r} is not supported here; "
            "send 'audio/pcm' (pcm16, 24 kHz, mono).",
            code="invalid_value",
            param="session.audio.input.format.type",
        )
    transcription = audio_input.transcription or AudioTranscription()
    languages = [*(transcription.languages or []), *filter(None, [transcription.language])]
    if any(language.split("-")[0].lower() != "en" for language in languages):
        raise ClientError(
            "Invalid 'session.audio.input.transcription.language': this server transcribes English ('en') only.",
            code="invalid_value",
            param="session.audio.input.transcription.language",
        )


@dataclass(eq=False)
class Turn:
    """One user item: an utterance under server VAD, or a manual commit's buffer."""

    item_id: str
    start: int  # first sample of the item's audio (prefix padding included)
    last_interim: int  # where the latest interim decode was offered
    agreement: LocalAgreement = field(default_factory=LocalAgreement)
    speculative: asyncio.Future[Decoding] | None = None
    speculative_end: int = 0
    interim: asyncio.Future[Decoding] | None = None
    closed: bool = False  # committed or cleared: no more deltas


class TranscriptionSession:
    def __init__(self, stt: SpeechRecognition, model: str) -> None:
        self._stt = stt
        self._session = default_session(model)
        self._settings = turn_settings(self._session)
        self._endpointer = Endpointer(self._settings) if self._settings else None
        self._prompt: str | None = None
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._resampler = StreamResampler(INPUT_RATE)
        self._vad = stt.vad.stream()
        self._audio = AudioBuffer()
        self._vad_end = 0  # where the VAD's last complete window ends
        self._voicing = False  # whether that window was speech
        self._buffer_start = 0  # absolute sample where the uncommitted input buffer begins
        self._voiced = 0  # voiced samples in the uncommitted buffer
        self._turn: Turn | None = None
        self._previous_item: str | None = None
        self._decodes: set[asyncio.Future[Decoding]] = set()

    async def serve(self, ws: web.WebSocketResponse) -> None:
        sender = asyncio.create_task(self._send_all(ws))
        try:
            self._emit(SessionCreatedEvent(type="session.created", event_id=_new_id("event"), session=self._session))
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._receive(message.data)
                elif message.type == WSMsgType.BINARY:
                    self._error(ClientError("Binary frames are not supported: send JSON text.", code="invalid_message"))
                if self._outbox.qsize() > MAX_UNSENT_EVENTS:
                    await ws.close(code=1008, message=b"events are not being read")
                    break
        finally:
            for future in list(self._decodes):
                future.cancel()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _send_all(self, ws: web.WebSocketResponse) -> None:
        while True:
            text = await self._outbox.get()
            try:
                await ws.send_str(text)
            except ConnectionError:  # the client is gone; the read loop ends on its own
                return

    def _emit(self, event: BaseModel) -> None:
        self._outbox.put_nowait(event.model_dump_json(exclude_unset=True))

    def _error(self, error: ClientError, event_id: str | None = None) -> None:
        self._emit(
            RealtimeErrorEvent(
                type="error",
                event_id=_new_id("event"),
                error=RealtimeError(
                    type="invalid_request_error",
                    code=error.code,
                    message=error.message,
                    param=error.param,
                    event_id=event_id,
                ),
            )
        )

    # ---- client events ----------------------------------------------------------------

    def _receive(self, text: str) -> None:
        event_id: str | None = None
        try:
            if len(text) > MAX_MESSAGE_CHARS:
                raise ClientError(
                    f"Message too large: {len(text)} characters, the limit is {MAX_MESSAGE_CHARS}.",
                    code="message_too_large",
                )
            try:
                raw = json.loads(text)
            except ValueError as exc:
                raise ClientError(f"The message is not valid JSON: {exc}.", code="invalid_json") from None
            if not isinstance(raw, dict):
                raise ClientError("The message must be a JSON object.", code="invalid_type")
            event_id = raw["event_id"] if isinstance(raw.get("event_id"), str) else None
            kind = raw.get("type")
            if kind is None:
                raise ClientError(
                    "Missing required parameter: 'type'.", code="missing_required_parameter", param="type"
                )
            if kind not in CLIENT_EVENTS:
                supported = ", ".join(f"'{name}'" for name in CLIENT_EVENTS)
                raise ClientError(
                    f"Invalid value: {kind!r}. Supported values are: {supported}.", code="invalid_value", param="type"
                )
            if kind not in _SUPPORTED:
                raise ClientError(
                    f"'{kind}' is not supported in a transcription session.", code="invalid_value", param="type"
                )
            try:
                event = CLIENT_EVENTS[kind].model_validate(raw)
            except ValidationError as exc:
                raise describe(exc) from None
            self._dispatch(event)
        except ClientError as error:
            self._error(error, event_id)

    def _dispatch(self, event: BaseModel) -> None:
        if isinstance(event, InputAudioBufferAppendEvent):
            self._append(event)
        elif isinstance(event, SessionUpdateEvent):
            self._update(event)
        elif isinstance(event, InputAudioBufferCommitEvent):
            self._commit()
        elif isinstance(event, InputAudioBufferClearEvent):
            self._clear()

    def _update(self, event: SessionUpdateEvent) -> None:
        if not isinstance(event.session, RealtimeTranscriptionSessionCreateRequest):
            raise ClientError(
                "Invalid 'session.type': this server only serves transcription sessions ('transcription').",
                code="invalid_value",
                param="session.type",
            )
        merged = _merge(self._session.model_dump(exclude_unset=True), event.session.model_dump(exclude_unset=True))
        try:
            session = RealtimeTranscriptionSessionCreateRequest.model_validate(merged)
        except ValidationError as exc:
            raise describe(exc) from None
        check_supported(session)
        settings = turn_settings(session)
        transcription = session.audio.input.transcription if session.audio and session.audio.input else None
        self._session, self._settings = session, settings
        self._prompt = transcription.prompt if transcription else None
        if settings is None:
            self._endpointer = None
        elif self._endpointer is None:
            self._endpointer = Endpointer(settings)
        else:
            self._endpointer.settings = settings
        self._emit(SessionUpdatedEvent(type="session.updated", event_id=_new_id("event"), session=session))

    def _append(self, event: InputAudioBufferAppendEvent) -> None:
        try:
            data = base64.b64decode(event.audio, validate=True)
        except (binascii.Error, ValueError):
            raise ClientError("Invalid 'audio': not valid base64.", code="invalid_value", param="audio") from None
        if len(data) % 2:
            raise ClientError(
                "Invalid 'audio': pcm16 audio has an even number of bytes.", code="invalid_value", param="audio"
            )
        samples = self._resampler.push(np.frombuffer(data, dtype="<i2"))
        self._audio.append(samples)
        threshold = self._settings.threshold if self._settings else 0.5
        for probability in self._vad.push(samples):
            self._vad_end += WINDOW
            self._voicing = probability >= threshold
            self._voiced += WINDOW * self._voicing
            if self._endpointer is not None:
                self._on_vad(self._endpointer.push(probability, self._vad_end))
        self._offer_interim()
        self._forget_old_audio()

    def _commit(self) -> None:
        length = self._audio.end - self._buffer_start
        if _ms(length) < MIN_COMMIT_MS:
            raise ClientError(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {length * 1000 / SAMPLE_RATE:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        turn = self._turn or Turn(_new_id("item"), start=self._buffer_start, last_interim=self._buffer_start)
        if self._settings is not None:  # a manual commit during VAD activation ends that turn
            self._endpointer = Endpointer(self._settings)
        self._close_turn(turn, end=self._audio.end, committed_at=self._audio.end)

    def _clear(self) -> None:
        if self._turn is not None:
            self._drop(self._turn)
            self._turn = None
        if self._settings is not None:
            self._endpointer = Endpointer(self._settings)
        self._buffer_start, self._voiced = self._audio.end, 0
        self._emit(InputAudioBufferClearedEvent(type="input_audio_buffer.cleared", event_id=_new_id("event")))

    # ---- turns ------------------------------------------------------------------------

    def _on_vad(self, event: Started | Paused | Resumed | Stopped | None) -> None:
        turn = self._turn
        if isinstance(event, Started) and self._settings is not None:
            if turn is None:
                start = max(self._buffer_start, event.voiced_start - self._settings.prefix_samples)
                turn = self._turn = Turn(_new_id("item"), start=start, last_interim=event.voiced_start)
                self._emit(
                    InputAudioBufferSpeechStartedEvent(
                        type="input_audio_buffer.speech_started",
                        event_id=_new_id("event"),
                        item_id=turn.item_id,
                        audio_start_ms=_ms(start),
                    )
                )
        elif turn is None:
            return
        elif isinstance(event, Paused) and self._voiced >= MIN_SPEECH_SAMPLES:
            turn.speculative_end = event.voiced_end + PAUSE_SAMPLES
            audio = self._slice(turn, turn.speculative_end)
            turn.speculative = self._decode(self._stt.final(audio, prompt=self._prompt))
        elif isinstance(event, Resumed) and turn.speculative is not None:
            turn.speculative.cancel()
            turn.speculative = None
        elif isinstance(event, Stopped):
            self._emit(
                InputAudioBufferSpeechStoppedEvent(
                    type="input_audio_buffer.speech_stopped",
                    event_id=_new_id("event"),
                    item_id=turn.item_id,
                    audio_end_ms=_ms(event.at),
                )
            )
            self._close_turn(turn, end=min(event.voiced_end + PAUSE_SAMPLES, event.at), committed_at=event.at)

    def _close_turn(self, turn: Turn, *, end: int, committed_at: int) -> None:
        """Commit the turn's audio [turn.start, end) and transcribe it (the speculative
        decode when it covered exactly that audio); the next buffer starts at committed_at."""
        self._emit(
            InputAudioBufferCommittedEvent(
                type="input_audio_buffer.committed",
                event_id=_new_id("event"),
                item_id=turn.item_id,
                previous_item_id=self._previous_item,
            )
        )
        final = turn.speculative if turn.speculative is not None and turn.speculative_end == end else None
        turn.speculative = None if final else turn.speculative
        if final is None and self._voiced >= MIN_SPEECH_SAMPLES:
            final = self._decode(self._stt.final(self._slice(turn, end), prompt=self._prompt))
        self._drop(turn)
        if final is not None:
            final.add_done_callback(partial(self._completed, turn, (end - turn.start) / SAMPLE_RATE))
        self._previous_item, self._turn = turn.item_id, None
        self._buffer_start, self._voiced = committed_at, 0

    def _drop(self, turn: Turn) -> None:
        """No more deltas for this turn, and no decode that is not its final."""
        turn.closed = True
        for future in (turn.speculative, turn.interim):
            if future is not None:
                future.cancel()

    def _offer_interim(self) -> None:
        turn = self._turn
        if (
            turn is None
            or turn.interim is not None
            or turn.speculative is not None
            or not self._voicing  # perhaps the end of the turn: keep the worker for the final
            or self._audio.end - turn.last_interim < INTERIM_SAMPLES
            or self._voiced < MIN_SPEECH_SAMPLES
        ):
            return
        future = self._stt.interim(self._slice(turn, self._audio.end), prompt=self._prompt)
        if future is not None:
            turn.interim, turn.last_interim = self._decode(future), self._audio.end
            future.add_done_callback(partial(self._interim_done, turn))

    def _interim_done(self, turn: Turn, future: asyncio.Future[Decoding]) -> None:
        turn.interim = None
        if turn.closed or future.cancelled() or future.exception() is not None:
            return
        if delta := turn.agreement.update(future.result().text):
            self._emit(
                ConversationItemInputAudioTranscriptionDeltaEvent(
                    type="conversation.item.input_audio_transcription.delta",
                    event_id=_new_id("event"),
                    item_id=turn.item_id,
                    content_index=0,
                    delta=delta,
                )
            )

    def _completed(self, turn: Turn, seconds: float, future: asyncio.Future[Decoding]) -> None:
        if future.cancelled():
            return
        if (error := future.exception()) is not None:
            logger.error("transcription failed", exc_info=error)
            self._emit(
                ConversationItemInputAudioTranscriptionFailedEvent(
                    type="conversation.item.input_audio_transcription.failed",
                    event_id=_new_id("event"),
                    item_id=turn.item_id,
                    content_index=0,
                    error=FailedError(type="server_error", message="transcription failed"),
                )
            )
            return
        if text := future.result().text:
            self._emit(
                ConversationItemInputAudioTranscriptionCompletedEvent(
                    type="conversation.item.input_audio_transcription.completed",
                    event_id=_new_id("event"),
                    item_id=turn.item_id,
                    content_index=0,
                    transcript=text,
                    usage=UsageTranscriptTextUsageDuration(type="duration", seconds=round(seconds, 3)),
                )
            )

    # ---- audio --------------------------------------------------------------------------

    def _decode(self, future: asyncio.Future[Decoding]) -> asyncio.Future[Decoding]:
        """Track a decode so that a closing socket cancels it."""
        self._decodes.add(future)
        future.add_done_callback(self._decodes.discard)
        return future

    def _slice(self, turn: Turn, end: int) -> np.ndarray:
        return self._audio.slice(turn.start, end)

    def _forget_old_audio(self) -> None:
        if self._turn is not None:
            keep_from = self._turn.start
        elif self._settings is not None:
            keep_from = self._audio.end - IDLE_KEEP_SAMPLES - self._settings.prefix_samples
        else:
            keep_from = max(self._buffer_start, self._audio.end - MAX_MANUAL_BUFFER_SAMPLES)
        self._audio.forget_before(keep_from)


async def handle(request: web.Request) -> web.WebSocketResponse:
    """Upgrade to a WebSocket and serve one transcription session until either side closes."""
    if request.query.get("intent") != "transcription":
        raise OpenAIError(
            "Only transcription sessions are served here: connect with ?intent=transcription.",
            param="intent",
            code="invalid_value",
        )
    ws = web.WebSocketResponse(max_msg_size=HARD_MAX_MESSAGE_BYTES)
    if not ws.can_prepare(request).ok:
        raise OpenAIError("This endpoint takes a WebSocket upgrade.", code="websocket_upgrade_required")
    await ws.prepare(request)
    session = TranscriptionSession(request.app[ENGINES].stt, request.query.get("model") or DEFAULT_MODEL)
    await session.serve(ws)
    return ws
