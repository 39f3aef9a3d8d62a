"""The production provider set, run offline: the real livekit-plugins-openai code against
OpenAI's HTTP API mocked with respx, checking what is sent and what comes back.

The realtime STT stream (interim transcripts) speaks a WebSocket, which respx cannot
mock; its HTTP transcription path and its configuration are checked here."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
import respx
from livekit import rtc
from livekit.agents import llm

from app.voice.agent.providers import build_providers
from app.voice.agent.providers import openai as openai_providers
from app.voice.sessions.info import SessionInfo
from tests.unit import respx_httpx2  # noqa: F401  (registers respx's "httpx2" mocker)

API = "https://api.openai.com/v1"
FAKE_KEY = "sk-" + "test" * 6
INFO = SessionInfo(session_id="0" * 32, room="room-1", identity="alice", livekit_room="room-1~x")


@pytest.fixture
def providers(settings):
    settings.VOICE_PROVIDERS = "openai"
    settings.OPENAI_API_KEY = FAKE_KEY
    return build_providers(INFO)


@pytest.fixture
def openai_api():
    """OpenAI's HTTP API, mocked; any request without a route fails the test."""
    with respx.mock(using="httpx2", base_url=API, assert_all_called=True) as router:
        yield router


def sse(*chunks: dict) -> bytes:
    lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks]
    return ("".join(lines) + "data: [DONE]\n\n").encode()


def delta(text: str) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}],
    }


def test_the_openai_set_is_the_required_pipeline(providers) -> None:
    assert type(providers.vad).__module__.startswith("livekit.plugins.silero")
    assert providers.llm.model == "gpt-4o-mini"
    assert providers.stt.model == openai_providers.STT_MODEL
    assert providers.stt.capabilities.streaming and providers.stt.capabilities.interim_results
    assert providers.tts.model == openai_providers.TTS_MODEL


async def test_llm_streams_gpt_4o_mini_with_the_system_prompt(providers, settings, openai_api) -> None:
    route = openai_api.post("/chat/completions").mock(
        return_value=httpx.Response(
            200, content=sse(delta("Hello"), delta(" there!")), headers={"content-type": "text/event-stream"}
        )
    )
    ctx = llm.ChatContext()
    ctx.add_message(role="system", content=settings.SYSTEM_PROMPT)
    ctx.add_message(role="user", content="Hi")
    text = ""
    async with providers.llm.chat(chat_ctx=ctx) as stream:
        async for chunk in stream:
            text += chunk.delta.content if chunk.delta and chunk.delta.content else ""
    assert text == "Hello there!"
    sent = json.loads(route.calls.last.request.content)
    assert sent["model"] == "gpt-4o-mini"
    assert sent["stream"] is True
    roles = [(m["role"], m["content"]) for m in sent["messages"]]
    assert ("user", "Hi") in roles
    assert any(content == settings.SYSTEM_PROMPT for _, content in roles)
    assert route.calls.last.request.headers["authorization"] == f"Bearer {FAKE_KEY}"


async def test_tts_requests_pcm_speech_and_emits_that_audio(providers, openai_api) -> None:
    pcm = (np.sin(np.arange(24000) / 10) * 8000).astype(np.int16).tobytes()  # 1 s at 24 kHz
    route = openai_api.post("/audio/speech").mock(
        return_value=httpx.Response(200, content=pcm, headers={"content-type": "audio/pcm"})
    )
    frames = [event.frame async for event in providers.tts.synthesize("Hello there!")]
    sent = json.loads(route.calls.last.request.content)
    assert sent["model"] == openai_providers.TTS_MODEL
    assert sent["voice"] == openai_providers.TTS_VOICE
    assert sent["input"] == "Hello there!"
    assert sent["response_format"] == "pcm"
    audio = b"".join(bytes(f.data) for f in frames)
    assert audio[: len(pcm)] == pcm  # the speech, intact and in order
    assert not any(audio[len(pcm) :])  # then at most the last frame's zero padding
    assert frames[0].sample_rate == 24000


async def test_stt_transcribes_wav_audio_with_the_configured_model(providers, openai_api) -> None:
    route = openai_api.post("/audio/transcriptions").mock(
        return_value=httpx.Response(200, json={"text": "Hello agent"})
    )
    samples = (np.sin(np.arange(16000) / 5) * 4000).astype(np.int16)
    frame = rtc.AudioFrame(samples.tobytes(), 16000, 1, len(samples))
    event = await providers.stt.recognize([frame])
    assert event.alternatives[0].text == "Hello agent"
    body = route.calls.last.request.content
    assert b'name="model"' in body and openai_providers.STT_MODEL.encode() in body
    assert b'filename="file.wav"' in body and b"RIFF" in body and b"WAVE" in body
    assert b'name="language"' in body


async def test_each_service_goes_to_the_server_its_setting_names(settings) -> None:
    """OPENAI_BASE_URL sends every service to another OpenAI-compatible server (the offline
    one, without a key), and a per-service URL overrides it (e.g. chat on Ollama)."""
    settings.VOICE_PROVIDERS = "openai"
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_STT_BASE_URL = settings.OPENAI_TTS_BASE_URL = "http://127.0.0.1:8090/v1"
    settings.OPENAI_LLM_BASE_URL = "http://127.0.0.1:11434/v1"
    settings.OPENAI_LLM_MODEL = "llama3.2"
    local = "http://127.0.0.1:11434/v1"
    with respx.mock(using="httpx2", base_url=local, assert_all_called=True) as ollama:
        route = ollama.post("/chat/completions").mock(
            return_value=httpx.Response(200, content=sse(delta("Hi")), headers={"content-type": "text/event-stream"})
        )
        providers = build_providers(INFO)
        ctx = llm.ChatContext()
        ctx.add_message(role="user", content="Hello")
        async with providers.llm.chat(chat_ctx=ctx) as stream:
            assert [chunk.delta.content async for chunk in stream if chunk.delta] == ["Hi"]
    sent = json.loads(route.calls.last.request.content)
    assert sent["model"] == "llama3.2"
    assert route.calls.last.request.headers["authorization"] == f"Bearer {openai_providers.NO_KEY}"
    assert providers.stt.provider == providers.tts.provider == "127.0.0.1:8090"
