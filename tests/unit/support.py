"""Helpers shared by the unit tests (fixtures live in conftest.py; test modules import
helpers from here, never from each other or from conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.backends.signed_cookies import SessionStore
from django.test import Client

from app.voice.sessions.visitors import SESSION_KEY
from devtools.stack import ManagedProcess, backend_command, free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
# Real English speech, 16 kHz mono 16-bit, no padding (see tests/data/README.md).
SPEECH_WAV = DATA / "hello-agent-16k.wav"

JSON = "application/json"
# The Origin header of the Flask UI in development: the only cross-origin one the WebSocket
# accepts (app.voice.ws.origins), from a page to a Host in ALLOWED_HOSTS (every server sends
# one; WebsocketCommunicator only what it is given).
ORIGIN = (b"origin", b"http://127.0.0.1:5000")
HOST = (b"host", b"127.0.0.1:8000")


async def receive_until(
    socket: WebsocketCommunicator, predicate: Callable[[dict], bool], timeout: float = 15.0
) -> list[dict]:
    """Collect messages until one satisfies `predicate` (returned list includes it)."""
    received: list[dict] = []
    async with asyncio.timeout(timeout):
        while True:
            message = await socket.receive_json_from(timeout=timeout)
            received.append(message)
            if predicate(message):
                return received


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


# Settings of a production deployment: every required variable, and values to look for.
PRODUCTION = {
    "DJANGO_ENV": "production",
    # The signing secrets as production wants them: 32 characters or more (app.settings).
    "DJANGO_SECRET_KEY": "prod-secret-key-value-0123456789-abcdefghij",
    "DJANGO_ALLOWED_HOSTS": "voice.example.com, api.voice.example.com",
    "LIVEKIT_URL": "wss://livekit.example.com",
    "LIVEKIT_API_KEY": "APIprodkey0123",
    "LIVEKIT_API_SECRET": "prod-livekit-secret-0123456789-abcdefghij",
    "OPENAI_API_KEY": "sk-" + "prod" * 8,  # shaped like an OpenAI key, not one
    "CORS_ORIGINS": "http://evil.example:5000",
    "DATABASE_URL": "postgres://voice:pw-0123456789@db.internal:5432/voice",
    "REDIS_URL": "redis://redis.internal:6379/0",
}


def load_settings(env: dict[str, str], probe: str = "import app.settings") -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with exactly `env`, and run `probe` there
    (this test process's own settings module is never touched)."""
    clean = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


# ---- visitors: each test client is one visitor, known by the cookie it was given -----------


def visitor_cookie(client: httpx.AsyncClient | Client) -> str | None:
    """The visitor cookie a client holds (None before its first request)."""
    if isinstance(client, httpx.AsyncClient):
        return client.cookies.get(settings.SESSION_COOKIE_NAME)
    morsel = client.cookies.get(settings.SESSION_COOKIE_NAME)
    return morsel.value if morsel is not None else None


def visitor_in(cookie: str) -> str:
    """The visitor key a cookie carries (the server signed it; this reads it back)."""
    key = SessionStore(session_key=cookie).get(SESSION_KEY)
    assert isinstance(key, str), "not a visitor cookie"
    return key


async def visitor_of(client: httpx.AsyncClient) -> str:
    """The client's visitor key; a client without a cookie first gets one (any API call)."""
    if visitor_cookie(client) is None:
        assert (await client.get("/healthz")).status_code == 200
    cookie = visitor_cookie(client)
    assert cookie is not None
    return visitor_in(cookie)


def visitor_of_sync(client: Client) -> str:
    if visitor_cookie(client) is None:
        assert client.get("/healthz").status_code == 200
    cookie = visitor_cookie(client)
    assert cookie is not None
    return visitor_in(cookie)


async def cookie_header(client: httpx.AsyncClient) -> tuple[bytes, bytes]:
    """A WebSocket `Cookie` header that makes the socket the same visitor as `client`."""
    await visitor_of(client)
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={visitor_cookie(client)}".encode())


# ---- real servers: what a claim about uvicorn itself needs -----------------------------------


@contextlib.contextmanager
def real_backend(tmp_path: Path, **env: str) -> Iterator[str]:
    """The backend as devtools/stack.py starts it (the same command line), on a migrated
    SQLite database of its own, with `env` added; yields its base URL. Sessions would be
    dispatched (none is started here), so no model is loaded; LiveKit is not running."""
    port = free_port()
    full_env = {
        **os.environ, "VOICE_DATABASE_URL": f"sqlite:///{tmp_path / 'backend.sqlite3'}",
        "VOICE_AGENT_HOST": "dispatch", "LIVEKIT_URL": f"ws://127.0.0.1:{free_port()}",
        "PYTHONUNBUFFERED": "1", **env,
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                   cwd=ROOT, env=full_env, check=True, timeout=120)
    process = ManagedProcess("backend", backend_command(port), full_env, tmp_path / "backend.log").start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()
