"""A deterministic reply policy in the LLM's place: it repeats what it heard and answers a
few intents by keyword. No model, no network; the same words always get the same reply.
"""

from __future__ import annotations

import re

from livekit.agents import llm

from app.voice.agent.providers.text_reply import TextReplyLLM

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
    words = re.findall(r"[a-z']+", heard.lower())
    if not words:
        return NOTHING_HEARD
    echo = f"You said: {' '.join(words)}."
    if color := next((word for word in words if word in COLORS), None):
        return f"{echo} {color.capitalize()} is a lovely color."
    answer = next((text for keywords, text in INTENTS if keywords.intersection(words)), None)
    return f"{echo} {answer}" if answer else echo


class RuleBasedReplies(TextReplyLLM):
    """Greets when the agent speaks first, otherwise replies to the latest user message."""

    def __init__(self, *, greeting: str = GREETING) -> None:
        super().__init__()
        self.greeting = greeting

    @property
    def model(self) -> str:
        return "rule-based-replies"

    @property
    def provider(self) -> str:
        return "local"

    def reply_for(self, chat_ctx: llm.ChatContext) -> str:
        heard = self.last_user_text(chat_ctx)
        return self.greeting if heard is None else reply_to(heard)
