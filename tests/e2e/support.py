"""Helpers shared by the browser tests: one HTTP client, one poll loop, the chat page's
common steps, and stacks of their own for tests that stop servers. Fixtures live in
conftest.py; test modules import helpers from here, never from each other.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
from playwright.sync_api import Page, expect

from devtools import setup
from devtools.stack import Stack, StackConfig, descendants, running_stack

START_TIMEOUT_MS = 30_000
STOP_TIMEOUT_MS = 20_000


# The backend's visitor cookie (SESSION_COOKIE_NAME in app/settings.py): whoever holds it is
# that visitor, and sees, follows and stops that visitor's sessions only.
VISITOR_COOKIE = "voice_visitor"


class Api:
    """A JSON client for the backend, as one visitor: it keeps the cookie the first answer
    gives it, or starts with a browser page's (for_page) to act as that page's visitor.

    Every instance is remembered in `made`, so a test's teardown can end the sessions of each
    visitor it acted as (nobody else can)."""

    made: ClassVar[list[Api]] = []

    def __init__(self, base_url: str, cookies: httpx.Cookies | None = None) -> None:
        self.base_url = base_url
        self.client = httpx.Client(base_url=base_url, timeout=30, cookies=cookies)
        Api.made.append(self)

    @classmethod
    def for_page(cls, page: Page, base_url: str | None = None) -> Api:
        """The visitor of a browser page: a client with the cookie the page's context holds
        for the API's host. Cookies are per host, not per port, so a page served by the UI
        on one port holds the cookie the API on another port gave its fetches.
        `base_url`: the API; by default the one the page is configured with."""
        if base_url is None:
            configured = page.evaluate("document.body.dataset.backendUrl || location.origin")
            base_url = str(configured)
        cookies = httpx.Cookies()
        for cookie in page.context.cookies(base_url):
            if cookie["name"] == VISITOR_COOKIE:
                cookies.set(cookie["name"], cookie["value"], domain=cookie["domain"], path=cookie["path"])
        assert cookies, "the page has no visitor cookie yet: it has not called the API"
        return cls(base_url, cookies)

    @property
    def visitor_cookie(self) -> str | None:
        return self.client.cookies.get(VISITOR_COOKIE)

    def at(self, base_url: str) -> Api:
        """The same visitor at another backend (of this stack, or of another one: every stack
        signs with the same development key)."""
        return Api(base_url, httpx.Cookies(self.client.cookies))

    @property
    def cookie_header(self) -> dict[str, str]:
        """The header that makes a WebSocket client this visitor."""
        return {"Cookie": f"{VISITOR_COOKIE}={self.visitor_cookie}"}

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = self.client.request(method, path, json=body)
        return response.status_code, response.json() if response.content else None

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("POST", path, body)

    def delete(self, path: str) -> tuple[int, Any]:
        return self.request("DELETE", path)

    def session(self, session_id: str) -> dict[str, Any]:
        status, body = self.get(f"/session/{session_id}")
        assert status == 200, (status, body)
        return body


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> float:
    """Poll `condition` until it is truthy; return the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)  # poll interval of the condition, not a wait for it
    return time.monotonic() - started


def wait_until_ended(api: Api, session_id: str, timeout: float) -> tuple[dict[str, Any], float]:
    """Poll the session's real endpoint until it says ended; return it and the time taken."""
    seconds = wait_until(lambda: api.session(session_id)["status"] == "ended", timeout, f"{session_id} to end")
    return api.session(session_id), seconds


def end_live_sessions(api: Api, timeout: float = 30.0) -> list[str]:
    """End every session the visitor `api` still has live (DELETE is idempotent) and wait
    until none is; return their ids. For teardown: the next test finds its rooms free."""
    status, page = api.get("/transcripts?limit=100")
    assert status == 200, (status, page)
    live = [session["session_id"] for session in page["results"] if session["status"] != "ended"]
    for session_id in live:
        api.delete(f"/session/{session_id}")
    wait_until(
        lambda: all(api.session(session_id)["status"] == "ended" for session_id in live),
        timeout,
        f"sessions {live} to end",
    )
    return live


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def open_chat(page: Page, stack: Stack, room: str | None = None, identity: str | None = None) -> None:
    query = "&".join(f"{k}={v}" for k, v in (("room", room), ("identity", identity)) if v)
    page.goto(f"{stack.ui_url}/chat" + (f"?{query}" if query else ""))


def press_start(page: Page) -> str:
    """Click Start, wait until the page is live, return its session id. The page's visitor
    is remembered (Api.made), so the test's teardown can end the session if it must."""
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=START_TIMEOUT_MS)
    Api.for_page(page)
    return page.evaluate("window.voiceAgent.sessionId")


def press_stop(page: Page) -> None:
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#status")).to_have_attribute("data-state", "idle", timeout=STOP_TIMEOUT_MS)


def final_lines(page: Page, role: str) -> list[str]:
    return page.locator(f"#transcript .line.{role} .text").all_inner_texts()


@contextlib.contextmanager
def separate_stack(name: str, artifacts_dir: Path, folder: Path, **config: Any) -> Iterator[Stack]:
    """A whole stack with its own database (in `folder`) and logs (artifacts/e2e/logs/<name>),
    with the product's openai providers pointed at the stack's own offline OpenAI-compatible
    server: the agent hears (Whisper) and speaks (Piper) real words through the production
    plugin code. `config` adds to the StackConfig, and `extra_env` to its environment."""
    extra_env = {"VOICE_PARTICIPANT_TIMEOUT": "20", **config.pop("extra_env", {})}
    with running_stack(
        StackConfig(
            livekit_server=setup.livekit_server(),
            log_dir=artifacts_dir / "logs" / name,
            database_url=f"sqlite:///{folder / (name + '.sqlite3')}",
            extra_env=extra_env,
            offline_openai=True,
            **config,
        )
    ) as running:
        yield running


def log_marks(stack: Stack) -> dict[str, int]:
    """Where each of the stack's logs ends now (for `logs_since`)."""
    return {name: process.log_path.stat().st_size for name, process in stack.processes.items()}


def logs_since(stack: Stack, marks: dict[str, int], names: tuple[str, ...], limit: int = 60) -> str:
    """The last `limit` lines each named process logged after `marks`: what a failed test
    prints, since CI keeps no artifacts."""
    parts = []
    for name in names:
        lines = stack.processes[name].output(since=marks.get(name, 0)).splitlines()[-limit:]
        parts.append(f"--- {name} ({len(lines)} last lines) ---\n" + "\n".join(lines))
    return "\n".join(parts)


# ---- whole browsers as processes (to freeze one: a network cut with no goodbye) ---------
def browser_pids(marker: str) -> list[int]:
    """The Chromium launched with `marker` in its command line, and all its children."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as file:
                    cmdline = file.read()
            except OSError:
                continue
            if marker.encode() in cmdline and b"--type=" not in cmdline:
                return descendants(int(entry))
    raise AssertionError("browser process not found")
