"""The checks the chat page runs before Start (ui/static/preflight.js), in Debian Chromium on
the shared stack: the browser's support for calls, the microphone's permission and autoplay.
Each problem is shown with its fix in a panel under the controls; nothing is shown when all is
well; the checks run again when the person fixes something (the permission changes).

- a ready browser (the fake microphone allowed): no panel, Start enabled;
- the microphone denied (the `no_mic_browser` fixture, which answers the prompt "deny"): a
  first visit cannot know yet ("prompt"), the denial at Start shows the problem at once, and
  the next visit shows it before Start, with its fix, Start still usable (the person may type);
- the person allows the microphone while the page is open (Chromium's DevTools protocol sets
  the permission, as the address bar's site settings do): the problem goes away by itself, and
  Start makes a call;
- a browser without WebRTC (Chromium with RTCPeerConnection removed before the page's scripts,
  as in WebKitGTK; test_webkit.py has the real one): the reason is shown, Start is disabled.

Every page's console is checked for Content-Security-Policy violations.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from devtools.stack import Stack
from tests.e2e.support import START_TIMEOUT_MS, open_chat, press_start, press_stop, unique

BLOCKED = "Microphone blocked"
FIX = "Allow the microphone for this site (the icon at the left of the address bar), then reload the page."


def checks(page: Page) -> dict[str, Any]:
    """The result of the page's checks, once they have run."""
    page.wait_for_function("() => window.voiceAgent.preflight && window.voiceAgent.preflight.done")
    result: dict[str, Any] = page.evaluate("window.voiceAgent.preflight")
    return result


class SiteSettings:
    """What the person does in the address bar's site settings: allow or block the microphone.
    Chromium drops these overrides when the DevTools session that set them detaches: one
    session for the whole test."""

    def __init__(self, context: BrowserContext, page: Page, origin: str) -> None:
        self.cdp = context.new_cdp_session(page)
        self.browser_context = self.cdp.send("Target.getTargetInfo")["targetInfo"]["browserContextId"]
        self.origin = origin

    def microphone(self, setting: str) -> None:
        self.cdp.send("Browser.setPermission", {
            "permission": {"name": "microphone"}, "setting": setting, "origin": self.origin,
            "browserContextId": self.browser_context,
        })


@pytest.fixture
def no_mic_page(no_mic_browser: Browser) -> Iterator[tuple[BrowserContext, Page, list[str]]]:
    """A page of the browser that denies the microphone, and its console; no CSP violation."""
    context = no_mic_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"[{message.type}] {message.text}"))
    yield context, page, console
    context.close()
    violations = [line for line in console if "Content Security Policy" in line]
    assert not violations, "\n".join(violations)


def expect_microphone_problem(page: Page) -> None:
    panel = page.locator("#preflight")
    expect(panel).to_be_visible()
    item = panel.locator('.preflight-item[data-check="microphone"]')
    expect(item.locator(".preflight-problem")).to_have_text(BLOCKED)
    expect(item.locator(".preflight-fix")).to_contain_text(FIX)
    expect(item.locator(".preflight-fix")).to_contain_text("Or type to the agent instead.")
    expect(panel.locator(".preflight-item")).to_have_count(1)


def test_a_ready_browser_is_shown_no_problem(page: Page, stack: Stack) -> None:
    open_chat(page, stack, room=unique("ready"))
    found = checks(page)
    assert found["canCall"] is True and found["livekit"] is True and found["missing"] == []
    assert found["microphone"] == "granted"  # the fake-UI flag allows it
    assert found["autoplay"] == "unknown"  # Chromium has no getAutoplayPolicy: the button covers it
    assert found["problems"] == []
    expect(page.locator("#preflight")).to_be_hidden()
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    expect(page.locator("#status")).to_have_text("Ready. Press Start and speak.")


def test_a_denied_microphone_is_shown_with_its_fix_before_the_next_start(
    no_mic_page: tuple[BrowserContext, Page, list[str]], stack: Stack, artifacts_dir: Path
) -> None:
    _, page, _ = no_mic_page
    open_chat(page, stack, room=unique("preflight-mic"))
    assert checks(page)["microphone"] == "prompt"  # not asked yet: the browser will ask at Start
    expect(page.locator("#preflight")).to_be_hidden()

    page.get_by_role("button", name="Start").click()  # the browser says no
    expect(page.locator("#status")).to_have_attribute("data-state", "error", timeout=START_TIMEOUT_MS)
    assert page.evaluate("window.voiceAgent.errorKind") == "mic_denied"
    expect_microphone_problem(page)  # checked again when the permission changed

    # The next visit: said before Start, which stays usable (the person may type instead).
    page.reload()
    assert checks(page)["microphone"] == "denied"
    expect_microphone_problem(page)
    expect(page.get_by_role("alert")).to_be_hidden()
    expect(page.locator("#status")).to_have_text("Ready. Press Start and speak.")
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    page.screenshot(path=artifacts_dir / "chat-preflight-mic-blocked.png", full_page=True)


def test_allowing_the_microphone_clears_the_problem_without_a_reload(
    no_mic_page: tuple[BrowserContext, Page, list[str]], stack: Stack
) -> None:
    context, page, _ = no_mic_page
    site = SiteSettings(context, page, stack.ui_url)
    site.microphone("denied")
    open_chat(page, stack, room=unique("preflight-fix"))
    assert checks(page)["microphone"] == "denied"
    expect_microphone_problem(page)

    site.microphone("granted")
    expect(page.locator("#preflight")).to_be_hidden()
    assert page.evaluate("window.voiceAgent.preflight.microphone") == "granted"
    press_start(page)  # and the call works
    press_stop(page)


def test_a_browser_without_webrtc_cannot_press_start(page: Page, stack: Stack, artifacts_dir: Path) -> None:
    page.add_init_script("delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;")
    open_chat(page, stack, room=unique("no-webrtc"))
    found = checks(page)
    assert found["canCall"] is False and found["livekit"] is False and found["missing"] == ["webrtc"]
    panel = page.locator("#preflight")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("data-blocked", "true")
    expect(panel.locator(".preflight-problem")).to_have_text("This browser cannot make calls")
    expect(panel.locator(".preflight-fix")).to_contain_text("This browser has no WebRTC (RTCPeerConnection)")
    expect(panel.locator(".preflight-fix")).to_contain_text("Use the latest Chrome or Edge, or a recent Firefox")
    start = page.get_by_role("button", name="Start")
    expect(start).to_be_disabled()
    expect(start).to_have_attribute("aria-describedby", "preflight")
    expect(page.locator("#status")).to_have_text("This browser cannot make calls: see why below.")
    expect(page.get_by_role("button", name="Continue with text only")).to_be_hidden()
    expect(page.get_by_text("Can’t reach the media server")).to_have_count(0)
    page.screenshot(path=artifacts_dir / "chat-preflight-no-webrtc.png", full_page=True)
