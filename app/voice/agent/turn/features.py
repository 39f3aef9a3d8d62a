"""Whisper's log-mel spectrogram (80 bins, 25 ms windows every 10 ms, 8 s), the input of
smart-turn, computed with numpy as pipecat does (pipecat/audio/turn/smart_turn/
_whisper_features.py, itself from Hugging Face transformers' WhisperFeatureExtractor,
Apache-2.0), so no torch or transformers is needed."""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SAMPLE_RATE = 16000
WINDOW_SECONDS = 8
WINDOW_SAMPLES = SAMPLE_RATE * WINDOW_SECONDS
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
    edges = _hz_to_mel(np.array([0.0, SAMPLE_RATE / 2]))
    filter_freqs = _mel_to_hz(np.linspace(edges[0], edges[1], _N_MELS + 2))
    fft_freqs = np.linspace(0, SAMPLE_RATE // 2, bins)
    slopes = filter_freqs[None, :] - fft_freqs[:, None]
    diff = np.diff(filter_freqs)
    down = -slopes[:, :-2] / diff[:-1]
    up = slopes[:, 2:] / diff[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    filters *= (2.0 / (filter_freqs[2 : _N_MELS + 2] - filter_freqs[:_N_MELS]))[None, :]
    return filters


@functools.cache
def _window() -> np.ndarray:
    return np.hanning(_N_FFT + 1)[:-1]


def last_window(audio: np.ndarray) -> np.ndarray:
    """The last 8 s of the turn as float32 in [-1, 1], zero-padded at the front when shorter."""
    x = np.asarray(audio)
    if x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
    x = x[-WINDOW_SAMPLES:]
    return np.pad(x, (WINDOW_SAMPLES - x.size, 0)).astype(np.float32)


def log_mel_features(audio: np.ndarray) -> np.ndarray:
    """Log-mel features of exactly 8 s of 16 kHz float audio: shape (80, 800)."""
    x = np.asarray(audio, dtype=np.float32)
    x = np.pad(x, (0, WINDOW_SAMPLES - x.size)) if x.size < WINDOW_SAMPLES else x[:WINDOW_SAMPLES]
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), (_N_FFT // 2, _N_FFT // 2), mode="reflect")
    frames = sliding_window_view(padded, _N_FFT)[::_HOP]
    power = (np.abs(np.fft.rfft(frames * _window(), axis=-1)) ** 2).T
    log_spec = np.log10(np.maximum(1e-10, _mel_filters().T @ power))[:, :-1]
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    features: np.ndarray = ((log_spec + 4.0) / 4.0).astype(np.float32)
    return features
