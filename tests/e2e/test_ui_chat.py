"""The /chat page in Debian Chromium against the real stack: every state of a conversation,
the transcript, indicators and meter, keyboard use, phone width, and the errors of the
browser's own making (bad settings, microphone denied). The API's errors and servers that
are down: test_ui_errors.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Route, expect

from app.voice.contract import rules
from devtools.stack import Stack
from offline_openai.replies import GREETING
from tests.e2e.support import Api, unique, wait_until

AUDIBLE_RMS = 0.02
# Sums Chromium's layout-shift entries not caused by input: the page must not jump while streaming.
CLS_PROBE = """
window.__cls = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) if (!entry.hadRecentInput) window.__cls += entry.value;
}).observe({ type: "layout-shift", buffered: true });
"""


def hold_requests(page: Page, matches: Callable[[Any], bool]) -> list[Route]:
    """Pause matching requests until the test releases them: lets a screenshot catch a transient state."""
    held: list[Route] = []

    def handler(route: Route) -> None:
        if matches(route.request):
            held.append(route)
        else:
            route.continue_()

    page.route(lambda url: True, handler)
    return held


def release(page: Page, held: list[Route]) -> None:
    for route in held:
        route.continue_()
    page.unroute_all()


def at_bottom(page: Page) -> bool:
    return page.evaluate(
        "(() => { const s = document.getElementById('transcript-scroller');"
        " return s.scrollHeight - s.scrollTop - s.clientHeight < 48; })()"
    )


def test_idle_page_is_labelled_and_keyboard_reachable(page: Page, stack: Stack, artifacts_dir: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{stack.ui_url}/chat")
    expect(page.locator("#status")).to_have_attribute("data-state", "idle")
    expect(page.locator("#status")).to_have_text("Ready. Press Start and speak.")
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    expect(page.locator("#status")).to_have_attribute("role", "status")
    expect(page.locator("#status")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#transcript")).to_have_attribute("aria-live", "polite")
    expect(page.get_by_role("meter", name="Microphone level")).to_be_visible()
    # Generated per visitor: a room and a name are filled in and valid.
    page.get_by_text("Connection settings").click()
    expect(page.get_by_label("Room")).to_have_value(re.compile(r"^room-[a-z0-9]+$"))
    expect(page.get_by_label("Your name")).to_have_value(re.compile(r"^guest-[a-z0-9]+$"))
    page.get_by_text("Connection settings").click()
    # Tab from the top of the page reaches Start after the skip link and the navigation.
    for _ in range(8):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "start":
            break
    assert page.evaluate("document.activeElement.id") == "start"
    page.screenshot(path=artifacts_dir / "chat-idle.png", full_page=True)


def test_query_string_overrides_and_bad_settings_are_refused(page: Page, stack: Stack, artifacts_dir: Path) -> None:
    page.goto(f"{stack.ui_url}/chat?room=team-room&identity=ana")
    expect(page.get_by_label("Room")).to_have_value("team-room")
    expect(page.get_by_label("Your name")).to_have_value("ana")
    token_requests: list[str] = []
    page.on("request", lambda request: token_requests.append(request.url) if "/token" in request.url else None)
    page.get_by_text("Connection settings").click()
    page.get_by_label("Room").fill("team room!")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#status")).to_have_attribute("data-state", "error")
    expect(page.locator("#error-title")).to_have_text("Check the connection settings")
    # The browser applied the server's rule (rendered into the input) and quotes its words.
    assert page.get_by_label("Room").evaluate("input => input.validity.patternMismatch") is True
    expect(page.locator("#error-message")).to_have_text(f"Room: {rules.NAME_RULE_TEXT}")
    expect(page.get_by_label("Room")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Room")).to_be_focused()
    assert token_requests == []  # nothing was sent
    page.screenshot(path=artifacts_dir / "chat-error-settings.png", full_page=True)
    page.get_by_label("Room").fill("team-room-2")
    expect(page.get_by_label("Room")).not_to_have_attribute("aria-invalid", "true")


def test_conversation_states_transcript_indicators_and_meter(
    page: Page, stack: Stack, api: Api, artifacts_dir: Path
) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    page.add_init_script(CLS_PROBE)
    page.goto(f"{stack.ui_url}/chat?room={unique('desk')}")
    status = page.locator("#status")

    # Connecting: hold the token request so the state can be seen and captured. Keyboard start.
    held = hold_requests(page, lambda request: "/token" in request.url)
    page.locator("#start").focus()
    page.keyboard.press("Enter")
    expect(status).to_have_attribute("data-state", "connecting")
    expect(page.get_by_role("button", name="Start")).to_be_disabled()
    expect(page.get_by_role("button", name="Stop")).to_be_enabled()
    page.screenshot(path=artifacts_dir / "chat-connecting.png", full_page=True)
    release(page, held)

    expect(status).to_have_attribute("data-state", "live", timeout=30_000)
    expect(status).to_have_text("Live: speak any time.")
    session_id = page.evaluate("window.voiceAgent.sessionId")

    # The agent greets: its indicator lights while it speaks, its audio is audible.
    expect(page.locator("#agent-indicator")).to_have_attribute("data-speaking", "true", timeout=30_000)
    expect(page.locator("#agent-indicator .speaker-state")).to_have_text("speaking")
    expect(page.locator("#transcript .line.agent .text").first).to_have_text(GREETING, timeout=30_000)
    page.wait_for_function(f"() => window.voiceAgent.agentPeakRms > {AUDIBLE_RMS}", timeout=30_000)
    expect(page.locator("#transcript-empty")).to_be_hidden()

    # The fake mic speaks: the meter moves, the user indicator lights, interim text updates in place.
    page.wait_for_function("() => document.getElementById('mic-level').value > 0.05", timeout=30_000)
    expect(page.locator("#interim")).to_have_attribute("data-active", "true", timeout=45_000)
    expect(page.locator("#user-indicator")).to_have_attribute("data-speaking", "true", timeout=10_000)
    page.screenshot(path=artifacts_dir / "chat-user-speaking.png", full_page=True)

    # Finals are appended, user and agent distinct; the interim line is cleared by the final.
    expect(page.locator("#transcript .line.user").first).to_be_visible(timeout=45_000)
    expect(page.locator("#transcript .line.agent .text").nth(1)).to_have_text(
        re.compile(r"^You said: "), timeout=30_000)
    user_bg, agent_bg = page.evaluate(
        "[...document.querySelectorAll('#transcript .line.user, #transcript .line.agent')].slice(0, 2)"
        ".map(n => getComputedStyle(n).backgroundColor)")
    assert user_bg != agent_bg
    page.screenshot(path=artifacts_dir / "chat-live-conversation.png", full_page=True)
    cls = page.evaluate("window.__cls")
    assert cls < 0.02, f"layout shifted while the transcript streamed (CLS {cls:.3f})"

    # Stopping: hold the DELETE to capture the state, then everything resets.
    held = hold_requests(page, lambda request: request.method == "DELETE")
    page.get_by_role("button", name="Stop").click()
    expect(status).to_have_attribute("data-state", "stopping")
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()
    page.screenshot(path=artifacts_dir / "chat-stopping.png", full_page=True)
    release(page, held)
    expect(status).to_have_attribute("data-state", "idle", timeout=20_000)
    expect(status).to_contain_text("saved in History")
    expect(page.get_by_role("button", name="Start")).to_be_focused()
    assert page.evaluate("[window.voiceAgent.wsState, window.voiceAgent.roomState]") == ["closed", "disconnected"]
    expect(page.locator("#agent-indicator")).to_have_attribute("data-speaking", "false")
    expect(page.locator("#transcript .line").first).to_be_visible()  # kept for reading until the next Start
    wait_until(lambda: api.get(f"/session/{session_id}")[1]["status"] == "ended", 10, "session ended")
    page.screenshot(path=artifacts_dir / "chat-stopped.png", full_page=True)


def test_phone_width_and_scroll_that_respects_the_reader(browser: Browser, stack: Stack, artifacts_dir: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 600}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(f"{stack.ui_url}/chat?room={unique('phone')}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=artifacts_dir / "mobile-chat-idle.png", full_page=True)
        page.get_by_role("button", name="Start").tap()
        expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=30_000)
        # Typed lines (answered at once, unlike the looping microphone's question every ~24 s)
        # until the transcript overflows its box; while nobody scrolls, it follows the newest line.
        # After the greeting: this test is about scrolling, not about typing over the agent.
        expect(page.locator("#transcript .line.agent .text").first).to_have_text(GREETING, timeout=30_000)
        say = page.locator("#say-text")
        say.fill("Tell me about the long rivers, the high mountains and the old cities of the world, one by one.")
        say.press("Enter")
        page.wait_for_function(
            "() => { const s = document.getElementById('transcript-scroller');"
            " return s.scrollHeight > s.clientHeight + 40; }", timeout=90_000)
        assert at_bottom(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=artifacts_dir / "mobile-chat.png", full_page=True)

        # A reader scrolls up: new lines must not pull them down; a button offers the way back.
        page.evaluate("document.getElementById('transcript-scroller').scrollTop = 0")
        count = page.locator("#transcript .line").count()
        say.fill("And what about the seas?")
        say.press("Enter")
        page.wait_for_function(f"() => document.querySelectorAll('#transcript .line').length > {count}", timeout=45_000)
        assert page.evaluate("document.getElementById('transcript-scroller').scrollTop") < 5
        jump = page.get_by_role("button", name="Jump to latest")
        expect(jump).to_be_visible()
        page.screenshot(path=artifacts_dir / "mobile-chat-scrolled-up.png", full_page=True)
        jump.tap()
        expect(jump).to_be_hidden()
        assert at_bottom(page)

        page.get_by_role("button", name="Stop").tap()
        expect(page.locator("#status")).to_have_attribute("data-state", "idle", timeout=20_000)
    finally:
        context.close()


def test_stop_while_connecting_cancels_the_start(page: Page, stack: Stack, api: Api) -> None:
    room = unique("cancel")
    page.goto(f"{stack.ui_url}/chat?room={room}")
    status = page.locator("#status")
    # Hold POST /session: the page is connected to LiveKit, its mic on, waiting for the agent.
    held = hold_requests(page, lambda request: request.method == "POST" and request.url.endswith("/session"))
    page.get_by_role("button", name="Start").click()
    expect(status).to_have_text("Inviting the agent…", timeout=30_000)
    # Each evaluate gives Playwright a turn to run the route handler that holds the request.
    wait_until(lambda: page.evaluate("true") and held, 10, "the session request to be held")
    page.get_by_role("button", name="Stop").click()
    expect(status).to_have_attribute("data-state", "idle", timeout=20_000)
    page.wait_for_function("() => window.voiceAgent.roomState === 'disconnected'")

    # The request reaches the server after all: the cancelled start deletes what it made.
    with page.expect_response(lambda r: r.request.method == "DELETE" and "/session/" in r.url) as deleted:
        release(page, held)
    session_id = deleted.value.url.rsplit("/", 1)[1]
    wait_until(lambda: api.get(f"/session/{session_id}")[1]["status"] == "ended", 15, "session ended")
    session = api.get(f"/session/{session_id}")[1]
    assert (session["room"], session["end_reason"]) == (room, "deleted")
    assert page.evaluate("[window.voiceAgent.state, window.voiceAgent.sessionId, window.voiceAgent.errorKind]") == [
        "idle", None, None]
    expect(status).to_contain_text("Stopped.")
    expect(page.get_by_role("alert")).to_be_hidden()


def test_session_ended_by_the_server_returns_to_idle(page: Page, stack: Stack, api: Api) -> None:
    page.goto(f"{stack.ui_url}/chat?room={unique('ended')}")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=30_000)
    session_id = page.evaluate("window.voiceAgent.sessionId")
    assert api.delete(f"/session/{session_id}")[0] == 204  # e.g. from another tab
    expect(page.locator("#status")).to_have_attribute("data-state", "idle", timeout=20_000)
    expect(page.locator("#status")).to_contain_text("The session ended (deleted)")
    page.wait_for_function(
        "() => window.voiceAgent.roomState === 'disconnected' && window.voiceAgent.wsState === 'closed'"
    )
    expect(page.get_by_role("button", name="Start")).to_be_enabled()


def test_leaving_the_page_stops_the_session(page: Page, stack: Stack, api: Api) -> None:
    page.goto(f"{stack.ui_url}/chat?room={unique('leave')}")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=30_000)
    session_id = page.evaluate("window.voiceAgent.sessionId")
    page.goto(f"{stack.ui_url}/")  # pagehide: keepalive DELETE + LiveKit disconnect
    wait_until(lambda: api.get(f"/session/{session_id}")[1]["status"] == "ended", 15, "session ended")
    assert api.get(f"/session/{session_id}")[1]["end_reason"] in ("deleted", "participant_left")


def test_microphone_denied(no_mic_browser: Browser, stack: Stack, artifacts_dir: Path) -> None:
    # Headless Chromium without the fake-UI flag answers the permission prompt with "deny".
    context = no_mic_browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{stack.ui_url}/chat?room={unique('nomic')}")
        page.get_by_role("button", name="Start").click()
        expect(page.locator("#status")).to_have_attribute("data-state", "error", timeout=30_000)
        expect(page.locator("#error-title")).to_have_text("Microphone access is blocked")
        expect(page.locator("#error-hint")).to_contain_text("Allow the microphone")
        state = page.evaluate("[window.voiceAgent.errorKind, window.voiceAgent.roomState, window.voiceAgent.sessionId]")
        assert state == ["mic_denied", "disconnected", None]
        expect(page.get_by_role("button", name="Start")).to_be_enabled()
        page.screenshot(path=artifacts_dir / "chat-error-mic-denied.png", full_page=True)
    finally:
        context.close()
