"""Speech synthesis with Piper, one phrase at a time on a worker thread of its own.

The voice runs on one ONNX Runtime thread that does not spin while it waits, as the Silero
VAD does: Piper's default (a thread per core, spinning) cost more CPU per phrase for no gain
in wall time, and starved the other sessions' work under load (bench/README.md, "The
offline set", has the numbers).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime
from piper import PiperConfig, PiperVoice, SynthesisConfig

from offline_openai.tts import phrases


class SpeechSynthesis:
    """One Piper voice, loaded once per process; speech comes out phrase by phrase."""

    def __init__(self, voice: PiperVoice) -> None:
        self._voice = voice
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="piper")

    @classmethod
    def load(cls, piper_model: Path) -> SpeechSynthesis:
        config = json.loads(piper_model.with_name(piper_model.name + ".json").read_text(encoding="utf-8"))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(
            str(piper_model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        return cls(PiperVoice(session=session, config=PiperConfig.from_dict(config)))

    @property
    def sample_rate(self) -> int:
        return self._voice.config.sample_rate

    def _synthesize(self, phrase: str, config: SynthesisConfig) -> np.ndarray:
        chunks = [chunk.audio_int16_array for chunk in self._voice.synthesize(phrase, config)]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    async def speak(self, text: str, *, speed: float = 1.0) -> AsyncGenerator[np.ndarray, None]:
        """Mono 16-bit samples at `sample_rate`, one array per phrase; the next phrase is
        synthesised while the caller sends the current one."""
        loop = asyncio.get_running_loop()
        config = SynthesisConfig(length_scale=self._voice.config.length_scale / speed)
        parts = phrases.split(text)
        upcoming: asyncio.Future[np.ndarray] | None = None
        try:
            for index, phrase in enumerate(parts):
                current = upcoming or loop.run_in_executor(self._worker, self._synthesize, phrase, config)
                upcoming = None
                if index + 1 < len(parts):
                    upcoming = loop.run_in_executor(self._worker, self._synthesize, parts[index + 1], config)
                yield await current
        finally:
            if upcoming is not None:  # the caller stopped listening: drop the phrase not sent
                upcoming.cancel()

    async def aclose(self) -> None:
        """Drop the phrases not begun, wait for the one in progress, stop the worker thread."""
        shutdown = functools.partial(self._worker.shutdown, cancel_futures=True)
        await asyncio.get_running_loop().run_in_executor(None, shutdown)
