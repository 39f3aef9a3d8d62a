"""The ``local`` provider set: offline, CPU only, no key. Silero VAD, PocketSphinx speech
recognition, a rule-based reply policy in the LLM's place, and flite speech synthesis.

It is what ``./dev.sh run`` uses without an OpenAI key: the agent hears words and speaks
words, so a conversation can be tried (and tested) end to end on any machine.
"""

from __future__ import annotations

from django.conf import settings

from app.voice.agent.providers import ProviderSet, shared_vad
from app.voice.agent.providers.local.decoder_processes import pool
from app.voice.agent.providers.local.flite_tts import FliteTTS
from app.voice.agent.providers.local.pocketsphinx_stt import PocketSphinxSTT
from app.voice.agent.providers.local.rule_based_replies import RuleBasedReplies
from app.voice.sessions.info import SessionInfo


def build(info: SessionInfo) -> ProviderSet:
    return ProviderSet(
        vad=shared_vad(),
        stt=PocketSphinxSTT(),
        llm=RuleBasedReplies(),
        tts=FliteTTS(voice=settings.VOICE_LOCAL_TTS_VOICE),
    )


def prewarm() -> None:
    """Start one decoder process ahead of the first speech (it takes about half a second)."""
    pool.prewarm(1)
