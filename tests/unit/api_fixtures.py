"""Helpers shared by the API test modules (tests/unit/test_api_*.py)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

JSON = "application/json"


@pytest.fixture
def asgi(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """The conftest `api` client (HTTP through the real ASGI app), under this module's name."""
    return api


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
