"""POST /v1/audio/speech: Piper behind OpenAI's speech wire format. Every voice name maps to
the one Piper voice; `instructions` is accepted and ignored. The audio is streamed phrase by
phrase, raw (``stream_format: audio``) or as OpenAI's server-sent events (``sse``, what
livekit-plugins-openai asks for with gpt-4o-mini-tts).
"""

from __future__ import annotations

import base64
import json
from contextlib import aclosing
from typing import Any

from aiohttp import web
from openai.types.audio.speech_create_params import SpeechCreateParams

from offline_openai.errors import OpenAIError
from offline_openai.keys import ENGINES
from offline_openai.params import RequestParams, read_json_object
from offline_openai.tts.encoding import Encoder, Format

PARAMS = RequestParams(SpeechCreateParams)
MAX_INPUT_CHARS = 4096
SPEEDS = (0.25, 4.0)
NO_SSE_MODELS = frozenset({"tts-1", "tts-1-hd"})  # OpenAI refuses sse for these


def _check(params: SpeechCreateParams) -> None:
    if not params["input"].strip():
        raise OpenAIError("The 'input' parameter must not be empty.", param="input")
    if len(params["input"]) > MAX_INPUT_CHARS:
        raise OpenAIError(f"The 'input' parameter is longer than {MAX_INPUT_CHARS} characters.", param="input")
    speed = params.get("speed", 1.0)
    if not SPEEDS[0] <= speed <= SPEEDS[1]:
        raise OpenAIError(f"Invalid value for 'speed': {speed} is not between {SPEEDS[0]} and {SPEEDS[1]}.",
                          param="speed")
    if params.get("stream_format") == "sse" and params["model"] in NO_SSE_MODELS:
        raise OpenAIError(f"stream_format 'sse' is not supported for {params['model']}.", param="stream_format")


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()


async def handle(request: web.Request) -> web.StreamResponse:
    params = PARAMS.parse(await read_json_object(request))
    _check(params)
    tts = request.app[ENGINES].tts
    response_format: Format = params.get("response_format", "mp3")
    sse = params.get("stream_format") == "sse"
    encoder = Encoder(response_format, tts.sample_rate)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream" if sse else encoder.content_type, "Cache-Control": "no-cache"}
    )
    response.enable_chunked_encoding()

    async def send(audio: bytes) -> None:
        # Headers go with the first phrase: a failure before it is still an error response.
        if not response.prepared:
            await response.prepare(request)
        if audio:
            await response.write(_sse({"type": "speech.audio.delta", "audio": base64.b64encode(audio).decode()})
                                 if sse else audio)

    phrases = tts.speak(params["input"], speed=params.get("speed", 1.0))
    try:
        async with aclosing(phrases):
            async for samples in phrases:
                await send(encoder.encode(samples))
        await send(encoder.finish())
        if sse:  # no token counts offline: Piper has no tokens
            usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
            await response.write(_sse({"type": "speech.audio.done", "usage": usage}))
        await response.write_eof()
    except ConnectionResetError:
        # The client stopped listening (the agent cut a reply the person spoke over): the
        # synthesis stops with it, and there is no one left to answer.
        if not response.prepared:
            raise
    finally:
        encoder.close()
    return response
