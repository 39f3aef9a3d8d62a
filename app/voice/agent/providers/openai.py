"""The product's provider set: Silero VAD, OpenAI realtime STT, GPT-4o-mini and OpenAI TTS,
through livekit-plugins-openai.

Each service goes to OpenAI, or to the server its ``OPENAI_*_BASE_URL`` setting names: the
offline one (``offline_openai``, started by the run command and the tests when there is no
key) or any other OpenAI-compatible server. The same plugin code runs either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from livekit.agents import NOT_GIVEN, NotGivenOr
from livekit.plugins import openai

from app.voice.agent.providers import ProviderSet, shared_vad
from app.voice.sessions.info import SessionInfo

STT_MODEL = "gpt-4o-mini-transcribe"
TTS_MODEL = "gpt-4o-mini-tts"
TTS_VOICE = "alloy"
# A server of our choosing that needs no key still gets one: the SDK refuses to run without.
NO_KEY = "no-key"


@dataclass(frozen=True)
class Endpoint:
    base_url: NotGivenOr[str]
    api_key: NotGivenOr[str]


def endpoint(base_url: str) -> Endpoint:
    """Where a service's requests go: `base_url`, or OpenAI when it is empty."""
    if not base_url:
        return Endpoint(NOT_GIVEN, settings.OPENAI_API_KEY or NOT_GIVEN)
    return Endpoint(base_url, settings.OPENAI_API_KEY or NO_KEY)


def build(info: SessionInfo) -> ProviderSet:
    stt, llm, tts = (endpoint(settings.OPENAI_STT_BASE_URL), endpoint(settings.OPENAI_LLM_BASE_URL),
                     endpoint(settings.OPENAI_TTS_BASE_URL))
    return ProviderSet(
        vad=shared_vad(),
        # Realtime transcription streams interim results; the default HTTP mode has none.
        stt=openai.STT(
            model=STT_MODEL, language="en", use_realtime=True, base_url=stt.base_url, api_key=stt.api_key
        ),
        llm=openai.LLM(model=settings.OPENAI_LLM_MODEL, base_url=llm.base_url, api_key=llm.api_key),
        # Raw PCM: playable as it streams in, no decoder on the hot path.
        tts=openai.TTS(
            model=TTS_MODEL, voice=TTS_VOICE, response_format="pcm", base_url=tts.base_url, api_key=tts.api_key
        ),
    )
