"""Local agreement: which words of an utterance in progress are safe to show.

Each interim decode re-reads the whole utterance so far, and its last words change as more
audio arrives ("for" becomes "four queen"). A word is emitted once two successive
hypotheses agree on it and on everything before it; emitted text is never taken back, so
the realtime deltas only ever append (the final transcript, sent separately, may still
differ)."""

from __future__ import annotations

# Whisper ends each hypothesis with a full stop or a question mark: "weather." then
# "weather like in Paris": the same word, which must not break the agreement.
TRAILING = ".,!?;:"


def _bare(word: str) -> str:
    return word.rstrip(TRAILING).lower()


class LocalAgreement:
    def __init__(self) -> None:
        self._previous: list[str] = []
        self._emitted: list[str] = []

    def update(self, hypothesis: str) -> str:
        """The text to append after this hypothesis: "" or words, space-separated from
        what was emitted before."""
        words = hypothesis.split()
        stable: list[str] = []
        for old, new in zip(self._previous, words, strict=False):
            if _bare(old) != _bare(new):
                break
            stable.append(new.rstrip(TRAILING))
        self._previous = words
        if len(stable) <= len(self._emitted) or stable[: len(self._emitted)] != self._emitted:
            return ""
        added = stable[len(self._emitted) :]
        self._emitted = stable
        return (" " if len(self._emitted) > len(added) else "") + " ".join(added)
