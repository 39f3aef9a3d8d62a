"""Every error becomes one HTTP answer shape here: ``{"error": {"code", "message"}}``.

Domain errors (``app.voice.sessions.errors``) are mapped to HTTP in one table; views
just let them rise. DRF's own errors get the same shape, and anything unexpected is
logged for us and answered without internals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import DisallowedHost, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponseBase, JsonResponse
from redis.exceptions import RedisError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from app.voice.contract.messages import error_body
from app.voice.sessions.errors import (
    AgentStartFailed,
    IdentityTaken,
    RoomBusy,
    RoomTaken,
    SessionError,
    TooManySessions,
)

log = logging.getLogger("app.voice.errors")


class ApiError(exceptions.APIException):
    """An APIException with a stable code and extra fields for the error body."""

    def __init__(self, status_code: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message, code)
        self.status_code = status_code
        self.extra = {key: value for key, value in extra.items() if value is not None}


def _too_many(exc: TooManySessions) -> ApiError:
    who = "this name" if exc.scope == "identity" else "your address"
    return ApiError(
        429, "too_many_sessions", f"Too many live sessions for {who} (at most {exc.limit}); stop one first."
    )


# Domain error → HTTP answer. The one place where a session rule meets a status code.
DOMAIN_ERRORS: dict[type[SessionError], Callable[[Any], ApiError]] = {
    RoomBusy: lambda exc: ApiError(
        409, "room_busy", "This room already has a live agent session.", session_id=exc.session_id
    ),
    RoomTaken: lambda exc: ApiError(
        403, "room_taken", "This room name is in use by someone else; choose another room."
    ),
    IdentityTaken: lambda exc: ApiError(
        403, "identity_taken", "This name belongs to someone else; choose another name."
    ),
    TooManySessions: _too_many,
    AgentStartFailed: lambda exc: ApiError(
        503, "service_unavailable", "The agent could not join the room; is LiveKit running?"
    ),
}


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


# A dependency gone for a moment (PostgreSQL restarting, Redis down): the client may try again.
DEPENDENCY_DOWN = (OperationalError, InterfaceError, RedisError)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: domain errors first, then DRF's, then a bare 500."""
    if isinstance(exc, SessionError):
        exc = DOMAIN_ERRORS[type(exc)](exc)
    elif isinstance(exc, DEPENDENCY_DOWN):
        log.warning("request.dependency_down", extra={"error": type(exc).__name__})  # no traceback: not a bug
        exc = ApiError(503, "service_unavailable", "The voice service is briefly unavailable; try again in a moment.")
    elif isinstance(exc, SuspiciousOperation):
        # Django answers these 400 itself, but inside a DRF view they reach this handler:
        # a body over DATA_UPLOAD_MAX_MEMORY_SIZE, more than DATA_UPLOAD_MAX_NUMBER_FIELDS
        # query or form fields (TooManyFieldsSent), and the like. The client's fault, not a 500.
        log.warning("request.refused", extra={"reason": type(exc).__name__})
        if isinstance(exc, RequestDataTooBig):
            exc = ApiError(413, "payload_too_large", "The request body is too large.")
        else:
            exc = ApiError(400, "bad_request", "The request was refused.")
    elif isinstance(exc, Http404):  # e.g. DRF's negotiation, for a ?format= no renderer has
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        # An unexpected error: log it for us, give the client no internals.
        log.exception("request.failed", extra={"view": type(context.get("view")).__name__})
        return Response(
            error_body("internal_error", "Something went wrong on our side."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    assert isinstance(exc, exceptions.APIException)
    response.data = error_body(_code(exc), _flatten(exc.detail), **getattr(exc, "extra", {}))
    return response


# Django-level handlers (app/urls.py): errors that never reach a DRF view keep the shape.
def endpoint_not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    """The catch-all route: unknown paths answer in the error shape even with DEBUG on."""
    return JsonResponse(error_body("not_found", "No such endpoint."), status=404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    # Reached for a disallowed Host header and other suspicious requests.
    return JsonResponse(error_body("bad_request", "The request was refused."), status=400)


class AllowedHostsMiddleware:
    """First in MIDDLEWARE: a Host header not in ALLOWED_HOSTS gets the JSON 400 below.
    Left to Django (request.get_host() in CommonMiddleware), it is the same answer with DEBUG
    off but Django's HTML debug page, with the settings in it, with DEBUG on (development)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            request.get_host()
        except DisallowedHost:
            log.warning("request.disallowed_host")
            return bad_request(request)
        return self.get_response(request)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("forbidden", "Not allowed."), status=403)


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body("internal_error", "Something went wrong on our side."), status=500)
