"""Helpers shared by the API test modules (tests/unit/test_api_*.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.asgi import application

JSON = "application/json"


@pytest.fixture
async def asgi() -> AsyncIterator[httpx.AsyncClient]:
    """HTTP through the project's real ASGI application, on the test's event loop.

    Unlike django.test.AsyncClient, this goes through Django's ASGIHandler, which runs
    each sync view in its own thread context as uvicorn does in production; so a DELETE
    does not wait behind the agent's own database calls.
    """
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape: JSON `{"error": {"code", "message"}}`, no internals."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response.headers["Content-Type"].startswith(JSON), response.headers["Content-Type"]
    text = response.content.decode()
    assert "Traceback" not in text and 'File "' not in text
    body = json.loads(text)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message"} <= set(error), error
    assert isinstance(error["code"], str) and error["code"].replace("_", "").isalpha()
    assert error["code"] == error["code"].lower()
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error
