"""The HTTP servers as they are started. Request bodies over the limit are refused before
anything reads them (app/body_limit.py): the middleware alone, then the real servers of the
API and of the pages. The pages' ASGI entry point (ui/asgi.py) serves concurrent requests."""

from __future__ import annotations

import collections
import concurrent.futures
import http.client
import json
import os
import select
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.body_limit import BodyLimit
from devtools.stack import PYTHON, UVICORN_PROXY_FLAGS, ManagedProcess, free_port, wait_for_http
from tests.unit.support import real_backend

LIMIT = 100


class App:
    """An ASGI app that reads the whole body, then answers 200 with its length."""

    def __init__(self) -> None:
        self.called = False
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called = True
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                self.bodies.append(b"<" + message["type"].encode() + b">")
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})


def http_scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/", "headers": headers}


async def run(scope: dict[str, Any], chunks: list[bytes]) -> tuple[App, list[dict], int]:
    """Send `chunks` as the body (more_body on all but the last), then a disconnect forever;
    returns the app, what was sent back, and how many messages were received."""
    app, sent, received = App(), [], 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        if received <= len(chunks):
            return {"type": "http.request", "body": chunks[received - 1], "more_body": received < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await BodyLimit(app, max_bytes=LIMIT)(scope, receive, send)
    return app, sent, received


def assert_413(sent: list[dict]) -> None:
    start, body = sent
    assert start["status"] == 413
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/json" and headers[b"connection"] == b"close"
    assert int(headers[b"content-length"]) == len(body["body"])
    error = json.loads(body["body"])["error"]
    assert error["code"] == "payload_too_large" and str(LIMIT) in error["message"]


async def test_a_content_length_over_the_limit_is_413_before_the_app_or_the_body() -> None:
    app, sent, received = await run(http_scope([(b"content-length", b"400000000")]), [b"x" * 10])
    assert_413(sent)
    assert not app.called and received == 0


async def test_a_content_length_within_the_limit_reaches_the_app_untouched() -> None:
    app, sent, _ = await run(http_scope([(b"content-length", b"100")]), [b"x" * 60, b"y" * 40])
    assert app.bodies == [b"x" * 60 + b"y" * 40] and sent[0]["status"] == 200


async def test_a_chunked_body_is_read_only_up_to_the_limit_then_refused() -> None:
    # An endless stream of 30-byte chunks: refused on the one that passes 100 bytes.
    app, sent, received = await run(http_scope([]), [b"z" * 30] * 1000)
    assert_413(sent)
    assert not app.called and received == 4


async def test_a_chunked_body_within_the_limit_is_replayed_then_the_rest_passes_through() -> None:
    app, sent, _ = await run(http_scope([(b"transfer-encoding", b"chunked")]), [b"a" * 50, b"b" * 50])
    assert app.bodies == [b"a" * 50 + b"b" * 50] and sent[0]["status"] == 200


async def test_a_client_gone_mid_body_reaches_the_app_as_a_disconnect() -> None:
    async def receive_then_gone() -> Any:
        return messages.pop(0)

    messages = [{"type": "http.request", "body": b"a", "more_body": True}, {"type": "http.disconnect"}]
    app, sent = App(), []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await BodyLimit(app, max_bytes=LIMIT)(http_scope([]), receive_then_gone, send)
    assert app.bodies == [b"<http.disconnect>"] and sent == []


@pytest.mark.parametrize("kind", ["websocket", "lifespan"])
async def test_other_scopes_pass_through(kind: str) -> None:
    seen = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await BodyLimit(app, max_bytes=LIMIT)({"type": kind, "headers": [(b"content-length", b"999")]}, None, None)  # type: ignore[arg-type]
    assert seen == [kind]


# ---- the real servers ------------------------------------------------------------------------


def ask(port: int, head: str, body: Iterator[bytes], *, within: float = 5.0) -> tuple[int, dict, int, float]:
    """Send a request head, then the body's pieces one by one until the server answers;
    returns the status, the JSON body, how many body bytes were sent, and the seconds it took."""
    started = time.monotonic()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=within) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        for piece in body:
            if select.select([sock], [], [], 0.01)[0]:
                break  # the answer came
            assert time.monotonic() - started < within, f"no answer after {sent} bytes of the body"
            sock.sendall(piece)
            sent += len(piece)
        answer = b""
        while chunk := sock.recv(65536):  # the server closes after its answer (connection: close)
            answer += chunk
    head_bytes, _, payload = answer.partition(b"\r\n\r\n")
    return int(head_bytes.split()[1]), json.loads(payload), sent, time.monotonic() - started


def huge_content_length(path: str) -> tuple[str, Iterator[bytes]]:
    """400 MB announced, 2 bytes sent: only a server that answers before reading can reply."""
    head = f"POST {path} HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\nContent-Length: 400000000\n"
    return head, iter([b"{}"])


def endless_chunks(path: str) -> tuple[str, Iterator[bytes]]:
    """A chunked body of 4 KiB pieces that would go on for 400 MB."""
    head = f"POST {path} HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\nTransfer-Encoding: chunked\n"
    return head, iter([b"1000\r\n" + b" " * 4096 + b"\r\n"] * 100_000)


def assert_refused_at_once(answer: tuple[int, dict, int, float], limit: int) -> None:
    status, body, sent, seconds = answer
    assert status == 413 and body["error"]["code"] == "payload_too_large", (status, body)
    assert seconds < 3, seconds
    # Answered with no more sent than the limit and what was in flight: nothing large was
    # read, held in memory or spooled to a temporary file (Django's, asgiref's).
    assert sent < limit + 64 * 1024, sent


def test_the_real_backend_refuses_a_large_body_before_reading_it(tmp_path: Path) -> None:
    with real_backend(tmp_path) as url:
        port = int(url.rsplit(":", 1)[1])
        for request_of in (huge_content_length, endless_chunks):
            for path in ("/session", "/healthz", "/no-such-endpoint"):  # a view, a 405, the catch-all
                assert_refused_at_once(ask(port, *request_of(path)), 16 * 1024)
        # A body within the limit still reaches the view (here: judged, and found wanting).
        status, body, _, _ = ask(port, "POST /session HTTP/1.1\nHost: 127.0.0.1\nContent-Type: application/json\n"
                                       "Content-Length: 2\nConnection: close\n", iter([b"{}"]))
        assert status == 400 and body["error"]["code"] == "invalid_request"


PAGES_COMMANDS = {
    # devtools/stack.py start_ui and ./dev.sh run
    "python -m ui": lambda port: [PYTHON, "-m", "ui", "--host", "127.0.0.1", "--port", str(port)],
    # docs/production.md
    "uvicorn ui.asgi": lambda port: [PYTHON, "-m", "uvicorn", "ui.asgi:application", "--host", "127.0.0.1",
                                     "--port", str(port), *UVICORN_PROXY_FLAGS],
}


@pytest.fixture(params=PAGES_COMMANDS)
def pages_port(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[int]:
    """The pages served by each command that serves them, on a free port."""
    port = free_port()
    env = {**os.environ, "BACKEND_URL": "", "PYTHONUNBUFFERED": "1"}
    process = ManagedProcess("ui", PAGES_COMMANDS[request.param](port), env, tmp_path / "ui.log").start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=30, process=process)
        yield port
    finally:
        process.stop()
    assert "Traceback" not in process.output(), process.output()


def test_the_real_pages_server_refuses_a_large_body_before_reading_it(pages_port: int) -> None:
    for request_of in (huge_content_length, endless_chunks):
        assert_refused_at_once(ask(pages_port, *request_of("/chat")), 16 * 1024)
    # The pages themselves are still served, with their headers.
    with urllib.request.urlopen(f"http://127.0.0.1:{pages_port}/chat", timeout=5) as page:
        assert page.status == 200 and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_the_real_pages_server_answers_concurrent_keep_alive_requests(pages_port: int) -> None:
    """As a browser loads a page: several connections, each reused for request after request."""
    paths = ["/chat", "/static/style.css", "/static/chat.js", "/static/api.js", "/history"]

    def browse() -> list[int]:
        connection = http.client.HTTPConnection("127.0.0.1", pages_port, timeout=10)
        statuses = []
        for path in paths * 4:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
        connection.close()
        return statuses

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = [status for one in pool.map(lambda _: browse(), range(4)) for status in one]
    assert statuses.count(200) == len(statuses), collections.Counter(statuses)
