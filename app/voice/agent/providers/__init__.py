"""The one seam between the agent pipeline and the services it talks to.

``settings.VOICE_PROVIDERS`` names one of the provider sets below: "openai", the product,
or "fake" (scripted, in-process: fakes/, imported only when named, so production never
loads it). Each set's module has ``build(info)``, and may have ``prewarm()`` to load its
models before the first session. Tests that need a set of their own pass it to
``AgentRun`` or, for sessions started through the API, install it with ``using_providers``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import import_module

from django.conf import settings
from livekit.agents import llm, stt, tts, vad
from livekit.plugins import silero

from app.voice.sessions.info import SessionInfo

PROVIDER_SETS = {"openai": "app.voice.agent.providers.openai", "fake": "fakes.providers"}


@dataclass(frozen=True)
class ProviderSet:
    vad: vad.VAD
    stt: stt.STT
    llm: llm.LLM
    tts: tts.TTS


ProviderBuilder = Callable[[SessionInfo], ProviderSet]
_in_use: ProviderBuilder | None = None


def build_providers(info: SessionInfo) -> ProviderSet:
    return (_in_use or import_module(PROVIDER_SETS[settings.VOICE_PROVIDERS]).build)(info)


@contextlib.contextmanager
def using_providers(builder: ProviderBuilder) -> Iterator[None]:
    """Build every session's providers with `builder` inside the block (tests)."""
    global _in_use
    previous, _in_use = _in_use, builder
    try:
        yield
    finally:
        _in_use = previous


def prewarm_providers() -> None:
    """Load what sessions need before the first one starts: Silero and the set's own models."""
    shared_vad()
    prewarm = getattr(import_module(PROVIDER_SETS[settings.VOICE_PROVIDERS]), "prewarm", None)
    if callable(prewarm):
        prewarm()


@functools.cache
def shared_vad() -> vad.VAD:
    """Silero VAD, loaded once per process: the model is shared, each stream has its state."""
    return silero.VAD.load(min_silence_duration=settings.VOICE_VAD_MIN_SILENCE)
