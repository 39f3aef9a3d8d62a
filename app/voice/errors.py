"""One error shape for every HTTP response: {"error": {"code", "message"}}.

WebSocket close codes used by the transcript socket:

    4400  the session id in the path is malformed
    4404  no such session
    4410  the session has already ended

An unknown WebSocket path is accepted only to be closed with 4404 as well.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

log = logging.getLogger("app.voice.errors")

WS_CLOSE_MALFORMED_ID = 4400
WS_CLOSE_UNKNOWN_SESSION = 4404
WS_CLOSE_SESSION_ENDED = 4410


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "Conflict."

    def __init__(self, detail: str, code: str = "conflict", **extra: Any) -> None:
        super().__init__(detail, code)
        self.extra = extra


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "A service this request needs is unavailable."


def _flatten(detail: Any) -> str:
    """Turn DRF's nested validation detail into one readable sentence."""
    if isinstance(detail, dict):
        return "; ".join(f"{field}: {_flatten(value)}" for field, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def _code(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "invalid_request"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # Imported here: rest_framework.views loads the parser classes, which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        # An unexpected error: log it for us, give the client no internals.
        log.exception("request.failed", extra={"view": type(context.get("view")).__name__})
        return Response(
            error_body("internal_error", "Something went wrong on our side."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    assert isinstance(exc, exceptions.APIException)
    body: dict[str, Any] = {"code": _code(exc), "message": _flatten(exc.detail)}
    body.update(getattr(exc, "extra", {}))
    response.data = {"error": body}
    return response


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The one HTTP error shape, for responses built outside DRF's exception handler."""
    return {"error": {"code": code, "message": message}}


# Django-level handlers (urls.py): errors that never reach a DRF view get the same shape.
def not_found(request: Any, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", "No such endpoint."), status=404)


def bad_request(request: Any, exception: Exception | None = None) -> JsonResponse:
    # Reached for a disallowed Host header and other suspicious requests.
    return JsonResponse(error_body("bad_request", "The request was refused."), status=400)


def forbidden(request: Any, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("forbidden", "Not allowed."), status=403)


def server_error(request: Any) -> JsonResponse:
    return JsonResponse(
        error_body("internal_error", "Something went wrong on our side."), status=500
    )
