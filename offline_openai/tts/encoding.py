"""Piper's samples in the formats of OpenAI's speech endpoint, 24 kHz mono like OpenAI's,
encoded as they come so that each phrase is sent as soon as it is synthesised.
"""

from __future__ import annotations

import struct
from typing import Literal

import av
import numpy as np

SAMPLE_RATE = 24_000  # what OpenAI's speech endpoint sends, and what the plugin expects
Format = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]

CONTENT_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac",
    "flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm",
}
# (container, codec) of the compressed formats, all of them streamable.
_CODECS: dict[str, tuple[str, str]] = {
    "mp3": ("mp3", "libmp3lame"), "opus": ("ogg", "libopus"), "aac": ("adts", "aac"), "flac": ("flac", "flac"),
}


def wav_header() -> bytes:
    """A WAV header for a stream of unknown length (sizes at their maximum, as streamers do)."""
    byte_rate = SAMPLE_RATE * 2
    return (
        b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE, byte_rate, 2, 16)
        + b"data" + struct.pack("<I", 0xFFFFFFFF)
    )


class _Muxed:
    """A compressed format: PyAV's encoder and muxer writing to a sink that is emptied after
    each phrase. The sink has no seek, so muxers write their headers up front and patch nothing
    at the end, which is what makes these formats streamable."""

    def __init__(self, container_format: str, codec: str) -> None:
        self._data = bytearray()
        # Ogg holds its pages back for a second by default: a page per 100 ms instead.
        options = {"page_duration": "100000"} if container_format == "ogg" else {}
        self._container = av.open(self, mode="w", format=container_format, options=options)
        stream = self._container.add_stream(codec, rate=SAMPLE_RATE, layout="mono")
        assert isinstance(stream, av.AudioStream)
        self._stream = stream

    def write(self, data: bytes) -> int:  # the sink's side, called by PyAV
        self._data += data
        return len(data)

    def encode(self, frame: av.AudioFrame | None) -> bytes:
        self._container.mux(self._stream.encode(frame))
        data, self._data = bytes(self._data), bytearray()
        return data

    def finish(self) -> bytes:
        data = self.encode(None)
        self._container.close()
        return data + bytes(self._data)

    def close(self) -> None:
        self._container.close()


class Encoder:
    """Turns phrases of 16-bit mono samples into the bytes of one response, in order.

    The resampler (Piper's rate to 24 kHz) and the encoder keep their state across phrases,
    so the joins are seamless; `finish` flushes both."""

    def __init__(self, response_format: Format, input_rate: int) -> None:
        self.content_type = CONTENT_TYPES[response_format]
        self._input_rate = input_rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._header = wav_header() if response_format == "wav" else b""
        self._muxed = _Muxed(*_CODECS[response_format]) if response_format in _CODECS else None

    def encode(self, samples: np.ndarray) -> bytes:
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self._input_rate
        return self._out(self._resampler.resample(frame))

    def finish(self) -> bytes:
        data = self._out(self._resampler.resample(None))
        return data + self._muxed.finish() if self._muxed is not None else data

    def _out(self, frames: list[av.AudioFrame]) -> bytes:
        header, self._header = self._header, b""
        if self._muxed is None:
            return header + b"".join(frame.to_ndarray().tobytes() for frame in frames)
        return b"".join(self._muxed.encode(frame) for frame in frames)

    def close(self) -> None:
        """Release the encoder (closing twice is harmless)."""
        if self._muxed is not None:
            self._muxed.close()
