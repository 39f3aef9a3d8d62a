"""Word error rate, with the normalisation that makes Whisper's output comparable to a
spoken reference: Whisper writes "10 of clubs" and "ill-disposed" where the reference
says "ten of clubs" and "ill disposed". Tests, benchmarks and end-to-end runs share it so
that every number the project quotes is measured the same way."""

from __future__ import annotations

import re
from collections.abc import Iterable

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(number: int) -> str:
    """0-99 as words ("42" -> "forty two"); other numbers are left as digits."""
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    return str(number)


def normalise(text: str) -> list[str]:
    """Lowercase words: hyphens become spaces, other punctuation goes, 0-99 become words."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^\w\s']|_", " ", text).replace("'", "")
    text = re.sub(r"\d+", lambda match: f" {number_words(int(match.group()))} ", text)
    return text.split()


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance over words (substitutions, insertions, deletions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(errors, reference words) after normalising both sides."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    return edit_distance(ref, hyp), len(ref)


def wer(reference: str, hypothesis: str) -> float:
    errors, words = word_errors(reference, hypothesis)
    return errors / max(words, 1)


def pooled_wer(pairs: Iterable[tuple[str, str]]) -> float:
    """Total errors over total reference words, across (reference, hypothesis) pairs: a
    long recording weighs more than a short one, unlike the mean of per-file rates."""
    errors = words = 0
    for reference, hypothesis in pairs:
        e, w = word_errors(reference, hypothesis)
        errors, words = errors + e, words + w
    return errors / max(words, 1)
