"""Text cut into short phrases so that the first audio is ready sooner: Piper's time to the
first sample grows with the length of what it is given, and a reply is heard phrase by phrase.
"""

from __future__ import annotations

import re

# A sentence ends at . ! ? (and any closing quote or bracket) followed by a space.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
# A long sentence is cut after : ; , followed by a space.
_CLAUSE_END = re.compile(r"(?<=[:;,])\s+")
# Sentences with more words than this are cut at their clause ends.
LONG_SENTENCE_WORDS = 6


def split(text: str) -> list[str]:
    """The phrases of `text`, in order: its sentences, the long ones cut at : ; , ."""
    phrases: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        if len(sentence.split()) > LONG_SENTENCE_WORDS:
            phrases += _CLAUSE_END.split(sentence)
        else:
            phrases.append(sentence)
    return [phrase for phrase in (p.strip() for p in phrases) if phrase]
