"""faster-whisper, configured the way it was measured here, and the filter that keeps its
hallucinations out of the transcripts.

faster-whisper pads every input to 30 s, so a decode costs the same ~0.6 s of one core for
1 s of audio as for 8 s, and the encoder is nearly all of it. CTranslate2's encoder takes a
shorter window: an utterance is decoded in a window of its length plus 2 s, at least 15 s
(about a third of the cost). Shorter windows made Whisper repeat short phrases ("10 of clubs
10 of clubs ..."): at 10 s once in 33 decodes of the real recordings (clean, with noise, with
silence around them), at 15 s never, and its pooled WER was no worse than with 30 s. A text
that is one phrase said over and over is still taken for such a loop and said once. Longer
audio, a prompt, or segment timestamps take faster-whisper's own 30 s path.

Beam search (5) costs little more than greedy (the encoder dominates) and its pooled WER was
lower. There is no temperature fallback: a retry would double the cost of exactly the
decodes that are most likely garbage, which the filter then drops anyway."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer

BEAM_SIZE = 5
# faster-whisper skips a segment itself when no_speech_prob > 0.6 AND avg_logprob < -1.
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
# Above this, the text repeats itself ("you you you you ..."): a decoding loop, not speech.
COMPRESSION_RATIO_THRESHOLD = 2.4
_WORDLESS = re.compile(r"^[\W_]*$")
SAMPLE_RATE = 16_000
FRAMES_PER_SECOND = 100  # Whisper's mel frames
MIN_WINDOW_FRAMES = 15 * FRAMES_PER_SECOND
WINDOW_MARGIN_FRAMES = 2 * FRAMES_PER_SECOND
MAX_WINDOW_FRAMES = 30 * FRAMES_PER_SECOND
MAX_NEW_TOKENS = 224


@dataclass(frozen=True)
class Segment:
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


@dataclass(frozen=True)
class Decoding:
    text: str  # "" when nothing in the audio was speech
    segments: list[Segment]
    duration: float  # seconds of audio decoded


def once(text: str) -> str:
    """`text` said once when it is one phrase of two or more words repeated end to end (a
    decoding loop: "10 of clubs 10 of clubs"); otherwise unchanged. A word said twice
    ("five five") is speech, not a loop."""
    words = text.split()
    bare = [word.strip(".,!?;:").lower() for word in words]
    for size in range(2, len(words) // 2 + 1):
        if len(words) % size == 0 and bare == bare[:size] * (len(words) // size):
            return " ".join(words[:size])
    return text


def compression_ratio(text: str) -> float:
    """How well the text compresses: a decoding loop repeats itself and compresses well."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def silent(segment: Segment) -> bool:
    """Whisper's own test for "no speech here" (faster-whisper applies it on its path)."""
    return segment.no_speech_prob > NO_SPEECH_THRESHOLD and segment.avg_logprob < LOG_PROB_THRESHOLD


def believable(segment: Segment) -> bool:
    """False for what Whisper writes on silence, noise or a decoding loop."""
    return segment.compression_ratio <= COMPRESSION_RATIO_THRESHOLD and not _WORDLESS.match(segment.text)


class WhisperDecoder:
    """One loaded model. Not thread-safe by contract: the worker calls it from one thread."""

    def __init__(self, whisper_dir: Path, *, threads: int = 1) -> None:
        self._model = WhisperModel(
            str(whisper_dir), device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True
        )
        self._tokenizer = Tokenizer(self._model.hf_tokenizer, False, task="transcribe", language="en")

    def decode(self, audio: np.ndarray, *, prompt: str | None = None, timestamps: bool = False) -> Decoding:
        """Transcribe 16 kHz float32 English speech."""
        features = self._model.feature_extractor(audio)
        if prompt or timestamps or features.shape[-1] + WINDOW_MARGIN_FRAMES > MAX_WINDOW_FRAMES:
            return self._decode_30s(audio, prompt=prompt, timestamps=timestamps)
        window = max(MIN_WINDOW_FRAMES, features.shape[-1] + WINDOW_MARGIN_FRAMES)
        segment = self._decode_window(pad_or_trim(features, window), duration=len(audio) / SAMPLE_RATE)
        kept = [segment] if believable(segment) and not silent(segment) else []
        return Decoding(text="".join(s.text for s in kept).strip(), segments=kept, duration=len(audio) / SAMPLE_RATE)

    def _decode_window(self, features: np.ndarray, *, duration: float) -> Segment:
        """One beam decode of a window shorter than 30 s, scored as faster-whisper
        scores its segments."""
        encoded = self._model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])))
        prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        result = self._model.model.generate(
            encoded, [prompt], beam_size=BEAM_SIZE, max_length=len(prompt) + MAX_NEW_TOKENS,
            return_scores=True, return_no_speech_prob=True, suppress_blank=True, suppress_tokens=[-1],
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        text = once(self._tokenizer.decode(tokens).strip())
        return Segment(
            id=0, seek=0, start=0.0, end=duration, text=text, tokens=tokens, temperature=0.0,
            avg_logprob=result.scores[0] * len(tokens) / (len(tokens) + 1),
            compression_ratio=compression_ratio(text), no_speech_prob=result.no_speech_prob,
        )

    def _decode_30s(self, audio: np.ndarray, *, prompt: str | None, timestamps: bool) -> Decoding:
        raw, _ = self._model.transcribe(
            audio,
            language="en",
            beam_size=BEAM_SIZE,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=not timestamps,
            initial_prompt=prompt or None,
            no_speech_threshold=NO_SPEECH_THRESHOLD,
            log_prob_threshold=LOG_PROB_THRESHOLD,
            compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
        )
        segments = [
            Segment(
                id=s.id,
                seek=s.seek,
                start=s.start,
                end=s.end,
                text=s.text,
                tokens=list(s.tokens),
                temperature=s.temperature or 0.0,
                avg_logprob=s.avg_logprob,
                compression_ratio=s.compression_ratio,
                no_speech_prob=s.no_speech_prob,
            )
            for s in raw
        ]
        kept = [s for s in segments if believable(s)]
        return Decoding(text="".join(s.text for s in kept).strip(), segments=kept, duration=len(audio) / 16_000)
