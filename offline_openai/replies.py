"""A deterministic reply policy in the chat model's place: it repeats what it heard and answers
a few intents by keyword. No model, no network; the same words always get the same reply.
"""

from __future__ import annotations

import re

GREETING = "Hello! I am a local voice agent. Say something and I will answer."
NOTHING_HEARD = "Sorry, I did not catch that."
COLORS = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "black", "white", "brown")

# (keywords, answer) by priority: the first intent with a keyword among the words heard answers.
INTENTS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"bye", "goodbye"}), "Goodbye, and thank you for talking with me."),
    (frozenset({"thanks", "thank"}), "You are welcome."),
    (frozenset({"weather", "rain", "sunny"}), "I cannot look up the weather offline, but I hope it is nice."),
    (frozenset({"story", "dragon"}), "Once upon a time a small dragon learned to fly."),
    (frozenset({"name", "who"}), "I am the local voice agent of this page."),
    (frozenset({"help"}), "I can repeat what you say and answer a few simple questions."),
    (frozenset({"hello", "hi", "hey"}), "Hello to you too."),
)


def reply_to(heard: str) -> str:
    """The reply to one user turn: the words heard, then the answer of a matching intent."""
    words = re.findall(r"[a-z0-9']+", heard.lower())
    if not words:
        return NOTHING_HEARD
    echo = f"You said: {' '.join(words)}."
    if color := next((word for word in words if word in COLORS), None):
        return f"{echo} {color.capitalize()} is a lovely color."
    answer = next((text for keywords, text in INTENTS if keywords.intersection(words)), None)
    return f"{echo} {answer}" if answer else echo


def reply(last_user_text: str | None) -> str:
    """The greeting when the agent speaks first (the last message is not the person's),
    otherwise the reply to what the person said last."""
    return GREETING if last_user_text is None else reply_to(last_user_text)
