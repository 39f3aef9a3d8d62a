"""GET /v1/models and /v1/models/{model}: the models the agent asks for, each served by an
offline engine (the names are OpenAI's; what answers is this server's)."""

from __future__ import annotations

import time

from aiohttp import web
from openai.types import Model

from offline_openai.errors import OpenAIError

OWNER = "offline_openai"
MODEL_IDS = ("gpt-4o-mini", "gpt-4o-mini-transcribe", "gpt-4o-mini-tts", "whisper-1", "tts-1")
_CREATED = int(time.time())  # when this server started: the models are as old as it is


def _model(model_id: str) -> Model:
    return Model(id=model_id, created=_CREATED, object="model", owned_by=OWNER)


async def list_models(request: web.Request) -> web.Response:
    data = [_model(model_id).model_dump() for model_id in MODEL_IDS]
    return web.json_response({"object": "list", "data": data})


async def retrieve_model(request: web.Request) -> web.Response:
    model_id = request.match_info["model"]
    if model_id not in MODEL_IDS:
        raise OpenAIError(f"The model '{model_id}' does not exist.", type="not_found_error",
                          param="model", code="model_not_found")
    return web.json_response(_model(model_id).model_dump())
