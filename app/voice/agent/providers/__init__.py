"""The one seam between the agent pipeline and the services it talks to.

``settings.VOICE_PROVIDERS`` names a provider set ("openai", "fake") or gives
a dotted path to a builder. The builder is imported lazily and re-read when the
setting changes, so tests swap sets with ``override_settings``. A set's module may
define ``prewarm()`` to load its models before the first session. Production code
never imports ``fakes/``: only this table names it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string
from livekit.agents import llm, stt, tts, vad
from livekit.plugins import silero

from app.voice.sessions.info import SessionInfo

BUILTIN_SETS = {
    "openai": "app.voice.agent.providers.openai.build",
    "fake": "fakes.providers.build",
}


@dataclass(frozen=True)
class ProviderSet:
    vad: vad.VAD
    stt: stt.STT
    llm: llm.LLM
    tts: tts.TTS


ProviderBuilder = Callable[[SessionInfo], ProviderSet]


@functools.cache
def _builder(path: str) -> ProviderBuilder:
    builder: ProviderBuilder = import_string(BUILTIN_SETS.get(path, path))
    return builder


def build_providers(info: SessionInfo) -> ProviderSet:
    return _builder(settings.VOICE_PROVIDERS)(info)


def prewarm_providers() -> None:
    """Load what sessions need before the first one starts: Silero and the set's own models."""
    shared_vad()
    builder = _builder(settings.VOICE_PROVIDERS)
    prewarm = getattr(import_module(builder.__module__), "prewarm", None)
    if callable(prewarm):
        prewarm()


@functools.cache
def shared_vad() -> vad.VAD:
    """Silero VAD, loaded once per process: the model is shared, each stream has its state."""
    return silero.VAD.load(min_silence_duration=settings.VOICE_VAD_MIN_SILENCE)


def _reset(*, setting: str, **_: object) -> None:
    if setting == "VOICE_PROVIDERS":
        _builder.cache_clear()


setting_changed.connect(_reset)
