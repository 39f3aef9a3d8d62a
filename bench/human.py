"""The real people's recordings (tests/data/human) as the bench uses them: 16 kHz samples
with their reference transcripts, and one fake-microphone file that says them one after the
other. Read from the data folder directly (bench does not import tests)."""

from __future__ import annotations

import hashlib
import io
import json
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import common
from devtools.speech import read_wav, resample, write_wav

FOLDER = common.ROOT / "tests" / "data" / "human"
RATE = 16000
MIC_RATE = 48000  # Chromium's fake capture device


@dataclass(frozen=True)
class Recording:
    name: str
    samples: np.ndarray  # int16 mono at RATE
    reference: str

    @property
    def seconds(self) -> float:
        return len(self.samples) / RATE


def load() -> list[Recording]:
    """All of them, in the transcripts file's order; goforward.raw is headerless s16le 16 kHz."""
    references: dict[str, str] = json.loads((FOLDER / "transcripts.json").read_text())
    out = []
    for name, reference in references.items():
        path = FOLDER / name
        if path.suffix == ".raw":
            samples, rate = np.frombuffer(path.read_bytes(), dtype="<i2").astype(np.int16), RATE
        else:
            samples, rate = read_wav(path)
        if rate != RATE:
            samples = resample(samples, rate, RATE)
        out.append(Recording(name, samples, reference))
    return out


def wav_bytes(recording: Recording) -> bytes:
    """The recording as a WAV file's bytes, for an upload."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(recording.samples.tobytes())
    return out.getvalue()


@dataclass(frozen=True)
class MicFile:
    path: Path
    spans: list[tuple[float, float]]  # (start, end) of each recording, seconds into the file
    seconds: float


def pause_after(recording: Recording) -> float:
    """Room for the agent's answer ("You said: <the words>." read by Piper at ~2.5 words/s)
    before the next recording, so that the person does not talk over it: at least 7 s."""
    return max(7.0, 3.0 + 0.45 * len(recording.reference.split()))


def mic_file(recordings: list[Recording], lead: float = 2.5) -> MicFile:
    """A 48 kHz WAV for --use-file-for-fake-audio-capture=PATH%noloop: `lead` s of silence,
    then each recording followed by its pause (digital silence)."""
    parts, spans, t = [np.zeros(int(lead * MIC_RATE), np.int16)], [], lead
    for r in recordings:
        speech = resample(r.samples, RATE, MIC_RATE)
        spans.append((t, t + len(speech) / MIC_RATE))
        pause = pause_after(r)
        parts += [speech, np.zeros(int(pause * MIC_RATE), np.int16)]
        t += len(speech) / MIC_RATE + pause
    audio = np.concatenate(parts)
    key = hashlib.sha1(audio.tobytes()).hexdigest()[:12]
    path = common.CACHE / f"human-mic-{key}.wav"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, audio, MIC_RATE)
    return MicFile(path, spans, len(audio) / MIC_RATE)
