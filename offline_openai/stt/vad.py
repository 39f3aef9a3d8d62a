"""Silero VAD, the same ONNX model the agent's own turn detection uses, shared by every
stream of the process: the inference session is loaded once and is safe to run from
several threads; each stream keeps only its own recurrent state.

Whisper writes text on silence and noise, so nothing reaches it unless this model heard
speech first."""

from __future__ import annotations

import numpy as np
import onnxruntime
from livekit.plugins.silero.onnx_model import OnnxModel, new_inference_session

SAMPLE_RATE = 16_000
WINDOW = 512  # samples per Silero window at 16 kHz: 32 ms
# Less voiced audio than this is a click, a cough or a breath: never worth a decode.
MIN_SPEECH_SAMPLES = SAMPLE_RATE // 4


class SileroVad:
    """The model, loaded once; `stream()` for live audio, `voiced_samples()` for a file."""

    def __init__(self, session: onnxruntime.InferenceSession) -> None:
        self._session = session

    @classmethod
    def load(cls) -> SileroVad:
        return cls(new_inference_session(force_cpu=True))

    def stream(self) -> VadStream:
        return VadStream(OnnxModel(onnx_session=self._session, sample_rate=SAMPLE_RATE))

    def voiced_samples(self, audio: np.ndarray, threshold: float = 0.5) -> int:
        """How much of `audio` (16 kHz float) the model calls speech, in samples."""
        probabilities = self.stream().push(audio)
        return WINDOW * sum(p >= threshold for p in probabilities)


class VadStream:
    """Speech probabilities of a live 16 kHz stream, one per complete 32 ms window; window
    k covers samples [k * WINDOW, (k + 1) * WINDOW) of everything pushed so far."""

    def __init__(self, model: OnnxModel) -> None:
        self._model = model
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, audio: np.ndarray) -> list[float]:
        pending = np.concatenate((self._pending, audio.astype(np.float32, copy=False)))
        whole = len(pending) - len(pending) % WINDOW
        probabilities = [self._model(pending[start : start + WINDOW]) for start in range(0, whole, WINDOW)]
        self._pending = pending[whole:]
        return probabilities
