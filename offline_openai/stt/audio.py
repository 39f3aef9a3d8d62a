"""PCM plumbing between the wire (24 kHz pcm16, as OpenAI's realtime API takes it) and the
engines (16 kHz float32, what Whisper and Silero take)."""

from __future__ import annotations

import av
import numpy as np

ENGINE_RATE = 16_000


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian signed 16-bit samples as float32 in [-1, 1)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


class StreamResampler:
    """A resampler for one live stream (libswresample through PyAV): it keeps the filter's
    state between chunks, so chunk boundaries leave no clicks."""

    def __init__(self, input_rate: int) -> None:
        self._input_rate = input_rate
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=ENGINE_RATE)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """16-bit PCM samples at the input rate in, float32 samples at 16 kHz out."""
        if self._input_rate == ENGINE_RATE:
            return pcm16_to_float(samples.tobytes())
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self._input_rate
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


class AudioBuffer:
    """The 16 kHz audio of one stream, addressed by absolute sample index since the stream
    began, so that positions stay valid while old audio is dropped."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._start = 0  # absolute index of the first sample still held
        self.end = 0  # absolute index one past the last sample written

    def append(self, samples: np.ndarray) -> None:
        if len(samples):
            self._chunks.append(samples)
            self.end += len(samples)

    def slice(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end), clipped to what is still held."""
        held = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.float32)
        self._chunks = [held] if len(held) else []
        lo, hi = max(start, self._start) - self._start, max(min(end, self.end), self._start) - self._start
        return held[lo:hi]

    def forget_before(self, index: int) -> None:
        """Drop whole chunks that end at or before `index` (memory stays bounded)."""
        while self._chunks and self._start + len(self._chunks[0]) <= index:
            self._start += len(self._chunks.pop(0))
