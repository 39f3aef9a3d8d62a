"""Speech made on this machine with flite: the fake microphones of the browser tests and
the benchmarks speak real, recognisable words (flite voices are what the offline
recogniser hears best: 0.92-0.98 of the words)."""

from __future__ import annotations

import io
import subprocess
import wave
from pathlib import Path

import numpy as np
from livekit import rtc

from devtools import setup

VOICES = ("rms", "kal16", "awb", "slt")


def synthesize(text: str, *, voice: str = "rms", stretch: float = 1.0, rate: int = 48000) -> np.ndarray:
    """Mono 16-bit samples of `text` at `rate`; `stretch` < 1 speaks faster, > 1 slower."""
    flite = setup.flite()
    wav = subprocess.run(
        [str(flite), "-voice", voice, "--setf", f"duration_stretch={stretch}", "-t", text, "-o", "/dev/stdout"],
        check=True, capture_output=True,
    ).stdout
    samples, source_rate = read_wav(io.BytesIO(wav))
    return resample(samples, source_rate, rate)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target or not len(samples):
        return samples.astype(np.int16)
    resampler = rtc.AudioResampler(rate, target, num_channels=1)
    frames = [
        *resampler.push(rtc.AudioFrame(samples.astype(np.int16).tobytes(), rate, 1, len(samples))),
        *resampler.flush(),
    ]
    return np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in frames]) if frames else samples[:0]


def read_wav(source: Path | io.BytesIO) -> tuple[np.ndarray, int]:
    with wave.open(source if isinstance(source, io.BytesIO) else str(source), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise ValueError("expected mono 16-bit PCM")
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16), wav.getframerate()


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype(np.int16).tobytes())
    return path


def speech_wav(
    text: str, path: Path, *, rate: int = 48000, lead: float = 2.5, tail: float = 6.0, voice: str = "rms"
) -> Path:
    """A file of speech with silence before and after it (made once)."""
    if not path.exists():
        speech = synthesize(text, voice=voice, rate=rate)
        silence = [np.zeros(int(seconds * rate), np.int16) for seconds in (lead, tail)]
        write_wav(path, np.concatenate([silence[0], speech, silence[1]]), rate)
    return path
