"""The real stack for browser tests: LiveKit dev server, Django ASGI with the in-process
agent (the product's openai providers, pointed at the stack's offline OpenAI-compatible server:
Silero VAD, Whisper tiny.en, rule-based replies, Piper),
the Flask UI, and Debian's Chromium with a fake microphone that says a known sentence
(Firefox, through Selenium, speaks into a PulseAudio microphone of the tests' own instead).
Started once per test session by the same launcher as the run command; artifacts (logs,
screenshots, recordings) under artifacts/e2e/.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserType
from selenium import webdriver

from devtools import setup
from devtools.stack import ROOT, Stack
from tests.e2e.firefox import launch as launch_firefox
from tests.e2e.firefox import save_screenshot
from tests.e2e.livekit_clients import LoopThread
from tests.e2e.pulse import PulseAudio
from tests.e2e.speech import Recording, Utterance, recording
from tests.e2e.support import VISITOR_COOKIE, Api, end_live_sessions, separate_stack

ARTIFACTS = ROOT / "artifacts" / "e2e"
# What the shared browser's microphone says, again and again (the file loops): a pause in
# which the agent greets, one question, then time for the answer.
PERSON = Utterance("What is the weather like in Paris today?", voice="rms", pause_after=14.0)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def person() -> Recording:
    return recording([PERSON], lead=7.0, name="person")


@pytest.fixture(scope="session")
def stack(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack most tests share; tests that stop servers make a separate_stack."""
    with separate_stack("shared", artifacts_dir, tmp_path_factory.mktemp("shared")) as running:
        yield running


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any], person: Recording) -> dict[str, Any]:
    """pytest-playwright cannot select Debian's Chromium by channel: point at it directly."""
    return {
        **browser_type_launch_args,
        "executable_path": str(setup.chromium()),
        "args": [*setup.CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={person.path}"],
    }


@pytest.fixture(scope="module")
def no_mic_browser(browser_type: BrowserType, person: Recording) -> Iterator[Browser]:
    """Chromium without the flag that auto-accepts the microphone prompt: it answers "deny"."""
    flags = [f for f in setup.CHROMIUM_FLAGS if not f.startswith("--use-fake-ui")]
    browser = browser_type.launch(
        executable_path=str(setup.chromium()),
        args=[*flags, f"--use-file-for-fake-audio-capture={person.path}"],
    )
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def pulse(artifacts_dir: Path) -> Iterator[PulseAudio]:
    """A PulseAudio daemon of the tests' own: Firefox's microphone (what a test plays into
    it) and speakers. Killed, with its folder, when the session ends."""
    if platform.system() != "Linux":
        pytest.skip("the Firefox tests speak into a PulseAudio microphone: Linux only")
    audio = PulseAudio(log_path=artifacts_dir / "logs" / "pulseaudio.log").start()
    yield audio
    audio.close()


@pytest.fixture
def firefox(pulse: PulseAudio, artifacts_dir: Path, request: pytest.FixtureRequest) -> Iterator[webdriver.Firefox]:
    """A headless Firefox (Selenium, geckodriver) with a fresh profile, so a visitor of its
    own, on the `pulse` sound server. Its geckodriver log (with the page's console) goes to
    artifacts/e2e/logs/firefox/; a failed test leaves a screenshot in artifacts/e2e/failures/."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.name)
    driver = launch_firefox(pulse, artifacts_dir / "logs" / "firefox" / f"{name}.geckodriver.log")
    yield driver
    if request.node.stash.get(_FAILED, False):
        save_screenshot(driver, artifacts_dir / "failures" / f"{name}.png")
    driver.quit()


@pytest.fixture
def clients() -> Iterator[LoopThread]:
    """LiveKit clients from Python for one test; every one has left when it ends."""
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def api(stack: Stack) -> Api:
    """The shared stack's backend, as one visitor: the visitor of the `page` fixture's pages
    too (browser_context_args), so a test reads and stops what its page started."""
    visitor = Api(stack.backend_url)
    assert visitor.get("/healthz")[0] == 200 and visitor.visitor_cookie, "the API gave no visitor cookie"
    return visitor


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any], api: Api) -> dict[str, Any]:
    """The `page` fixture's pages start with the `api` visitor's cookie. Cookies are per host,
    not per port: the page served by the UI sends it to the API on the same host. Pages of
    browsers a test launches itself are visitors of their own (Api.for_page reads them)."""
    cookie = {
        "name": VISITOR_COOKIE, "value": api.visitor_cookie, "domain": "127.0.0.1", "path": "/",
        "expires": -1, "httpOnly": True, "secure": False, "sameSite": "Lax",
    }
    return {**browser_context_args, "storage_state": {"cookies": [cookie], "origins": []}}


@pytest.fixture(autouse=True)
def no_session_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whether the test passed or failed, no session it started on the shared stack stays
    live for the next test (a live session keeps its room busy and its agent running).
    Only a session's own visitor may stop it: this ends the sessions of every visitor the
    test acted as (its Api clients, pages that pressed Start, the `page` fixture's page).

    Autouse, so set up before the browser fixtures and torn down after them: the test's
    pages are closed by then. Tests that do not use the shared stack are left alone."""
    stack = request.getfixturevalue("stack") if "stack" in request.fixturenames else None
    first = len(Api.made)
    yield
    if stack is not None:
        shared = [request.getfixturevalue("api")] if "api" in request.fixturenames else []
        for visitor in [*shared, *Api.made[first:]]:
            if visitor.base_url.rstrip("/") == stack.backend_url.rstrip("/") and visitor.visitor_cookie:
                end_live_sessions(visitor)


@pytest.fixture(autouse=True)
def page_visitor_is_known(request: pytest.FixtureRequest) -> Iterator[None]:
    """The `page` fixture's visitor on the shared stack, taken before the page closes, for
    the teardown above."""
    if "page" not in request.fixturenames or "stack" not in request.fixturenames:
        yield
        return
    stack, page = request.getfixturevalue("stack"), request.getfixturevalue("page")
    yield
    if any(c["name"] == VISITOR_COOKIE for c in page.context.cookies(stack.backend_url)):
        Api.for_page(page, stack.backend_url)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def console_log_on_failure(request: pytest.FixtureRequest, artifacts_dir: Path) -> Iterator[None]:
    """Keep the page's console for tests that use `page`, and write it out if the test fails
    (pytest-playwright saves the failure screenshot: see --screenshot in devtools). A test
    whose page broke the Content-Security-Policy fails too."""
    if "page" not in request.fixturenames:
        yield
        return
    page = request.getfixturevalue("page")
    lines: list[str] = []
    page.on("console", lambda message: lines.append(f"[{message.type}] {message.text}"))
    page.on("pageerror", lambda error: lines.append(f"[pageerror] {error}"))
    yield
    if request.node.stash.get(_FAILED, False):
        failures = artifacts_dir / "failures"
        failures.mkdir(parents=True, exist_ok=True)
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.name)
        (failures / f"{name}.console.log").write_text("\n".join(lines) + "\n")
    # The pages' Content-Security-Policy (ui/security.py) blocked nothing they need: Chromium
    # reports every violation on the console ("... violates the following Content Security
    # Policy directive ...").
    violations = [line for line in lines if "Content Security Policy" in line]
    assert not violations, "\n".join(violations)
