"""Scripted LLM: a fixed greeting, then an echo of what the person said, streamed with
configurable delays (to emulate a remote model in benchmarks)."""

from __future__ import annotations

from livekit.agents import llm

from app.voice.agent.providers.text_reply import TextReplyLLM

DEFAULT_GREETING = "Hi! I am your voice assistant. How can I help you today?"
DEFAULT_REPLY = "You said: {text}"


class ScriptedLLM(TextReplyLLM):
    def __init__(
        self,
        *,
        greeting: str = DEFAULT_GREETING,
        reply_template: str = DEFAULT_REPLY,
        first_token_delay: float = 0.0,
        token_interval: float = 0.0,
    ) -> None:
        super().__init__(first_token_delay=first_token_delay, token_interval=token_interval)
        self.greeting = greeting
        self.reply_template = reply_template

    @property
    def model(self) -> str:
        return "scripted"

    @property
    def provider(self) -> str:
        return "fake"

    def reply_for(self, chat_ctx: llm.ChatContext) -> str:
        """Echo the latest user message; greet when the turn was not started by the user."""
        heard = self.last_user_text(chat_ctx)
        return self.greeting if heard is None else self.reply_template.format(text=heard)
