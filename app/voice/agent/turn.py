"""When a person's turn ends: Silero VAD's silence window, then the endpointing delay."""

from __future__ import annotations

from django.conf import settings
from livekit.agents import TurnHandlingOptions


def turn_handling() -> TurnHandlingOptions:
    """A session's `turn_handling`: when a turn ends, how the person interrupts, and what
    may start before the turn is sure to be over."""
    # No max_delay: livekit-agents only waits that long when a turn model doubts the end
    # (or in its "dynamic" endpointing), neither of which the sessions use.
    return {
        "turn_detection": "vad",
        "endpointing": {"min_delay": settings.VOICE_ENDPOINTING_DELAY},
        "interruption": {"mode": "vad"},
        "preemptive_generation": {"preemptive_tts": settings.VOICE_PREEMPTIVE_TTS},
    }
