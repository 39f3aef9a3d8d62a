"""End of turn from the sound of the speech: smart-turn v3.2 behind livekit-agents' audio
turn-detector seam, chosen by ``settings.VOICE_TURN_DETECTION``."""

from __future__ import annotations

import functools
from typing import Literal

from django.conf import settings
from django.core.signals import setting_changed
from livekit.agents import TurnHandlingOptions

from app.voice.agent.turn.detector import SmartTurnDetector
from app.voice.agent.turn.model import SmartTurnModel


@functools.cache
def turn_detection() -> Literal["vad"] | SmartTurnDetector:
    """What the sessions of this process end turns with; the model is loaded once."""
    if settings.VOICE_TURN_DETECTION == "vad":
        return "vad"
    return SmartTurnDetector(SmartTurnModel(settings.VOICE_TURN_MODEL_PATH))


def turn_handling() -> TurnHandlingOptions:
    """A session's `turn_handling`: when a turn ends, how the person interrupts, and what
    may start before the turn is sure to be over."""
    return {
        "turn_detection": turn_detection(),
        "endpointing": {
            "min_delay": settings.VOICE_ENDPOINTING_DELAY,
            "max_delay": settings.VOICE_ENDPOINTING_MAX_DELAY,
        },
        "interruption": {"mode": "vad"},
        "preemptive_generation": {"preemptive_tts": settings.VOICE_PREEMPTIVE_TTS},
    }


def _reset(*, setting: str, **_: object) -> None:
    if setting in {"VOICE_TURN_DETECTION", "VOICE_TURN_MODEL_PATH"}:
        turn_detection.cache_clear()


setting_changed.connect(_reset)
