"""Every error the chat page can meet, in Debian Chromium, each with a human title, message
and hint, window.voiceAgent.errorKind, a screenshot (artifacts/e2e/chat-error-*.png), and
Start working again afterwards where the cause allows it:

- the API's error codes the page's own requests can meet, provoked on the real server
  (room busy, room taken, too many sessions, rate limited);
- the codes the page's well-formed requests cannot provoke, answered by Playwright with the
  body the real server gives for that code;
- servers that are down, each on a stack of its own so that no test depends on another.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from app.voice.http.errors import server_error
from devtools.stack import Stack
from tests.e2e.support import START_TIMEOUT_MS, Api, open_chat, press_start, press_stop, separate_stack, unique

Answer = tuple[int, dict[str, Any]]  # an HTTP status and its JSON body


# ---- stacks of their own ------------------------------------------------------------------
@pytest.fixture(scope="module")
def livekit_down(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A fresh stack whose LiveKit server is stopped. Nothing here creates a session (the page
    fails before POST /session), so its history stays empty whatever runs first."""
    with separate_stack(
        "errors-livekit-down", artifacts_dir, tmp_path_factory.mktemp("errors-livekit-down")
    ) as running:
        running.processes["livekit"].stop()
        yield running


@pytest.fixture(scope="module")
def backend_down(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Answer]]:
    """A stack whose backend is stopped, and the backend's real answer to POST /session while
    LiveKit was down (503 service_unavailable), taken just before the backend stopped."""
    with separate_stack(
        "errors-backend-down", artifacts_dir, tmp_path_factory.mktemp("errors-backend-down")
    ) as running:
        running.processes["livekit"].stop()
        unavailable = Api(running.backend_url).post("/session", {"room": unique("down"), "identity": "probe"})
        running.processes["backend"].stop()
        yield running, unavailable


@pytest.fixture(scope="module")
def rate_limited_stack(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two token requests per second per address: over it, Retry-After is one second, so a
    test can see Start come back and work without waiting a minute."""
    with separate_stack(
        "errors-rate-limited",
        artifacts_dir,
        tmp_path_factory.mktemp("errors-rate-limited"),
        extra_env={"VOICE_TOKEN_RATE": "2/s"},
    ) as running:
        yield running


# ---- helpers ------------------------------------------------------------------------------
def expect_error(page: Page, kind: str, title: str, message: str | re.Pattern[str], hint: str) -> None:
    """The page is in its error state and explains `kind` with these texts."""
    expect(page.locator("#status")).to_have_attribute("data-state", "error", timeout=START_TIMEOUT_MS)
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("#error-title")).to_have_text(title)
    expect(page.locator("#error-message")).to_have_text(message)
    expect(page.locator("#error-hint")).to_contain_text(hint)
    assert page.evaluate("window.voiceAgent.errorKind") == kind


def expect_nothing_left(page: Page) -> None:
    """A failed start leaves no room, socket or session behind."""
    page.wait_for_function(
        "() => window.voiceAgent.roomState === 'disconnected' && window.voiceAgent.wsState === 'closed'"
        " && window.voiceAgent.sessionId === null"
    )


def expect_server_words(page: Page, answer: Answer) -> None:
    """The service's own status, code and message are shown too, in the small print."""
    status, body = answer
    detail = page.locator("#error-detail")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text(f"HTTP {status} ({body['error']['code']})")
    expect(detail).to_contain_text(body["error"]["message"])


def start_works_again(page: Page) -> None:
    press_start(page)
    expect(page.get_by_role("alert")).to_be_hidden()
    assert page.evaluate("window.voiceAgent.errorKind") is None
    press_stop(page)


def start(page: Page) -> None:
    page.get_by_role("button", name="Start").click()


# ---- provoked on the real server ----------------------------------------------------------
def test_409_room_busy_offers_a_new_room(page: Page, stack: Stack, api: Api, artifacts_dir: Path) -> None:
    room = unique("busy")
    code, other = api.post("/session", {"room": room, "identity": "someone-else"})
    assert code == 201
    try:
        open_chat(page, stack, room=room, identity="visitor")
        start(page)
        expect_error(page, "room_busy", "This room is busy",
                     "Someone is already talking to the agent in this room.",
                     "Use a new room, or wait for that conversation to end")
        expect(page.locator("#error-detail")).to_contain_text("already has a live agent session")
        expect_nothing_left(page)
        page.screenshot(path=artifacts_dir / "chat-error-409-room-busy.png", full_page=True)
        # One click away from a fresh room, which works.
        page.get_by_role("button", name="Use a new room").click()
        expect(page.locator("#status")).to_have_attribute("data-state", "idle")
        expect(page.locator("#status")).to_contain_text("New room")
        expect(page.get_by_role("alert")).to_be_hidden()
        assert page.get_by_label("Room").input_value() != room
        expect(page.get_by_role("button", name="Start")).to_be_focused()
        start_works_again(page)
    finally:
        api.delete(f"/session/{other['session_id']}")


def test_403_room_taken_offers_a_new_room(page: Page, stack: Stack, api: Api, artifacts_dir: Path) -> None:
    room = unique("taken")
    code, _ = api.get(f"/token?room={room}&identity=someone-else")  # their token claims the name
    assert code == 200
    open_chat(page, stack, room=room, identity="visitor")
    start(page)
    expect_error(page, "room_taken", "This room name is taken",
                 "Someone else is using this room name right now.",
                 "Use a new room (the button picks a free name)")
    expect(page.locator("#error-detail")).to_contain_text("HTTP 403 (room_taken)")
    expect_nothing_left(page)
    page.screenshot(path=artifacts_dir / "chat-error-403-room-taken.png", full_page=True)
    page.get_by_role("button", name="Use a new room").click()
    assert page.get_by_label("Room").input_value() != room
    start_works_again(page)


def test_429_too_many_sessions_asks_to_stop_one(page: Page, stack: Stack, api: Api, artifacts_dir: Path) -> None:
    identity = unique("busy-person")
    # The bound is two live sessions per identity: this person already has two, elsewhere.
    others = []
    for _ in range(2):
        code, body = api.post("/session", {"room": unique("elsewhere"), "identity": identity})
        assert code == 201, body
        others.append(body["session_id"])
    try:
        open_chat(page, stack, room=unique("third"), identity=identity)
        start(page)
        expect_error(page, "too_many_sessions", "Too many conversations at once",
                     "You already have as many live conversations as the voice service allows.",
                     "Stop a conversation in another tab or window")
        expect(page.locator("#error-detail")).to_contain_text("HTTP 429 (too_many_sessions)")
        expect_nothing_left(page)
        expect(page.get_by_role("button", name="Use a new room")).to_be_hidden()
        expect(page.get_by_role("button", name="Start")).to_be_enabled()  # no wait is asked for
        page.screenshot(path=artifacts_dir / "chat-error-429-too-many-sessions.png", full_page=True)
        # The person stops one of the others: Start works.
        assert api.delete(f"/session/{others.pop()}")[0] == 204
        start_works_again(page)
    finally:
        for session_id in others:
            api.delete(f"/session/{session_id}")


def test_429_rate_limited_says_how_long_and_start_comes_back(
    page: Page, rate_limited_stack: Stack, artifacts_dir: Path
) -> None:
    stack = rate_limited_stack
    api = Api(stack.backend_url)  # the same address as the browser: one budget
    spent = f"/token?room={unique('spend')}&identity=spender"

    def spend_the_budget_first(route: Route) -> None:
        # Right before the page's own request: use up this second's budget, so it lands over it.
        while api.get(spent)[0] != 429:
            pass
        route.continue_()

    open_chat(page, stack, room=unique("limited"))
    page.route(lambda url: url.startswith(f"{stack.backend_url}/token?"), spend_the_budget_first, times=1)
    with page.expect_response(lambda r: r.url.startswith(f"{stack.backend_url}/token?")) as answered:
        start(page)
    assert answered.value.status == 429
    wait = int(answered.value.headers["retry-after"])
    # While the wait lasts, Start is held (checked in the page: the wait may be a second).
    page.wait_for_function(
        "() => window.voiceAgent.errorKind === 'rate_limited' && document.getElementById('start').disabled"
    )
    unit = "second" if wait == 1 else "seconds"
    expect_error(page, "rate_limited", "Too many attempts",
                 "The voice service limits how often one address may start conversations.",
                 f"Wait {wait} {unit}: the Start button comes back by itself")
    expect(page.locator("#error-detail")).to_contain_text("HTTP 429 (rate_limited)")
    page.screenshot(path=artifacts_dir / "chat-error-429-rate-limited.png", full_page=True)
    # After the wait, Start is back by itself and works.
    expect(page.get_by_role("button", name="Start")).to_be_enabled(timeout=(wait + 5) * 1000)
    expect(page.locator("#status")).to_have_text("You can press Start again now.")
    start_works_again(page)


# ---- codes a well-formed page cannot provoke: the real server's body, played back ----------
def _status_and_body(response: Any) -> Answer:
    return response.status_code, response.json()


@pytest.fixture(scope="module")
def real_answers(api: Api) -> dict[str, Answer]:
    """What the real server answers for each code, asked once with the requests that cause it."""
    json_header = {"Content-Type": "application/json"}
    answers = {
        "invalid_request": api.get("/token?room=not%20a%20room&identity=visitor"),
        "parse_error": _status_and_body(api.client.post("/session", content=b'{"room": ', headers=json_header)),
        "not_found": api.get("/no-such-endpoint"),
        "payload_too_large": _status_and_body(
            api.client.post("/session", content=json.dumps({"room": "r" * 20_000}).encode(), headers=json_header)
        ),
        "unsupported_media_type": _status_and_body(
            api.client.post("/session", content=b"room=r&identity=i", headers={"Content-Type": "text/plain"})
        ),
    }
    # A healthy server never answers 500: take the body from the handler the server uses for it.
    crash = server_error(None)  # type: ignore[arg-type]
    answers["internal_error"] = (crash.status_code, json.loads(crash.content))
    return answers


# code → which request of the page gets it, the title, message and a piece of the hint.
PLAYED_BACK: dict[str, tuple[str, str, str, str]] = {
    "invalid_request": ("token", "The voice service refused the room or name",
                        "It did not accept the room or name this page sent.",
                        "Open Connection settings, check both fields"),
    "parse_error": ("session", "The voice service could not read the request",
                    "What this page sent did not arrive as valid JSON.",
                    "Reload the page to get its current version"),
    "not_found": ("token", "The voice service does not know this request",
                  "The page asked the voice service for something it does not have.",
                  "talking to the wrong server (check BACKEND_URL)"),
    "payload_too_large": ("session", "The request was too large",
                          "The voice service refused a request from this page because it was too big.",
                          "reload the page, then press Start again"),
    "unsupported_media_type": ("session", "The request was in the wrong format",
                               "The voice service expected JSON from this page and got something else.",
                               "Reload the page to get its current version"),
    "internal_error": ("session", "The voice service had a problem",
                       "Something went wrong on the voice service’s side; it has been logged there.",
                       "Press Start to try again"),
    "service_unavailable": ("session", "The agent is not available right now",
                            "The voice service could not bring the agent into the room.",
                            "Wait a moment, then press Start again"),
}


def _request_matcher(stack: Stack, which: str) -> Callable[[str], bool]:
    if which == "token":
        return lambda url: url.startswith(f"{stack.backend_url}/token?")
    return lambda url: url == f"{stack.backend_url}/session"


@pytest.mark.parametrize("code", list(PLAYED_BACK))
def test_error_code_is_explained(
    page: Page, stack: Stack, request: pytest.FixtureRequest, code: str, artifacts_dir: Path
) -> None:
    which, title, message, hint = PLAYED_BACK[code]
    if code == "service_unavailable":
        answer = request.getfixturevalue("backend_down")[1]
    else:
        answer = request.getfixturevalue("real_answers")[code]
    status, body = answer
    assert body["error"]["code"] == code, answer  # the real server's answer for this code

    open_chat(page, stack, room=unique(code.replace("_", "-")))

    def play_back(route: Route) -> None:
        route.fulfill(status=status, json=body)

    page.route(_request_matcher(stack, which), play_back, times=1)
    start(page)
    expect_error(page, code, title, message, hint)
    expect_server_words(page, answer)
    expect_nothing_left(page)
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    page.screenshot(path=artifacts_dir / f"chat-error-{status}-{code.replace('_', '-')}.png", full_page=True)
    start_works_again(page)  # the next answer is the server's own


# ---- servers down -------------------------------------------------------------------------
def test_history_empty(page: Page, livekit_down: Stack, artifacts_dir: Path) -> None:
    page.goto(f"{livekit_down.ui_url}/history")
    expect(page.locator("#history-status")).to_have_attribute("data-state", "empty")
    expect(page.get_by_text("No conversations yet.").first).to_be_visible()
    expect(page.get_by_role("link", name="Start a conversation")).to_be_visible()
    expect(page.locator("#sessions")).to_be_hidden()
    page.screenshot(path=artifacts_dir / "history-empty.png", full_page=True)


def test_livekit_stopped(page: Page, livekit_down: Stack, artifacts_dir: Path) -> None:
    open_chat(page, livekit_down)
    start(page)
    expect_error(page, "livekit_down", "Can’t reach the media server",
                 f"No connection to the LiveKit server at {livekit_down.livekit_url}.",
                 "The LiveKit server may be stopped")
    # livekit-client's own words in the small print (its reason: ServerUnreachable), no stack.
    said = re.compile(r"^LiveKit client: could not establish signal connection")
    expect(page.locator("#error-detail")).to_have_text(said)
    expect(page.locator("#error-detail")).not_to_contain_text(".mjs")
    expect_nothing_left(page)
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    page.screenshot(path=artifacts_dir / "chat-error-livekit-down.png", full_page=True)


def test_backend_stopped(page: Page, backend_down: tuple[Stack, Answer], artifacts_dir: Path) -> None:
    stack = backend_down[0]
    open_chat(page, stack)
    start(page)
    expect_error(page, "backend_down", "Can’t reach the voice service",
                 f"No answer from {stack.backend_url}.", "Check that the backend is running")
    expect(page.locator("#error-detail")).to_be_hidden()
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    page.screenshot(path=artifacts_dir / "chat-error-backend-down.png", full_page=True)

    page.goto(f"{stack.ui_url}/history")
    expect(page.locator("#history-status")).to_have_attribute("data-state", "error")
    expect(page.get_by_role("alert")).to_contain_text("History is unavailable")
    page.screenshot(path=artifacts_dir / "history-error.png", full_page=True)
