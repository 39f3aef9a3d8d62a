"""POST /v1/chat/completions: the rule-based reply policy behind OpenAI's chat wire format,
streamed word by word as a model streams tokens (what livekit-plugins-openai's LLM reads).
Tools are accepted and never called; token counts are word counts (no tokenizer offline).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from openai.types.chat.chat_completion_message import ChatCompletionMessage
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)
from openai.types.completion_usage import CompletionUsage

from offline_openai import replies
from offline_openai.errors import OpenAIError
from offline_openai.params import RequestParams, read_json_object

STREAMING = RequestParams(CompletionCreateParamsStreaming)
NON_STREAMING = RequestParams(CompletionCreateParamsNonStreaming)


def text_of(content: Any) -> str:
    """A message's text: the string itself, or its text parts joined (other parts ignored)."""
    if content is None or isinstance(content, str):
        return content or ""
    return " ".join(part["text"] for part in content if part.get("type") == "text")


def last_user_text(messages: list[dict[str, Any]]) -> str | None:
    """What the person said last, or None when the last message is not theirs (a greeting)."""
    if messages and messages[-1]["role"] == "user":
        return text_of(messages[-1]["content"])
    return None


def usage(messages: Iterable[dict[str, Any]], reply: str) -> CompletionUsage:
    prompt = sum(len(text_of(message.get("content")).split()) for message in messages)
    completion = len(reply.split())
    return CompletionUsage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


async def handle(request: web.Request) -> web.StreamResponse:
    body = await read_json_object(request)
    params = STREAMING.parse(body) if body.get("stream") is True else NON_STREAMING.parse(body)
    if params.get("n") not in (None, 1):
        raise OpenAIError("This server answers with one choice only: 'n' must be 1.", param="n")
    if params.get("stream_options") is not None and not params.get("stream"):
        raise OpenAIError("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                          param="stream_options")
    messages: list[dict[str, Any]] = params["messages"]  # type: ignore[assignment]  # a list once parsed
    reply = replies.reply(last_user_text(messages))
    answer = _Answer(model=params["model"], reply=reply, usage=usage(messages, reply))
    if params.get("stream"):
        include_usage = bool((params.get("stream_options") or {}).get("include_usage"))
        return await answer.stream(request, include_usage=include_usage)
    return web.json_response(text=answer.completion().model_dump_json())


class _Answer:
    """One reply, as a whole completion or as the chunks of a stream (same id and time)."""

    def __init__(self, *, model: str, reply: str, usage: CompletionUsage) -> None:
        self.model, self.reply, self.usage = model, reply, usage
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def completion(self) -> ChatCompletion:
        message = ChatCompletionMessage(role="assistant", content=self.reply)
        return ChatCompletion(
            id=self.id, created=self.created, model=self.model, object="chat.completion", usage=self.usage,
            choices=[Choice(index=0, message=message, finish_reason="stop")],
        )

    def chunks(self, *, include_usage: bool) -> Iterable[ChatCompletionChunk]:
        """The role, then a word per chunk, then the stop (and the usage, alone, if asked)."""
        words = self.reply.split(" ")
        deltas = [ChoiceDelta(role="assistant", content="")]
        deltas += [ChoiceDelta(content=word if index == 0 else f" {word}") for index, word in enumerate(words)]
        for delta in deltas:
            yield self._chunk([ChunkChoice(index=0, delta=delta)])
        yield self._chunk([ChunkChoice(index=0, delta=ChoiceDelta(), finish_reason="stop")])
        if include_usage:
            yield self._chunk([], usage=self.usage)

    def _chunk(self, choices: list[ChunkChoice], *, usage: CompletionUsage | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, object="chat.completion.chunk",
            choices=choices, usage=usage,
        )

    async def stream(self, request: web.Request, *, include_usage: bool) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the client stopped reading: nobody to answer
            for chunk in self.chunks(include_usage=include_usage):
                await response.write(f"data: {chunk.model_dump_json(exclude_none=True)}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        return response
