"""The ``fake`` provider set: real Silero VAD, scripted STT and LLM, synthetic TTS.

Latency knobs (seconds, from the environment) let benchmarks emulate real providers:
FAKE_STT_DELAY (final transcript after end of speech), FAKE_LLM_FIRST_TOKEN_DELAY,
FAKE_LLM_TOKEN_INTERVAL, FAKE_TTS_FIRST_AUDIO_DELAY. FAKE_STT_UTTERANCES replaces
the script ("|" between utterances); FAKE_STT_SCRIPTS, a JSON object of room name →
list of utterances, gives rooms their own scripts (to tell sessions apart in tests).
"""

from __future__ import annotations

import json
import os

from app.voice.agent.providers import ProviderSet, shared_vad
from app.voice.sessions.info import SessionInfo
from fakes.llm import ScriptedLLM
from fakes.stt import DEFAULT_UTTERANCES, ScriptedSTT
from fakes.tts import ToneTTS


def _seconds(name: str) -> float:
    raw = os.environ.get(name, "0") or "0"
    value = float(raw)
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return value


def utterances_for(room: str) -> tuple[str, ...]:
    per_room = json.loads(os.environ.get("FAKE_STT_SCRIPTS") or "{}")
    if room in per_room:
        return tuple(per_room[room])
    script = os.environ.get("FAKE_STT_UTTERANCES", "")
    return tuple(u.strip() for u in script.split("|") if u.strip()) or DEFAULT_UTTERANCES


def build(info: SessionInfo) -> ProviderSet:
    utterances = utterances_for(info.room)
    vad = shared_vad()
    return ProviderSet(
        vad=vad,
        stt=ScriptedSTT(utterances=utterances, final_delay=_seconds("FAKE_STT_DELAY")),
        llm=ScriptedLLM(
            first_token_delay=_seconds("FAKE_LLM_FIRST_TOKEN_DELAY"),
            token_interval=_seconds("FAKE_LLM_TOKEN_INTERVAL"),
        ),
        tts=ToneTTS(first_audio_delay=_seconds("FAKE_TTS_FIRST_AUDIO_DELAY")),
    )
