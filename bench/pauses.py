"""The natural-pause test set: sentences with mid-sentence pauses of 200-700 ms, spoken by
the four flite voices at three speaking rates.

Each sentence is written with commas where a person would pause ("I would like to book a
table, for two people, tomorrow evening."): flite speaks it in one go with a short phrase
break and continuation intonation at each comma. The quiet stretch at each comma (the
longest quiet stretches inside the sentence) is then replaced by a pause of the target
length, so every pause is exactly 0.2-0.7 s of silence between two words, with a faint
noise floor (-60 dBFS) as a microphone would have. Pause lengths cycle through
PAUSES so that every voice and rate meets every length.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

RATE = 16000
VOICES = ("rms", "slt", "kal16", "awb")
STRETCHES = (0.85, 1.0, 1.25)  # flite duration_stretch: faster, normal, slower
PAUSES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
NOISE_DBFS = -60.0
LEAD = 0.5  # silence before the sentence
TAIL = 3.5  # silence after it (longer than any endpointing window measured)

SENTENCES = (
    "I would like to book a table, for two people, tomorrow evening.",
    "Can you tell me, what the weather will be like, this weekend?",
    "My name is, John Smith, and I live in Boston.",
    "I need to change, my flight to Paris.",
    "What time does, the museum open on Sunday?",
    "Please remind me, to call my mother, at six o'clock.",
    "I was thinking, that maybe we could, go to the park.",
    "The order number is, four five seven, two nine one.",
    "Could you play, some relaxing music, for me?",
    "I am looking for, a good restaurant, near the station.",
    "Send a message to Anna, saying I will be late.",
    "How far is it, from here to the airport?",
)


@dataclass
class Utterance:
    text: str
    voice: str
    stretch: float
    samples: np.ndarray  # int16, RATE, with LEAD before and TAIL after
    speech_start: float  # seconds into samples
    speech_end: float  # the last voiced sample
    pauses: list[tuple[float, float]] = field(default_factory=list)  # (start, end) in seconds

    @property
    def name(self) -> str:
        return f"{self.voice}@{self.stretch:g}: {self.text}"


def _levels(samples: np.ndarray, win: int) -> np.ndarray:
    n = len(samples) // win
    frames = samples[: n * win].astype(np.float64).reshape(n, win) / 32768.0
    return 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-9)


def _quiet_runs(samples: np.ndarray, win: int, threshold: float = -45.0) -> list[tuple[int, int]]:
    """(start window, length in windows) of each quiet stretch."""
    quiet = _levels(samples, win) < threshold
    runs, i = [], 0
    while i < len(quiet):
        if quiet[i]:
            j = i
            while j < len(quiet) and quiet[j]:
                j += 1
            runs.append((i, j - i))
            i = j
        else:
            i += 1
    return runs


def with_pauses(speech: np.ndarray, commas: int, pauses: list[float]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Trim `speech`, replace its `commas` longest inner quiet stretches with the given pauses.
    Returns the new voiced samples and each pause's (start, end) in seconds from its start."""
    win = RATE // 100
    runs = _quiet_runs(speech, win)
    voiced_start = runs[0][1] if runs and runs[0][0] == 0 else 0
    voiced_end = runs[-1][0] if runs and runs[-1][0] + runs[-1][1] >= len(speech) // win else len(speech) // win
    inner = [r for r in runs if r[0] > voiced_start and r[0] + r[1] < voiced_end]
    chosen = sorted(sorted(inner, key=lambda r: -r[1])[:commas])
    pieces, marks, cursor, out_len = [], [], voiced_start * win, 0
    for (start, length), pause in zip(chosen, pauses, strict=False):
        piece = speech[cursor : start * win]
        pieces.append(piece)
        out_len += len(piece)
        gap = np.zeros(int(pause * RATE), np.int16)
        marks.append((out_len / RATE, (out_len + len(gap)) / RATE))
        pieces.append(gap)
        out_len += len(gap)
        cursor = (start + length) * win
    pieces.append(speech[cursor : voiced_end * win])
    return np.concatenate(pieces), marks


def build(
    sentences: tuple[str, ...] = SENTENCES, voices: tuple[str, ...] = VOICES, stretches: tuple[float, ...] = STRETCHES
) -> list[Utterance]:
    from devtools import speech

    rng = np.random.default_rng(15)
    lengths = itertools.cycle(PAUSES)
    out = []
    for text, voice, stretch in itertools.product(sentences, voices, stretches):
        commas = text.count(",")
        raw = speech.synthesize(text, voice=voice, stretch=stretch, rate=RATE)
        voiced, marks = with_pauses(raw, commas, [next(lengths) for _ in range(commas)])
        lead, tail = np.zeros(int(LEAD * RATE), np.int16), np.zeros(int(TAIL * RATE), np.int16)
        audio = np.concatenate([lead, voiced, tail]).astype(np.float64)
        audio += rng.normal(0.0, 32768 * 10 ** (NOISE_DBFS / 20), len(audio))
        out.append(
            Utterance(
                text=text,
                voice=voice,
                stretch=stretch,
                samples=np.clip(audio, -32768, 32767).astype(np.int16),
                speech_start=LEAD,
                speech_end=LEAD + len(voiced) / RATE,
                pauses=[(LEAD + a, LEAD + b) for a, b in marks],
            )
        )
    return out
