"""Scripted LLM: a fixed greeting, then an echo of what the person said, streamed."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr, llm

DEFAULT_GREETING = "Hi! I am your voice assistant. How can I help you today?"
DEFAULT_REPLY = "You said: {text}"


class ScriptedLLM(llm.LLM):
    def __init__(
        self,
        *,
        greeting: str = DEFAULT_GREETING,
        reply_template: str = DEFAULT_REPLY,
        first_token_delay: float = 0.0,
        token_interval: float = 0.0,
    ) -> None:
        super().__init__()
        self.greeting = greeting
        self.reply_template = reply_template
        self.first_token_delay = first_token_delay
        self.token_interval = token_interval
        self._ids = itertools.count(1)

    @property
    def model(self) -> str:
        return "scripted"

    @property
    def provider(self) -> str:
        return "fake"

    def reply_for(self, chat_ctx: llm.ChatContext) -> str:
        """Echo the latest user message; greet when the turn was not started by the user."""
        messages = [item for item in chat_ctx.items if item.type == "message"]
        if messages and messages[-1].role == "user":
            return self.reply_template.format(text=messages[-1].text_content or "")
        return self.greeting

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        return ScriptedLLMStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class ScriptedLLMStream(llm.LLMStream):
    def __init__(
        self,
        scripted: ScriptedLLM,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(scripted, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._scripted = scripted

    async def _run(self) -> None:
        scripted = self._scripted
        request_id = f"scripted-{next(scripted._ids)}"
        await asyncio.sleep(scripted.first_token_delay)
        for index, word in enumerate(scripted.reply_for(self._chat_ctx).split(" ")):
            if index and scripted.token_interval:
                await asyncio.sleep(scripted.token_interval)
            self._event_ch.send_nowait(
                llm.ChatChunk(
                    id=request_id,
                    delta=llm.ChoiceDelta(role="assistant", content=word if index == 0 else f" {word}"),
                )
            )
