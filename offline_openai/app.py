"""The aiohttp application: OpenAI's routes for the endpoints the agent uses, and one
middleware that answers every failure in OpenAI's error shape.

Authentication: any ``Authorization`` header is accepted, and none is needed. This is a local
stand-in for OpenAI, bound to loopback by default; the SDK and the plugins insist on sending a
key, so any string does (``api_key="x"``). The header is never read, logged or stored.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler

from offline_openai import chat, model_list, realtime, speech, transcriptions
from offline_openai.errors import STATUS, OpenAIError
from offline_openai.keys import ENGINES

if TYPE_CHECKING:  # typing only: engines imports the engines' heavy libraries
    from offline_openai.engines import Engines

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 25 * 1024 * 1024  # OpenAI's limit for an uploaded audio file
_TYPE_OF_STATUS = {status: type_ for type_, status in STATUS.items()}


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own 4xx (no route, wrong method, body too large, ...) in OpenAI's shape."""
    messages = {
        404: f"Invalid URL ({request.method} {request.path})",
        405: f"Method {request.method} is not allowed for {request.path}",
        413: f"The request body is larger than the limit of {MAX_BODY_BYTES // (1024 * 1024)} MiB.",
    }
    error_type = _TYPE_OF_STATUS.get(exc.status, "invalid_request_error")
    error = OpenAIError(messages.get(exc.status, exc.reason), type=error_type)
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return web.json_response(error.body(), status=exc.status, headers=headers)


@web.middleware
async def openai_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as OpenAI's ``{"error": {...}}``; an unexpected one as a bare 500 (the
    traceback goes to this server's log, never to the client)."""
    try:
        return await handler(request)
    except OpenAIError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(request, exc)
    except Exception:
        if request.writer.output_size > 0:  # too late for an error body: aiohttp drops the connection
            raise
        log.exception("%s %s failed", request.method, request.path)
        return OpenAIError("The server had an error while processing your request.", type="server_error").response()


async def _request_id(request: web.Request, response: web.StreamResponse) -> None:
    """An ``x-request-id`` on every answer, as OpenAI sends (the plugins log it)."""
    response.headers.setdefault("x-request-id", f"req_{uuid.uuid4().hex}")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(engines: Engines) -> web.Application:
    app = web.Application(middlewares=[openai_errors], client_max_size=MAX_BODY_BYTES)
    app[ENGINES] = engines
    app.on_response_prepare.append(_request_id)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/models", model_list.list_models)
    app.router.add_get("/v1/models/{model}", model_list.retrieve_model)
    app.router.add_post("/v1/chat/completions", chat.handle)
    app.router.add_post("/v1/audio/speech", speech.handle)
    app.router.add_post("/v1/audio/transcriptions", transcriptions.handle)
    app.router.add_get("/v1/realtime", realtime.handle)
    return app
