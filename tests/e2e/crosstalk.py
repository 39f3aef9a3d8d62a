"""The cross-talk checker: given what several simultaneous sessions each said and what each
one's page, socket, database and speaker ended up with, report every place where a session
lacks its own words or holds another session's.

A session's "own" words are the content words of its sentence; another session's words are
those of its sentence that this one's sentence does not share. The agent echoes what it
heard, so its audio, recognised in the page, must carry the session's own words too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.e2e.speech import content_words, share_heard, words

# Share of its own sentence's content words each place must hold. Lower than the start
# flow's WORD_SHARE: three people start talking at once, each the first sentence of its
# session, which the recogniser hears worst (0.5-1.0 of a four-content-word sentence here),
# and what tells isolation from cross-talk is where the words go: a place that got another
# session's audio holds none of its own sentence's words and some of the other's.
OWN_WORDS_SHARE = 0.5


@dataclass
class SessionView:
    name: str
    said: str  # the sentence its microphone spoke
    page_user: list[str] = field(default_factory=list)  # the person's final lines on the page
    socket_user: list[str] = field(default_factory=list)  # ... as they came over the socket
    stored_user: list[str] = field(default_factory=list)  # ... in /transcripts/{id}
    agent_lines: list[str] = field(default_factory=list)  # the agent's answers (no greeting)
    agent_heard: str = ""  # the agent's audio in the page, recognised


def cross_talk(views: list[SessionView]) -> list[str]:
    """Every missing own word and every foreign word, per session and place; [] when isolated."""
    problems: list[str] = []
    for view in views:
        own = content_words(view.said)
        foreign = {other.name: content_words(other.said) - own for other in views if other is not view}
        places = {
            "page": " ".join(view.page_user),
            "socket": " ".join(view.socket_user),
            "database": " ".join(view.stored_user),
            "agent's line": " ".join(view.agent_lines),
            "agent's audio in the page": view.agent_heard,
        }
        for place, text in places.items():
            if share_heard(view.said, text) < OWN_WORDS_SHARE:
                problems.append(f"{view.name}: the {place} lacks its own words ({view.said!r}; has {text!r})")
            present = set(words(text))
            for other, theirs in foreign.items():
                if leaked := sorted(theirs & present):
                    problems.append(f"{view.name}: the {place} holds {other}'s words {leaked}")
    return problems
