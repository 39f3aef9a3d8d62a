"""Synthetic TTS: audible, voice-like PCM whose length follows the text."""

from __future__ import annotations

import asyncio

import numpy as np
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions, tts, utils

SAMPLE_RATE = 24000
SECONDS_PER_CHAR = 0.055
CHUNK_SECONDS = 0.1


def synthesize(text: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A 150 Hz buzz with harmonics, pulsed at a syllable rate: loud enough to hear and to
    measure, never silent, and ``SECONDS_PER_CHAR`` long per character of text."""
    seconds = max(0.3, len(text.strip()) * SECONDS_PER_CHAR)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    voice = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6))
    syllables = 0.6 + 0.4 * np.abs(np.sin(2 * np.pi * 2.5 * t))
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.02)
    signal = 0.25 * voice * syllables * fade
    return (np.clip(signal, -1, 1) * 32767).astype(np.int16)


class ToneTTS(tts.TTS):
    """``trailing_silence`` seconds of silence end each line, as real voices' audio does."""

    def __init__(self, *, first_audio_delay: float = 0.0, trailing_silence: float = 0.0) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=SAMPLE_RATE,
            num_channels=1,
        )
        self.first_audio_delay = first_audio_delay
        self.trailing_silence = trailing_silence

    @property
    def model(self) -> str:
        return "tone"

    @property
    def provider(self) -> str:
        return "fake"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return ToneStream(tts=self, input_text=text, conn_options=conn_options)


class ToneStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=SAMPLE_RATE,
            num_channels=1,
            mime_type="audio/pcm",
        )
        voice = self._tts
        assert isinstance(voice, ToneTTS)
        await asyncio.sleep(voice.first_audio_delay)
        silence = np.zeros(int(voice.trailing_silence * SAMPLE_RATE), dtype=np.int16)
        pcm = np.concatenate([synthesize(self.input_text), silence])
        step = int(SAMPLE_RATE * CHUNK_SECONDS)
        for start in range(0, len(pcm), step):
            output_emitter.push(pcm[start : start + step].tobytes())
        output_emitter.flush()
