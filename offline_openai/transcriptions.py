"""`POST /v1/audio/transcriptions`: a whole recording in, its words out, as OpenAI answers
it (`Transcription` for json, `TranscriptionVerbose` for verbose_json, plain text for
text), for the agent's non-streaming STT path and for anyone with the `openai` SDK.

The form's fields are validated against the SDK's own `TranscriptionCreateParams` field
types, so a value the SDK would not send is refused the way OpenAI refuses it (400).
What the engine cannot honour is refused too rather than silently ignored: a language
other than English, subtitles (srt, vtt), diarization, streaming, word timestamps.
`temperature` is accepted and not used: decoding is deterministic here."""

from __future__ import annotations

import asyncio
import io
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

import av
import numpy as np
from aiohttp import BodyPartReader, web
from openai.types.audio import Transcription, TranscriptionSegment, TranscriptionVerbose
from openai.types.audio.transcription import UsageDuration
from openai.types.audio.transcription_create_params import TranscriptionCreateParamsNonStreaming
from openai.types.audio.transcription_verbose import Usage as VerboseUsage
from pydantic import TypeAdapter, ValidationError

from offline_openai.errors import OpenAIError
from offline_openai.keys import ENGINES
from offline_openai.stt import Decoding
from offline_openai.stt.audio import ENGINE_RATE

MAX_FILE_BYTES = 25 << 20  # OpenAI's limit
MAX_FIELD_BYTES = 64 << 10
FORM_OVERHEAD_BYTES = 1 << 20  # the other fields and the multipart boundaries
MAX_SECONDS = 1500  # 25 minutes decode to 96 MB of float32; OpenAI caps the gpt-4o models there
MIN_SECONDS = 0.1
RESPONSE_FORMATS = ("json", "text", "verbose_json")
# The fields that go through as the SDK types them; the others are refused or not used.
FIELDS = ("model", "language", "prompt", "response_format", "temperature", "timestamp_granularities", "stream")
LIST_FIELDS = ("timestamp_granularities",)


@cache
def _adapters() -> dict[str, TypeAdapter[Any]]:
    hints = typing.get_type_hints(TranscriptionCreateParamsNonStreaming)
    return {name: TypeAdapter(hints[name]) for name in FIELDS}


class UndecodableAudio(Exception):
    pass


def decode_audio(data: bytes) -> np.ndarray:
    """Any format FFmpeg reads, as 16 kHz mono float32; UndecodableAudio otherwise."""
    chunks: list[np.ndarray] = []
    resampler = av.AudioResampler(format="flt", layout="mono", rate=ENGINE_RATE)
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise UndecodableAudio("the file has no audio stream")
            for frame in container.decode(container.streams.audio[0]):
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
                if sum(map(len, chunks)) > MAX_SECONDS * ENGINE_RATE:
                    raise UndecodableAudio(f"the audio is longer than {MAX_SECONDS} seconds")
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except av.FFmpegError as exc:
        raise UndecodableAudio(str(exc)) from None
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


async def _read(part: BodyPartReader, limit: int, too_large: Callable[[], OpenAIError]) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(1 << 16):
        data += chunk
        if len(data) > limit:
            raise too_large()
    return bytes(data)


async def read_form(request: web.Request) -> tuple[bytes, dict[str, Any]]:
    """The uploaded file and the other fields (list fields as lists), size-limited."""
    if request.content_length is not None and request.content_length > MAX_FILE_BYTES + FORM_OVERHEAD_BYTES:
        raise OpenAIError("Maximum content size limit (26214400) exceeded.", type="request_too_large")
    if request.content_type != "multipart/form-data":
        raise OpenAIError("Expected a multipart/form-data body.", param="file", code="invalid_value")

    def file_too_large() -> OpenAIError:
        return OpenAIError("Maximum content size limit (26214400) exceeded.", type="request_too_large", param="file")

    def field_too_large() -> OpenAIError:
        return OpenAIError("A form field is too large.", type="request_too_large")

    file: bytes | None = None
    fields: dict[str, Any] = {}
    try:
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader) or not part.name:
                continue
            if part.name == "file":
                file = await _read(part, MAX_FILE_BYTES, file_too_large)
                continue
            name = part.name.removesuffix("[]")
            value = (await _read(part, MAX_FIELD_BYTES, field_too_large)).decode("utf-8", errors="replace")
            if name in LIST_FIELDS:
                fields.setdefault(name, []).append(value)
            else:
                fields[name] = value
    except ValueError as exc:  # a malformed multipart body
        raise OpenAIError(f"Could not parse the multipart form: {exc}.") from None
    if file is None:
        raise OpenAIError("Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
    return file, fields


def validate(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields, typed as the SDK types them; OpenAIError for any it would not send."""
    if "model" not in fields:
        raise OpenAIError("Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    params: dict[str, Any] = {}
    for name, adapter in _adapters().items():
        if name not in fields:
            continue
        raw = fields[name]
        if name == "stream":
            raw = {"false": False, "true": True}.get(raw, raw)
        try:
            params[name] = adapter.validate_python(raw)
        except ValidationError as exc:
            raise OpenAIError(
                f"Invalid '{name}': {exc.errors()[0]['msg']}.", param=name, code="invalid_value"
            ) from None
    if params.get("response_format", "json") not in RESPONSE_FORMATS:
        raise OpenAIError(
            f"Invalid 'response_format': {params['response_format']!r} is not supported here; "
            f"use one of {', '.join(RESPONSE_FORMATS)}.",
            param="response_format",
            code="invalid_value",
        )
    if params.get("language", "en").split("-")[0].lower() != "en":
        raise OpenAIError(
            "Invalid 'language': this server transcribes English ('en') only.", param="language", code="invalid_value"
        )
    if "word" in params.get("timestamp_granularities", []):
        raise OpenAIError(
            "Invalid 'timestamp_granularities': word timestamps are not supported here.",
            param="timestamp_granularities",
            code="invalid_value",
        )
    return params


def respond(decoding: Decoding, response_format: str) -> web.Response:
    if response_format == "text":
        return web.Response(text=decoding.text, content_type="text/plain")
    if response_format == "verbose_json":
        body: Transcription | TranscriptionVerbose = TranscriptionVerbose(
            duration=round(decoding.duration, 3),
            language="english",
            text=decoding.text,
            segments=[
                TranscriptionSegment(
                    id=index,
                    seek=s.seek,
                    start=s.start,
                    end=s.end,
                    text=s.text,
                    tokens=s.tokens,
                    temperature=s.temperature,
                    avg_logprob=s.avg_logprob,
                    compression_ratio=s.compression_ratio,
                    no_speech_prob=s.no_speech_prob,
                )
                for index, s in enumerate(decoding.segments)
            ],
            usage=VerboseUsage(type="duration", seconds=round(decoding.duration, 3)),
        )
    else:
        body = Transcription(
            text=decoding.text, usage=UsageDuration(type="duration", seconds=round(decoding.duration, 3))
        )
    return web.json_response(body.model_dump(exclude_unset=True))


async def handle(request: web.Request) -> web.Response:
    file, fields = await read_form(request)
    params = validate(fields)
    try:
        audio = await asyncio.to_thread(decode_audio, file)
    except UndecodableAudio as exc:
        raise OpenAIError(
            f"The audio file could not be decoded: {exc}. Send a recording in a format FFmpeg reads "
            "(flac, m4a, mp3, mp4, mpeg, mpga, oga, ogg, wav, webm).",
            param="file",
            code="invalid_value",
        ) from None
    if len(audio) < MIN_SECONDS * ENGINE_RATE:
        raise OpenAIError(
            f"Audio file is too short. Minimum audio length is {MIN_SECONDS} seconds.",
            param="file",
            code="audio_too_short",
        )
    response_format = params.get("response_format", "json")
    decoding = await request.app[ENGINES].stt.transcribe_file(
        audio, prompt=params.get("prompt") or None, timestamps=response_format == "verbose_json"
    )
    return respond(decoding, response_format)
