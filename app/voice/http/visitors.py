"""The HTTP side of "who is asking" (app.voice.sessions.visitors): every request gets its
visitor, and a request without one gets a new visitor and its cookie with the answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from rest_framework.request import Request

from app.voice.sessions.visitors import new_visitor, visitor_key

ATTRIBUTE = "voice_visitor"


class VisitorMiddleware:
    """After Django's session and authentication middleware: sets `request.voice_visitor`.
    Any answer, error or not, carries the cookie a new visitor needs for the next request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        key = visitor_key(request.session, getattr(request, "user", None))
        setattr(request, ATTRIBUTE, key or new_visitor(request.session))
        response = self.get_response(request)
        if key is None and response.status_code >= 500:
            # Django's session middleware sends no cookie with a 5xx; a new visitor needs it
            # all the same (a 503 start may have claimed their name for them).
            request.session.save()
            assert request.session.session_key is not None  # save() made it
            response.set_cookie(
                settings.SESSION_COOKIE_NAME,
                request.session.session_key,
                max_age=settings.SESSION_COOKIE_AGE,
                domain=settings.SESSION_COOKIE_DOMAIN,
                path=settings.SESSION_COOKIE_PATH,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=settings.SESSION_COOKIE_HTTPONLY,
                samesite=cast(Literal["Lax", "Strict", "None"], settings.SESSION_COOKIE_SAMESITE),
            )
        return response


def visitor_of(request: Request | HttpRequest) -> str:
    """The visitor the middleware found or made (a DRF request reads its Django request's)."""
    key = getattr(request, ATTRIBUTE)
    assert isinstance(key, str) and key
    return key
