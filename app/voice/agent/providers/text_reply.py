"""An ``llm.LLM`` whose reply is text computed from the conversation, streamed word by word
the way a model streams tokens. The base of the offline reply policy and of the test fakes.
"""

from __future__ import annotations

import asyncio
import itertools
from abc import abstractmethod
from typing import Any

from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr, llm


class TextReplyLLM(llm.LLM):
    """Subclasses say what to answer (``reply_for``); this streams it, with optional delays
    (first token, between tokens) to emulate a remote model's timing."""

    def __init__(self, *, first_token_delay: float = 0.0, token_interval: float = 0.0) -> None:
        super().__init__()
        self.first_token_delay = first_token_delay
        self.token_interval = token_interval
        self._ids = itertools.count(1)

    @abstractmethod
    def reply_for(self, chat_ctx: llm.ChatContext) -> str:
        """The whole reply to the conversation so far."""

    @staticmethod
    def last_user_text(chat_ctx: llm.ChatContext) -> str | None:
        """What the person said last, or None when the agent speaks first (a greeting)."""
        messages = [item for item in chat_ctx.items if item.type == "message"]
        if messages and messages[-1].role == "user":
            return messages[-1].text_content or ""
        return None

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
        return _WordStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class _WordStream(llm.LLMStream):
    def __init__(
        self,
        owner: TextReplyLLM,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(owner, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._owner = owner

    async def _run(self) -> None:
        owner = self._owner
        request_id = f"{owner.provider}-{next(owner._ids)}"
        if owner.first_token_delay:
            await asyncio.sleep(owner.first_token_delay)
        for index, word in enumerate(owner.reply_for(self._chat_ctx).split(" ")):
            if index and owner.token_interval:
                await asyncio.sleep(owner.token_interval)
            delta = llm.ChoiceDelta(role="assistant", content=word if index == 0 else f" {word}")
            self._event_ch.send_nowait(llm.ChatChunk(id=request_id, delta=delta))
