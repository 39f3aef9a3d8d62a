"""The chat page in a browser that cannot make calls: Debian's WebKitGTK (Safari's engine),
in its MiniBrowser, driven by Selenium through WebKitWebDriver on an Xvfb display of its own
(WebKitGTK has no headless mode), against the shared stack.

What WebKitGTK 2.50 (Debian 12) lacks: WebRTC. `RTCPeerConnection` (and RTCRtpSender,
RTCRtpTransceiver) are undefined, so livekit-client's isBrowserSupported() is false and its
Room.connect() throws "LiveKit doesn't seem to be supported on this browser" before it opens
any connection. The page loads (ES modules, the import map), WebSocket, AudioContext and
AudioWorklet exist, navigator.mediaDevices.getUserMedia exists (on 127.0.0.1, a secure
context) but there is no capture device under Xvfb; the Permissions API answers "prompt" for
the microphone; there is no navigator.getAutoplayPolicy and no HTMLMediaElement.setSinkId.
The page used to say "Can't reach the media server" there, which was wrong.

Tested:
- before Start, the checks (preflight.js) say the browser cannot make calls and name what it
  lacks (WebRTC, RTCPeerConnection) and what to use instead; Start is disabled, described by
  that panel, and no text-only conversation is offered (typing uses the same connection);
- clicking the disabled Start does nothing; starting anyway (the Connection settings form
  submitted, the page's other way into starting) shows the browser_unsupported error, never
  "Can't reach the media server", sends nothing to the voice service (no GET /token, no
  POST /session), leaves no session live, and nothing lands on the console (no console.error
  or warning, no uncaught error): no stack trace anywhere;
- the page's own media code, run in WebKit with a real room pass: MediaRoom.open refuses with
  browser_unsupported, and livekit-client's real refusal of Room.connect() is explained the
  same way (with the library's words as the small print), not as an unreachable server.
Screenshots: artifacts/e2e/webkit-*.png; the features WebKitGTK has: webkit-features.json.
"""

from __future__ import annotations

import glob
import json
import os
import re
import select
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from selenium.webdriver.webkitgtk.service import Service

from devtools.stack import Stack
from tests.e2e.support import Api, unique, wait_until

# Where Debian's libwebkit2gtk-4.1-0 (a dependency of webkit2gtk-driver) puts MiniBrowser.
MINIBROWSER_GLOBS = (
    "/usr/lib/*/webkit2gtk-4.1/MiniBrowser",
    "/usr/lib/*/webkit2gtk-4.0/MiniBrowser",
    "/usr/libexec/webkit2gtk-4.*/MiniBrowser",
)
# Selenium's own WebKitGTK driver class still passes remote_server_addr (its deprecation, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:setting remote_server_addr:DeprecationWarning")
TIMEOUT = 30  # seconds, for the page to load its modules and finish its checks
UNREACHABLE = re.compile(r"Can.t reach the media server")
# A stack trace as WebKit (function@url:line:column) or V8 ("    at f (url:line:column)") writes it.
STACK_TRACE = re.compile(r"@\S+:\d+:\d+|\bat \S+ \(\S+:\d+:\d+\)|\.m?js:\d+")

# Recorded in the page from the moment it is installed: console errors and warnings, uncaught
# errors and unhandled rejections.
RECORD_CONSOLE = """
window.__problems = [];
for (const level of ["error", "warn"]) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    window.__problems.push(level + ": " + args.map(String).join(" "));
    original(...args);
  };
}
window.addEventListener("error", (e) => window.__problems.push("uncaught: " + e.message));
window.addEventListener("unhandledrejection", (e) => window.__problems.push("unhandled: " + e.reason));
"""

FEATURES = """return {
  userAgent: navigator.userAgent, secureContext: window.isSecureContext,
  RTCPeerConnection: typeof RTCPeerConnection, RTCRtpTransceiver: typeof RTCRtpTransceiver,
  getUserMedia: typeof navigator.mediaDevices?.getUserMedia, AudioContext: typeof AudioContext,
  AudioWorkletNode: typeof AudioWorkletNode, WebSocket: typeof WebSocket,
  permissionsQuery: typeof navigator.permissions?.query, getAutoplayPolicy: typeof navigator.getAutoplayPolicy,
  setSinkId: "setSinkId" in HTMLMediaElement.prototype, importMaps: HTMLScriptElement.supports?.("importmap") ?? null,
};"""


def minibrowser() -> Path | None:
    for pattern in MINIBROWSER_GLOBS:
        for found in sorted(glob.glob(pattern)):
            return Path(found)
    return None


def _display_number(fd: int, process: subprocess.Popen[bytes], timeout: float) -> int:
    """What Xvfb writes on -displayfd once it listens: its display number and a newline."""
    written = b""
    while not written.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], timeout)
        chunk = os.read(fd, 16) if ready else b""
        if not chunk:
            raise AssertionError(f"Xvfb gave no display number (exit code {process.poll()})")
        written += chunk
    return int(written)


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """An Xvfb display of this module's own: Xvfb picks a free number itself (-displayfd) and
    writes it once it accepts connections; its socket must then exist. Stopped afterwards."""
    xvfb = shutil.which("Xvfb")
    if not xvfb:
        pytest.skip("Xvfb is not installed (./dev.sh setup installs it on Debian)")
    read, write = os.pipe()
    process = subprocess.Popen(
        [xvfb, "-displayfd", str(write), "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        number = _display_number(read, process, timeout=30)
        socket = Path(f"/tmp/.X11-unix/X{number}")
        wait_until(socket.exists, 10, f"Xvfb's socket {socket}")
        yield f":{number}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        os.close(read)


@pytest.fixture
def webkit(display: str, artifacts_dir: Path) -> Iterator[WebDriver]:
    """MiniBrowser (WebKitGTK) under WebKitWebDriver, on the Xvfb display; its log in artifacts."""
    driver = shutil.which("WebKitWebDriver")
    browser = minibrowser()
    if not driver or not browser:
        pytest.skip("WebKitWebDriver or MiniBrowser is missing (./dev.sh setup installs webkit2gtk-driver)")
    options = webdriver.WebKitGTKOptions()
    options.binary_location = str(browser)
    options.add_argument("--automation")
    log = artifacts_dir / "logs" / "webkitwebdriver.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    service = Service(executable_path=driver, env={**os.environ, "DISPLAY": display}, log_output=str(log))
    session = webdriver.WebKitGTK(options=options, service=service)
    session.set_window_size(1280, 900)
    yield session
    session.quit()


def wait_for(driver: WebDriver, script: str, what: str) -> Any:
    """Poll `script` (a JavaScript expression) in the page until it is truthy; return it."""
    return WebDriverWait(driver, TIMEOUT, poll_frequency=0.1).until(
        lambda d: d.execute_script(f"return {script}"), message=f"waiting for {what}"
    )


def open_chat(driver: WebDriver, stack: Stack, room: str) -> dict[str, Any]:
    """Open /chat, wait for its checks before Start; return their result."""
    driver.get(f"{stack.ui_url}/chat?room={room}&identity=webkit")
    return wait_for(driver, "window.voiceAgent && window.voiceAgent.preflight && window.voiceAgent.preflight.done"
                    " && window.voiceAgent.preflight", "the checks before Start")


def screenshot(driver: WebDriver, path: Path) -> None:
    """After the page has painted what the test just checked (WebKitGTK's screenshot is its
    last painted frame): two animation frames."""
    driver.execute_async_script("const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(done));")
    driver.save_screenshot(str(path))


def text_of(driver: WebDriver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def test_webkit_is_told_before_start_that_it_cannot_make_calls(
    webkit: WebDriver, stack: Stack, artifacts_dir: Path
) -> None:
    checks = open_chat(webkit, stack, unique("webkit"))
    features = webkit.execute_script(FEATURES)
    version = webkit.capabilities.get("browserVersion")
    (artifacts_dir / "webkit-features.json").write_text(json.dumps({"webkitgtk": version, **features}, indent=2))
    assert features["RTCPeerConnection"] == "undefined", features  # what this test is about

    # The checks: no WebRTC, and livekit-client (which loaded) agrees.
    assert checks["canCall"] is False and checks["livekit"] is False
    assert "webrtc" in checks["missing"]
    assert [p["check"] for p in checks["problems"]] == ["browser"]

    panel = webkit.find_element(By.ID, "preflight")
    assert panel.is_displayed()
    shown = panel.text
    assert "This browser cannot make calls" in shown
    assert "WebRTC (RTCPeerConnection)" in shown
    assert "Chrome or Edge" in shown and "Firefox" in shown and "Safari" in shown
    # Start is disabled, and says why; nothing offers a text-only conversation.
    start = webkit.find_element(By.ID, "start")
    assert not start.is_enabled()
    assert start.get_attribute("aria-describedby") == "preflight"
    assert text_of(webkit, "status") == "This browser cannot make calls: see why below."
    assert not webkit.find_element(By.ID, "text-only").is_displayed()
    assert not webkit.find_element(By.ID, "error").is_displayed()
    assert not UNREACHABLE.search(webkit.find_element(By.TAG_NAME, "body").text)
    screenshot(webkit, artifacts_dir / "webkit-preflight.png")


def test_starting_anyway_says_the_browser_cannot_call_not_that_the_server_is_down(
    webkit: WebDriver, stack: Stack, artifacts_dir: Path
) -> None:
    open_chat(webkit, stack, unique("webkit"))
    webkit.execute_script(RECORD_CONSOLE)
    start = webkit.find_element(By.ID, "start")
    assert not start.is_enabled()
    start.click()  # a disabled button: nothing happens
    assert webkit.execute_script("return [window.voiceAgent.state, window.voiceAgent.errorKind]") == ["idle", None]
    # The page's other way into starting: its Connection settings form submitted (the page
    # listens for it; WebDriver cannot press Enter into it: two fields and no submit button).
    webkit.execute_script("document.getElementById('settings-form').requestSubmit()")

    wait_for(webkit, "window.voiceAgent.errorKind === 'browser_unsupported'", "the unsupported-browser error")
    assert webkit.find_element(By.ID, "error").is_displayed()
    assert text_of(webkit, "error-title") == "This browser cannot make calls"
    assert text_of(webkit, "error-message") == "This browser has no WebRTC (RTCPeerConnection), which calls need."
    hint = text_of(webkit, "error-hint")
    assert "Chrome or Edge" in hint and "Firefox" in hint and "Safari" in hint
    assert not webkit.find_element(By.ID, "text-only").is_displayed()
    assert not webkit.find_element(By.ID, "new-room").is_displayed()
    body = webkit.find_element(By.TAG_NAME, "body").text
    assert not UNREACHABLE.search(body), body
    assert not STACK_TRACE.search(body), body
    assert not start.is_enabled()
    screenshot(webkit, artifacts_dir / "webkit-start-refused.png")

    # Nothing reached the voice service, so nothing can be live; and nothing hit the console.
    requests = webkit.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert not [url for url in requests if url.startswith(stack.backend_url)], requests
    assert webkit.execute_script("return window.voiceAgent.sessionId") is None
    assert webkit.execute_script("return window.__problems") == []


def test_the_media_code_in_webkit_explains_livekits_refusal_as_an_unsupported_browser(
    webkit: WebDriver, stack: Stack
) -> None:
    """The original bug, at its source: a real room pass, the page's media.js in WebKit."""
    room = unique("webkit")
    open_chat(webkit, stack, room)
    visitor = Api(stack.backend_url)
    status, grant = visitor.get(f"/token?room={room}&identity=webkit")
    assert status == 200, grant
    webkit.execute_script(RECORD_CONSOLE)
    outcome = webkit.execute_async_script(
        """const [url, token, done] = arguments;
        (async () => {
          const { MediaRoom } = await import("/static/media.js");
          const { describe } = await import("/static/errors.js");
          const livekit = await import("livekit-client");
          const seen = {};
          try { await MediaRoom.open({}); seen.open = "opened"; } catch (e) { seen.open = describe(e); }
          // Past MediaRoom.open's check: what livekit-client itself throws, through media.js's connect().
          const media = Object.create(MediaRoom.prototype);
          media.room = new livekit.Room();
          try { await media.connect(url, token); seen.connect = "connected"; } catch (e) { seen.connect = describe(e); }
          done(seen);
        })().catch((e) => done({ failed: String(e) }));""",
        grant["url"], grant["token"],
    )
    assert "failed" not in outcome, outcome
    for step in ("open", "connect"):
        shown = outcome[step]
        assert isinstance(shown, dict), outcome
        assert shown["kind"] == "browser_unsupported", outcome
        assert shown["title"] == "This browser cannot make calls"
        assert "WebRTC" in shown["message"] and not UNREACHABLE.search(json.dumps(shown))
        assert not STACK_TRACE.search(json.dumps(shown)), shown
    livekit_said = "LiveKit client: LiveKit doesn't seem to be supported on this browser"
    assert outcome["connect"]["detail"].startswith(livekit_said)
    # The room pass was only minted: no session was started for it.
    status, page = visitor.get("/transcripts?limit=100")
    assert status == 200 and not [s for s in page["results"] if s["status"] != "ended"], page
    assert webkit.execute_script("return window.__problems") == []
