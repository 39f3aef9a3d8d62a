"""DRF's APIView for `async def` handlers: a view runs on the ASGI event loop and awaits the
session services itself, no `async_to_sync` in between.

DRF's own dispatch is sync only. `AsyncAPIView.dispatch` is DRF's (APIView.dispatch) with
the handler awaited; the rest is DRF's, unchanged: parsers, renderers, content negotiation,
the exception handler (errors.py), throttles, OPTIONS, the OpenAPI schema. The sync test
client serves these views too (Django runs an async view through async_to_sync there).
"""

from __future__ import annotations

import inspect
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponseBase
from rest_framework.request import Request
from rest_framework.views import APIView


class AsyncAPIView(APIView):
    """Subclasses define `async def get/post/delete`, so Django serves the view as async."""

    async def dispatch(  # type: ignore[override]  # DRF's is sync
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        self.args, self.kwargs = args, kwargs
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request = drf_request
        self.headers = self.default_response_headers
        try:
            self.initial(drf_request, *args, **kwargs)
            if self.throttle_classes:
                # The throttles count in the cache (Redis in production): not on the event loop.
                await sync_to_async(super().check_throttles)(drf_request)
            method = (drf_request.method or "").lower()
            handler = self.http_method_not_allowed
            if method in self.http_method_names:
                handler = getattr(self, method, handler)
            response = handler(drf_request, *args, **kwargs)
            if inspect.isawaitable(response):  # DRF's options() is sync
                response = await response
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(drf_request, response, *args, **kwargs)
        return self.response

    def check_throttles(self, request: Request) -> None:
        """Not here: initial() calls this on the event loop. dispatch checks the throttles
        right after initial(), in a thread (DRF's order: negotiation, then throttles)."""
