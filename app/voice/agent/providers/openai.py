"""Production provider set: Silero VAD, OpenAI STT, GPT-4o-mini and OpenAI TTS."""

from __future__ import annotations

from django.conf import settings
from livekit.agents import NOT_GIVEN
from livekit.plugins import openai

from app.voice.agent.providers import ProviderSet, shared_vad
from app.voice.sessions.info import SessionInfo

LLM_MODEL = "gpt-4o-mini"
STT_MODEL = "gpt-4o-mini-transcribe"
TTS_MODEL = "gpt-4o-mini-tts"
TTS_VOICE = "alloy"


def build(info: SessionInfo) -> ProviderSet:
    key = settings.OPENAI_API_KEY or NOT_GIVEN
    return ProviderSet(
        vad=shared_vad(),
        # Realtime transcription streams interim results; the default HTTP mode has none.
        stt=openai.STT(model=STT_MODEL, language="en", use_realtime=True, api_key=key),
        llm=openai.LLM(model=LLM_MODEL, api_key=key),
        # Raw PCM: playable as it streams in, no decoder on the hot path.
        tts=openai.TTS(model=TTS_MODEL, voice=TTS_VOICE, response_format="pcm", api_key=key),
    )
