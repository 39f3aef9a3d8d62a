"""Rate limits per client IP for GET /token and POST /session (DRF throttling).

The counters live in Django's cache (CACHES in settings: Redis when REDIS_URL is set), so
every web process counts against the same budget. Rates are read from settings on each
request (VOICE_TOKEN_RATE, VOICE_SESSION_RATE), so `override_settings` changes them.
"""

from __future__ import annotations

import ipaddress
import math
from typing import NoReturn

from django.conf import settings
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle


def client_ip(request: Request) -> str | None:
    """The client's IP: REMOTE_ADDR, or X-Forwarded-For's entry added by the outermost of
    REST_FRAMEWORK["NUM_PROXIES"] trusted proxies (VOICE_TRUSTED_PROXIES). Never a forged
    or malformed value: anything that is not an IP address falls back to REMOTE_ADDR."""
    for candidate in (BaseThrottle().get_ident(request), request.META.get("REMOTE_ADDR")):
        try:
            return str(ipaddress.ip_address((candidate or "").strip()))
        except ValueError:
            continue
    return None


class ClientIPRateThrottle(SimpleRateThrottle):
    """A per-IP budget whose rate is the setting named by `rate_setting` (None: no limit)."""

    rate_setting = ""

    def get_rate(self) -> str | None:
        rate: str | None = getattr(settings, self.rate_setting)
        return rate

    def get_cache_key(self, request: Request, view: object) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request) or "unknown"}


class TokenRateThrottle(ClientIPRateThrottle):
    scope = "token"
    rate_setting = "VOICE_TOKEN_RATE"


class SessionRateThrottle(ClientIPRateThrottle):
    scope = "session"
    rate_setting = "VOICE_SESSION_RATE"


class RateLimitedMixin:
    """For APIViews: a throttled request is 429 `rate_limited` with a Retry-After header."""

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        raise exceptions.Throttled(
            wait=max(1, math.ceil(wait or 1)),
            detail="Too many requests from your address.",
            code="rate_limited",
        )
