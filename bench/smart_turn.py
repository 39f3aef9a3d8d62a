"""The audio end-of-turn model smart-turn v3.2 (pipecat-ai, BSD-2), run with onnxruntime,
for `python -m bench endpointing`.

Given the audio of a turn so far (16 kHz mono, the last 8 s are used), the model says how
likely it is that the person has finished their sentence, from the sound alone (words and
intonation), so a short silence after a complete sentence can end the turn while a pause
inside a sentence waits longer.

The .onnx file ships inside the pipecat-ai wheel: `model_path()` downloads the wheel once
(`pip download --no-deps`, 12 MB) and extracts the model (8.7 MB) to artifacts/bench/,
without installing pipecat or its dependencies.

The features are Whisper's log-mel spectrogram (80 bins, 25 ms windows every 10 ms, 8 s),
computed with numpy as pipecat does (pipecat/audio/turn/smart_turn/_whisper_features.py,
itself derived from Hugging Face transformers' WhisperFeatureExtractor, Apache-2.0).
"""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SAMPLE_RATE = 16000
WINDOW_SECONDS = 8
PIPECAT = "pipecat-ai==1.14.0"
MODEL_MEMBER = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
CACHE = Path(__file__).resolve().parent.parent / "artifacts" / "bench" / "smart-turn"


def model_path() -> Path:
    """The .onnx, extracted from the pipecat-ai wheel on first use (checked by its SHA-256)."""
    import hashlib

    target = CACHE / Path(MODEL_MEMBER).name
    if not target.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(CACHE), PIPECAT], check=True
        )
        wheel = next(CACHE.glob("pipecat_ai-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MODEL_MEMBER)
        if hashlib.sha256(data).hexdigest() != MODEL_SHA256:
            raise RuntimeError(f"{MODEL_MEMBER} in {wheel.name} is not the model measured here")
        target.write_bytes(data)
        wheel.unlink()
    return target

_N_FFT = 400
_HOP = 160
_N_MELS = 80


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    freq = np.atleast_1d(np.asarray(freq, dtype=np.float64))
    mels = 3.0 * freq / 200.0
    high = freq >= 1000.0
    mels[high] = 15.0 + np.log(freq[high] / 1000.0) * (27.0 / np.log(6.4))
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.atleast_1d(np.asarray(mels, dtype=np.float64))
    freq = 200.0 * mels / 3.0
    high = mels >= 15.0
    freq[high] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mels[high] - 15.0))
    return freq


@functools.cache
def _mel_filters() -> np.ndarray:
    """Slaney-normalised triangular filters, shape (n_fft // 2 + 1, 80)."""
    bins = _N_FFT // 2 + 1
    mel_points = np.linspace(_hz_to_mel(np.array([0.0]))[0], _hz_to_mel(np.array([SAMPLE_RATE / 2]))[0], _N_MELS + 2)
    filter_freqs = _mel_to_hz(mel_points)
    fft_freqs = np.linspace(0, SAMPLE_RATE // 2, bins)
    slopes = filter_freqs[None, :] - fft_freqs[:, None]
    diff = np.diff(filter_freqs)
    down = -slopes[:, :-2] / diff[:-1]
    up = slopes[:, 2:] / diff[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    filters *= (2.0 / (filter_freqs[2 : _N_MELS + 2] - filter_freqs[:_N_MELS]))[None, :]
    return filters


def log_mel_features(audio: np.ndarray) -> np.ndarray:
    """Whisper log-mel features of exactly 8 s of 16 kHz audio (float in [-1, 1]): (80, 800)."""
    n = SAMPLE_RATE * WINDOW_SECONDS
    x = np.asarray(audio, dtype=np.float32)
    x = np.pad(x, (0, n - x.size)) if x.size < n else x[:n]
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), (_N_FFT // 2, _N_FFT // 2), mode="reflect")
    window = np.hanning(_N_FFT + 1)[:-1]
    frames = sliding_window_view(padded, _N_FFT)[::_HOP]
    power = (np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2).T
    log_spec = np.log10(np.maximum(1e-10, _mel_filters().T @ power))[:, :-1]
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    features: np.ndarray = ((log_spec + 4.0) / 4.0).astype(np.float32)
    return features


def last_window(audio: np.ndarray) -> np.ndarray:
    """The last 8 s of the turn as float32, zero-padded at the front when shorter."""
    x = np.asarray(audio)
    if x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
    n = SAMPLE_RATE * WINDOW_SECONDS
    x = x[-n:]
    return np.pad(x, (n - x.size, 0)).astype(np.float32)


class SmartTurnModel:
    """One onnxruntime session (one thread); ``probability`` is safe to call from threads."""

    def __init__(self, path: Path | str | None = None) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        path = path or model_path()
        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session: Any = ort.InferenceSession(str(path), sess_options=options)
        self._lock = threading.Lock()

    def probability(self, audio: np.ndarray) -> float:
        """How likely the turn is complete, from its audio so far (16 kHz mono)."""
        features = log_mel_features(last_window(audio))[None, :, :]
        with self._lock:
            outputs = self._session.run(None, {"input_features": features})
        return float(np.asarray(outputs[0]).reshape(-1)[0])
