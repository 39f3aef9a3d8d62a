"""The product's provider set: Silero VAD, OpenAI realtime STT, GPT-4o-mini and OpenAI TTS,
through livekit-plugins-openai.

Each service goes to OpenAI, or to the server its ``OPENAI_*_BASE_URL`` setting names: the
offline one (``offline_openai``, started by the run command and the tests when there is no
key) or any other OpenAI-compatible server. The same plugin code runs either way.
"""

from __future__ import annotations

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


def _endpoint(base_url: str) -> dict[str, NotGivenOr[str]]:
    """The plugin arguments that send a service to `base_url` (OpenAI when empty)."""
    if not base_url:
        return {"api_key": settings.OPENAI_API_KEY or NOT_GIVEN}
    return {"base_url": base_url, "api_key": settings.OPENAI_API_KEY or NO_KEY}


def build(info: SessionInfo) -> ProviderSet:
    return ProviderSet(
        vad=shared_vad(),
        # Realtime transcription streams interim results; the default HTTP mode has none.
        stt=openai.STT(model=STT_MODEL, language="en", use_realtime=True, **_endpoint(settings.OPENAI_STT_BASE_URL)),
        llm=openai.LLM(model=settings.OPENAI_LLM_MODEL, **_endpoint(settings.OPENAI_LLM_BASE_URL)),
        # Raw PCM: playable as it streams in, no decoder on the hot path.
        tts=openai.TTS(
            model=TTS_MODEL, voice=TTS_VOICE, response_format="pcm", **_endpoint(settings.OPENAI_TTS_BASE_URL)
        ),
    )
