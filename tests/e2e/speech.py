"""Speech for the browser tests: fake-microphone recordings of known sentences (flite voices
at several rates), and recognition of what a page heard, with the agent's own recogniser.

A recording is a timeline: a pause, a sentence, a pause, the next sentence... Chromium plays
it as the microphone (in a loop, or once with ``%noloop``), so a test knows what the person
said, and when.
Word checks use content words: the recogniser hears 0.92-0.98 of the words of these voices,
so a missed "a" or "at" must not fail a test, but another sentence's words must.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.voice.agent.providers.local.sphinx import Recognizer
from devtools.speech import resample, synthesize, write_wav
from devtools.stack import ROOT

AUDIO_DIR = ROOT / "artifacts" / "audio"
MIC_RATE = 48000
STT_RATE = 16000
# Words too short or too common to tell two sentences apart (and the ones the recogniser
# most often mishears: "a", "at", "the").
STOPWORDS = frozenset(
    "a an and are at be but by can do for i i'm in is it me my of on or so that the this to "
    "was what you your you're said".split()
)


# Share of a sentence's content words that must be heard where a test checks what was said.
# The recogniser hears 0.92-0.98 of these voices' words through Opus, so 0.75 allows one
# miss in a short sentence, while a wrong sentence (cross-talk, a scripted line) shares next
# to none.
WORD_SHARE = 0.75


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def content_words(text: str) -> set[str]:
    return {word for word in words(text) if word not in STOPWORDS}


def share_heard(expected: str, heard: str) -> float:
    """Fraction of the content words of `expected` that are in `heard`."""
    wanted = content_words(expected)
    return len(wanted & set(words(heard))) / len(wanted) if wanted else 1.0


@dataclass(frozen=True)
class Utterance:
    """One sentence of a recording, and the silence after it."""

    text: str
    voice: str = "rms"  # a flite voice: rms, kal16, awb, slt
    stretch: float = 1.0  # flite's duration_stretch: < 1 faster, > 1 slower
    pause_after: float = 6.0


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
        speech = synthesize(utterance.text, voice=utterance.voice, stretch=utterance.stretch, rate=MIC_RATE)
        spans.append((t, t + len(speech) / MIC_RATE))
        t += len(speech) / MIC_RATE + utterance.pause_after
        parts += [speech, np.zeros(int(utterance.pause_after * MIC_RATE), np.int16)]
    if not path.exists():
        write_wav(path, np.concatenate(parts), MIC_RATE)
    return Recording(path, tuple(utterances), tuple(spans))


def sound_file(name: str, samples: np.ndarray, rate: int = MIC_RATE) -> Path:
    """A fake-microphone file of arbitrary samples (silence, noise...)."""
    return write_wav(AUDIO_DIR / f"{name}.wav", samples, rate)


_recognizer: Recognizer | None = None


def recognize(samples: np.ndarray, rate: int) -> str:
    """What the agent's recogniser hears in this audio ("" for nothing credible)."""
    global _recognizer
    _recognizer = _recognizer or Recognizer()
    return _recognizer.recognize(resample(samples, rate, STT_RATE).tobytes())
