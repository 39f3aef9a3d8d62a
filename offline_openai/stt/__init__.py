"""Speech recognition for the offline server: faster-whisper (Whisper tiny.en) gated by
Silero VAD, both loaded once per process, every decode on one worker thread.

The realtime endpoint asks for finals (`final`) and offers interims (`interim`, refused
when the worker is busy); the transcriptions endpoint asks for whole files
(`transcribe_file`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from offline_openai.stt.vad import MIN_SPEECH_SAMPLES, SileroVad
from offline_openai.stt.whisper import Decoding, WhisperDecoder
from offline_openai.stt.worker import DecodeWorker

__all__ = ["Decoding", "SpeechRecognition"]


class SpeechRecognition:
    def __init__(self, decoder: WhisperDecoder, vad: SileroVad) -> None:
        self._decoder = decoder
        self.vad = vad
        self._worker = DecodeWorker()

    @classmethod
    def load(cls, whisper_dir: Path) -> SpeechRecognition:
        return cls(WhisperDecoder(whisper_dir), SileroVad.load())

    def final(self, audio: np.ndarray, *, prompt: str | None = None) -> asyncio.Future[Decoding]:
        """Decode a finished utterance ahead of every interim decode; cancel the future
        to drop it (speculative decodes whose speaker went on talking)."""
        return self._worker.submit(lambda: self._decoder.decode(audio, prompt=prompt))

    def interim(self, audio: np.ndarray, *, prompt: str | None = None) -> asyncio.Future[Decoding] | None:
        """Decode an utterance in progress, only if the worker is idle right now."""
        return self._worker.offer(lambda: self._decoder.decode(audio, prompt=prompt))

    async def transcribe_file(
        self, audio: np.ndarray, *, prompt: str | None = None, timestamps: bool = False
    ) -> Decoding:
        """A whole recording; empty text unless the VAD hears enough speech in it."""

        def run() -> Decoding:
            if self.vad.voiced_samples(audio) < MIN_SPEECH_SAMPLES:
                return Decoding(text="", segments=[], duration=len(audio) / 16_000)
            return self._decoder.decode(audio, prompt=prompt, timestamps=timestamps)

        decoding: Decoding = await self._worker.submit(run)
        return decoding

    async def aclose(self) -> None:
        await self._worker.aclose()
