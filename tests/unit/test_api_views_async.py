"""One concurrency model in the HTTP layer: every API view is served async, on the
ASGI event loop, and awaits the session services; none calls back into async code through
async_to_sync. (The responses themselves are tested endpoint by endpoint, sync and async
clients alike, in the other test_api_* files.)"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from django.urls import URLPattern
from rest_framework.views import APIView

from app import urls
from app.voice import http

OUR_VIEWS = {
    pattern.name: pattern.callback
    for pattern in urls.urlpatterns
    if isinstance(pattern, URLPattern)
    and isinstance(cls := getattr(pattern.callback, "cls", None), type)
    and issubclass(cls, APIView)
    and cls.__module__.startswith("app.")
}
BRIDGES = {"async_to_sync", "AsyncToSync"}


def test_every_api_view_is_served_async() -> None:
    assert len(OUR_VIEWS) == 9, sorted(OUR_VIEWS)
    assert [name for name, view in OUR_VIEWS.items() if not inspect.iscoroutinefunction(view)] == []


def test_no_http_module_uses_async_to_sync() -> None:
    def bridges(source: Path) -> list[str]:
        names = []
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            name = node.name if isinstance(node, ast.alias) else node.attr if isinstance(node, ast.Attribute) else None
            if name in BRIDGES:
                names.append(f"{source.name}:{getattr(node, 'lineno', '?')}")
        return names

    modules = sorted(Path(http.__file__).parent.glob("*.py"))
    assert modules and [hit for module in modules for hit in bridges(module)] == []
