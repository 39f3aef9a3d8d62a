"""offline_openai over HTTP, through the clients the agent really uses: livekit-plugins-openai's
LLM and TTS, and the openai SDK. Chat and speech endpoints, the model list and the error shape
(the speech-recognition routes are tested with their engine elsewhere)."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import av
import numpy as np
import openai
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from faster_whisper import WhisperModel
from livekit.agents import llm
from livekit.plugins import openai as lk_openai

from offline_openai import replies
from offline_openai.app import create_app
from offline_openai.engines import Engines
from offline_openai.model_files import locate
from offline_openai.tts import SpeechSynthesis, phrases
from offline_openai.wer import wer

REPLY_TEXT = "You said: he was not an ill disposed young man."
ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture(scope="session")
def voice() -> Iterator[SpeechSynthesis]:
    """Piper, loaded once for the whole run (0.5 s)."""
    synthesis = SpeechSynthesis.load(locate().piper_model)
    yield synthesis
    asyncio.run(synthesis.aclose())


@pytest.fixture(scope="session")
def whisper() -> WhisperModel:
    return WhisperModel(str(locate().whisper_dir), device="cpu", compute_type="int8", cpu_threads=1)


async def _serve(engines: object) -> AsyncIterator[str]:
    async with TestServer(create_app(cast(Engines, engines))) as server:
        yield str(server.make_url("/v1"))


@pytest.fixture
async def base_url(voice: SpeechSynthesis) -> AsyncIterator[str]:
    """The server's /v1 URL: real speech synthesis; no speech recognition (not used here)."""
    async for url in _serve(SimpleNamespace(stt=None, tts=voice)):
        yield url


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session


@pytest.fixture
async def sdk(base_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
    yield client
    await client.close()


def _decode(data: bytes) -> tuple[np.ndarray, int]:
    """Any container PyAV reads, as mono samples on the 16-bit scale, and their rate."""
    with av.open(io.BytesIO(data)) as container:
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)]
        rate = container.streams.audio[0].rate
    samples = np.concatenate(frames)
    return (samples * 32768 if samples.dtype.kind == "f" else samples), rate  # lossy codecs decode to floats


def _heard(whisper: WhisperModel, samples: np.ndarray, rate: int) -> str:
    """What Whisper hears in 16-bit samples at any rate (resampled to its 16 kHz)."""
    at_16k = np.interp(np.arange(0, len(samples), rate / 16_000), np.arange(len(samples)), samples) / 32768
    segments, _ = whisper.transcribe(at_16k.astype(np.float32), language="en", beam_size=1)
    return " ".join(segment.text for segment in segments)


def _assert_speaks(whisper: WhisperModel, samples: np.ndarray, rate: int, text: str) -> None:
    """Speech of about the text's length, in which Whisper tiny hears the text. (Piper draws
    noise into each synthesis, and tiny.en mishears a word or two of it now and then.)"""
    words = len(text.split())
    assert 0.2 * words < len(samples) / rate < 0.6 * words + 1
    assert wer(text, _heard(whisper, samples, rate)) <= 0.3


# ---- models and health -----------------------------------------------------------------


async def test_model_list_names_the_agents_models(sdk: openai.AsyncOpenAI) -> None:
    models = [model async for model in sdk.models.list()]
    assert {model.id for model in models} >= {"gpt-4o-mini", "gpt-4o-mini-transcribe", "gpt-4o-mini-tts"}
    assert {model.owned_by for model in models} == {"offline_openai"}
    assert (await sdk.models.retrieve("whisper-1")).id == "whisper-1"
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.models.retrieve("gpt-9")
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]


async def test_healthz(base_url: str, http: ClientSession) -> None:
    async with http.get(base_url.removesuffix("/v1") + "/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


# ---- chat ----------------------------------------------------------------------------------


async def _plugin_reply(base_url: str, chat_ctx: llm.ChatContext) -> str:
    model = lk_openai.LLM(model="gpt-4o-mini", base_url=base_url, api_key="x")
    try:
        async with model.chat(chat_ctx=chat_ctx) as stream:
            return "".join([chunk.delta.content async for chunk in stream if chunk.delta and chunk.delta.content])
    finally:
        await model.aclose()


async def test_livekit_llm_greets_first_then_replies(base_url: str) -> None:
    chat_ctx = llm.ChatContext()
    chat_ctx.add_message(role="system", content="You are a helpful voice agent.")
    chat_ctx.add_message(role="developer", content="Greet the user.")
    assert await _plugin_reply(base_url, chat_ctx) == replies.GREETING

    chat_ctx.add_message(role="assistant", content=replies.GREETING)
    chat_ctx.add_message(role="user", content="Tell me a story about a dragon")
    assert await _plugin_reply(base_url, chat_ctx) == (
        "You said: tell me a story about a dragon. Once upon a time a small dragon learned to fly."
    )


async def test_sdk_chat_whole_and_streamed(sdk: openai.AsyncOpenAI) -> None:
    parts = [{"type": "text", "text": "I like"}, {"type": "text", "text": "blue"}]
    messages: Any = [{"role": "user", "content": parts}]
    completion = await sdk.chat.completions.create(model="gpt-4o-mini", messages=messages)
    expected = "You said: i like blue. Blue is a lovely color."
    assert completion.choices[0].message.content == expected
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == len(expected.split())

    stream = await sdk.chat.completions.create(
        model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True},
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == expected
    assert not any(chunk.choices[0].delta.tool_calls for chunk in chunks if chunk.choices)  # tools: ignored
    assert [chunk.choices[0].finish_reason for chunk in chunks[-2:-1]] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert len({chunk.id for chunk in chunks}) == 1


# ---- speech --------------------------------------------------------------------------------


def test_phrases_put_a_short_phrase_first() -> None:
    assert phrases.split(REPLY_TEXT) == ["You said:", "he was not an ill disposed young man."]
    greeting = ["Hello!", "I am a local voice agent.", "Say something and I will answer."]
    assert phrases.split(replies.GREETING) == greeting
    assert phrases.split("Yes, please.") == ["Yes, please."]  # short sentences stay whole


async def test_livekit_tts_pcm_is_24khz_speech_of_the_text(base_url: str, whisper: WhisperModel) -> None:
    tts = lk_openai.TTS(model="gpt-4o-mini-tts", voice="alloy", response_format="pcm", base_url=base_url, api_key="x")
    try:
        async with tts.synthesize(REPLY_TEXT) as stream:
            frames = [audio.frame async for audio in stream]
    finally:
        await tts.aclose()
    assert {frame.sample_rate for frame in frames} == {24_000}
    samples = np.concatenate([np.frombuffer(frame.data, dtype=np.int16) for frame in frames])
    _assert_speaks(whisper, samples, 24_000, REPLY_TEXT)


async def _speech(http: ClientSession, base_url: str, **params: Any) -> tuple[int, str, bytes]:
    async with http.post(f"{base_url}/audio/speech", json={"model": "tts-1", "voice": "alloy", **params}) as response:
        return response.status, response.content_type, await response.read()


@pytest.mark.parametrize(
    ("response_format", "content_type"),
    [("mp3", "audio/mpeg"), ("opus", "audio/opus"), ("aac", "audio/aac"), ("flac", "audio/flac"), ("wav", "audio/wav")],
)
async def test_every_format_is_the_speech_of_the_text(
    base_url: str, http: ClientSession, whisper: WhisperModel, response_format: str, content_type: str
) -> None:
    status, received_type, data = await _speech(http, base_url, input=REPLY_TEXT, response_format=response_format)
    assert (status, received_type) == (200, content_type)
    samples, rate = _decode(data)
    assert rate == (48_000 if response_format == "opus" else 24_000)  # Opus always decodes at 48 kHz
    _assert_speaks(whisper, samples, rate, REPLY_TEXT)


async def test_default_format_is_mp3_and_speed_shortens(base_url: str, http: ClientSession) -> None:
    status, content_type, normal = await _speech(http, base_url, input=REPLY_TEXT)
    assert (status, content_type) == (200, "audio/mpeg")
    # The fastest speed: Piper's durations vary from run to run (0.62-0.73 of the length
    # at 2.0 in repeated runs), so a smaller step could fail by chance.
    _, _, fast = await _speech(http, base_url, input=REPLY_TEXT, speed=4.0)
    assert len(_decode(fast)[0]) < 0.7 * len(_decode(normal)[0])


async def test_sse_stream_carries_the_audio_then_done(base_url: str, http: ClientSession) -> None:
    status, content_type, body = await _speech(
        http, base_url, model="gpt-4o-mini-tts", input="Hello!", response_format="pcm", stream_format="sse"
    )
    assert (status, content_type) == (200, "text/event-stream")
    events = [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: ")]
    assert {event["type"] for event in events[:-1]} == {"speech.audio.delta"}
    assert events[-1]["type"] == "speech.audio.done" and "usage" in events[-1]


# ---- errors --------------------------------------------------------------------------------

LONG_INPUT = "word " * 1000
ERROR_CASES = [
    # (method, path, body, status, param)
    ("POST", "/chat/completions", b"{not json", 400, None),
    ("POST", "/chat/completions", b"[1, 2]", 400, None),
    ("POST", "/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, 400, "model"),
    ("POST", "/chat/completions", {"model": "m", "messages": [{"role": "robot", "content": "hi"}]}, 400,
     "messages[0].role"),
    ("POST", "/chat/completions", {"model": "m", "messages": [], "temperatur": 1}, 400, "temperatur"),
    ("POST", "/chat/completions", {"model": "m", "messages": [], "n": 2}, 400, "n"),
    ("POST", "/audio/speech", {"model": "tts-1", "voice": "alloy"}, 400, "input"),
    ("POST", "/audio/speech", {"model": "tts-1", "voice": "alloy", "input": " "}, 400, "input"),
    ("POST", "/audio/speech", {"model": "tts-1", "voice": "alloy", "input": LONG_INPUT}, 400, "input"),
    ("POST", "/audio/speech", {"input": "hi", "voice": "alloy"}, 400, "model"),
    ("POST", "/audio/speech", {"model": "tts-1", "voice": "alloy", "input": "hi", "response_format": "ogg"}, 400,
     "response_format"),
    ("POST", "/audio/speech", {"model": "tts-1", "voice": "alloy", "input": "hi", "speed": 4.5}, 400, "speed"),
    ("POST", "/audio/speech", {"model": "tts-1", "voice": "alloy", "input": "hi", "stream_format": "sse"}, 400,
     "stream_format"),
    ("GET", "/nowhere", None, 404, None),
    ("GET", "/chat/completions", None, 405, None),
    ("POST", "/chat/completions", b" " * (25 * 1024 * 1024 + 1), 413, None),
]


def _assert_openai_error(body: bytes, param: str | None) -> dict[str, Any]:
    assert b"Traceback" not in body
    error = json.loads(body)["error"]
    assert set(error) == ERROR_KEYS and error["message"]
    assert error["param"] == param
    return cast(dict[str, Any], error)


@pytest.mark.parametrize(("method", "path", "body", "status", "param"), ERROR_CASES)
async def test_errors_have_openais_shape(
    base_url: str, http: ClientSession, method: str, path: str, body: Any, status: int, param: str | None
) -> None:
    options = {"data": body} if isinstance(body, bytes) else {"json": body} if body is not None else {}
    async with http.request(method, base_url + path, **options) as response:
        assert response.status == status
        _assert_openai_error(await response.read(), param)


async def test_sdk_raises_its_own_error_types(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="'n' must be 1"):
        await sdk.chat.completions.create(model="gpt-4o-mini", messages=[], n=2)


class _BrokenSynthesis:
    sample_rate = 22_050

    async def speak(self, text: str, *, speed: float = 1.0) -> AsyncIterator[np.ndarray]:
        raise RuntimeError("secret internal detail")
        yield np.zeros(0, dtype=np.int16)  # pragma: no cover  (makes this an async generator)


async def test_unexpected_failure_is_a_bare_500(http: ClientSession, caplog: pytest.LogCaptureFixture) -> None:
    async for url in _serve(SimpleNamespace(stt=None, tts=_BrokenSynthesis())):
        status, _, body = await _speech(http, url, input="Hello.", response_format="pcm")
    assert status == 500
    error = _assert_openai_error(body, None)
    assert error["type"] == "server_error" and b"secret" not in body
    assert "secret internal detail" in caplog.text  # the traceback is in the server's log


def test_main_refuses_missing_model_files_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "offline_openai", "--models", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("offline_openai: model files missing:") and result.stderr.count("\n") == 1
