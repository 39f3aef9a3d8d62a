"""Speech for the browser tests: fake-microphone recordings of known sentences (flite voices
at several rates, and real people's recordings), and recognition of what a page heard, with
the offline server's recogniser (Whisper tiny.en).

A recording is a timeline: a pause, a sentence, a pause, the next sentence... Chromium plays
it as the microphone (in a loop, or once with ``%noloop``), so a test knows what the person
said, and when.
Word checks use content words: the recogniser hears 0.92-0.98 of the words of these voices,
so a missed "a" or "at" must not fail a test, but another sentence's words must.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel

from devtools.speech import read_wav, resample, synthesize, write_wav
from devtools.stack import ROOT
from offline_openai.model_files import locate
from offline_openai.wer import normalise

AUDIO_DIR = ROOT / "artifacts" / "audio"
HUMAN_DIR = ROOT / "tests" / "data" / "human"
HUMAN_TRANSCRIPTS: dict[str, str] = json.loads((HUMAN_DIR / "transcripts.json").read_text())
MIC_RATE = 48000
STT_RATE = 16000
# Words too short or too common to tell two sentences apart (and the ones the recogniser
# most often mishears: "a", "at", "the").
STOPWORDS = frozenset(
    "a an and are at be but by can do for i im in is it me my of on or so that the this to "
    "was what you your youre said".split()
)


# Share of a sentence's content words that must be heard where a test checks what was said.
# The recogniser hears 0.92-0.98 of these voices' words through Opus, so 0.75 allows one
# miss in a short sentence, while a wrong sentence (cross-talk, a scripted line) shares next
# to none.
WORD_SHARE = 0.75


def words(text: str) -> list[str]:
    """The words of `text`, normalised as the word error rate is (digits spelt out)."""
    return normalise(text)


def content_words(text: str) -> set[str]:
    return {word for word in words(text) if word not in STOPWORDS}


def share_heard(expected: str, heard: str) -> float:
    """Fraction of the content words of `expected` that are in `heard`."""
    wanted = content_words(expected)
    return len(wanted & set(words(heard))) / len(wanted) if wanted else 1.0


@dataclass(frozen=True)
class Utterance:
    """One sentence of a recording, and the silence after it: made with flite, or (`human`
    names a file of tests/data/human) a real person's recording, whose words are `text`."""

    text: str
    voice: str = "rms"  # a flite voice: rms, kal16, awb, slt
    stretch: float = 1.0  # flite's duration_stretch: < 1 faster, > 1 slower
    pause_after: float = 6.0
    human: str = ""

    def samples(self, rate: int) -> np.ndarray:
        if self.human:
            return resample(*read_wav(HUMAN_DIR / self.human), rate)
        return synthesize(self.text, voice=self.voice, stretch=self.stretch, rate=rate)


def human(name: str, *, pause_after: float = 6.0) -> Utterance:
    """A real person's recording (tests/data/human) with its reference transcript."""
    return Utterance(HUMAN_TRANSCRIPTS[name], pause_after=pause_after, human=name)


@dataclass(frozen=True)
class Recording:
    path: Path
    utterances: tuple[Utterance, ...]
    # (start, end) of each sentence, seconds from the start of the file.
    spans: tuple[tuple[float, float], ...]

    @property
    def noloop(self) -> str:
        """The Chromium flag value that plays the file once, then silence."""
        return f"{self.path}%noloop"

    @property
    def text(self) -> str:
        return " ".join(u.text for u in self.utterances)


def recording(utterances: list[Utterance], *, lead: float = 2.5, name: str = "speech") -> Recording:
    """A 48 kHz mono 16-bit WAV of the utterances with their pauses (made once, cached)."""
    key = hashlib.sha1(repr((utterances, lead)).encode()).hexdigest()[:12]
    path = AUDIO_DIR / f"{name}-{key}.wav"
    parts = [np.zeros(int(lead * MIC_RATE), np.int16)]
    spans, t = [], lead
    for utterance in utterances:
        speech = utterance.samples(MIC_RATE)
        spans.append((t, t + len(speech) / MIC_RATE))
        t += len(speech) / MIC_RATE + utterance.pause_after
        parts += [speech, np.zeros(int(utterance.pause_after * MIC_RATE), np.int16)]
    if not path.exists():
        write_wav(path, np.concatenate(parts), MIC_RATE)
    return Recording(path, tuple(utterances), tuple(spans))


def sound_file(name: str, samples: np.ndarray, rate: int = MIC_RATE) -> Path:
    """A fake-microphone file of arbitrary samples (silence, noise...)."""
    return write_wav(AUDIO_DIR / f"{name}.wav", samples, rate)


@functools.cache
def _whisper() -> WhisperModel:
    return WhisperModel(str(locate().whisper_dir), device="cpu", compute_type="int8", cpu_threads=1)


def recognize(samples: np.ndarray, rate: int) -> str:
    """What Whisper hears in this audio ("" for nothing credible: its VAD filter drops silence)."""
    audio = resample(samples, rate, STT_RATE).astype(np.float32) / 32768.0
    segments, _ = _whisper().transcribe(
        audio, language="en", beam_size=1, condition_on_previous_text=False, vad_filter=True
    )
    return " ".join(segment.text.strip() for segment in segments)
