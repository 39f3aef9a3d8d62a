"""OpenAI's error shape, in one place: ``{"error": {"message", "type", "param", "code"}}``,
built with the SDK's own ``ErrorObject`` so that it follows the SDK version in the lock."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from openai.types.shared import ErrorObject

# The HTTP status of each error type, as OpenAI uses them.
STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "not_found_error": 404,
    "method_not_allowed": 405,
    "request_too_large": 413,
    "unsupported_media_type": 415,
    "server_error": 500,
    "service_unavailable": 503,
}


class OpenAIError(Exception):
    """An error a handler raises; the app's middleware turns it into OpenAI's error body."""

    def __init__(
        self, message: str, *, type: str = "invalid_request_error", param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.error = ErrorObject(message=message, type=type, param=param, code=code)

    @property
    def status(self) -> int:
        return STATUS.get(self.error.type, 400)

    def body(self) -> dict[str, Any]:
        return {"error": self.error.model_dump(exclude_none=False, exclude={"misalignment"})}

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status)
