"""What a visitor can do and see, end to end, against the real stack: livekit-server
--dev, Django/Channels with the in-process agent (Silero VAD, fake STT/LLM/TTS), the Flask
UI, and Debian Chromium with a fake microphone. Start shows each step (token, room,
session, transcript socket), the agent greets and answers audibly, transcripts stream
interim then final, Stop (or leaving) releases everything, several people talk at once
without cross-talk, and the history shows what was streamed.

Bounds asserted here (and printed, with the measured time):
- tab closed → session ended within TAB_CLOSE_BOUND (pagehide sends DELETE; the person
  leaving the room ends it too);
- network cut → ended within NETWORK_CUT_BOUND: LiveKit drops a silent participant after
  its 15 s ping timeout, then the agent ends the session (reason participant_left).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, BrowserType, Page, expect

from devtools.stack import Stack
from fakes.llm import DEFAULT_GREETING
from tests.e2e.support import (
    ROOM_SCRIPTS,
    Api,
    browser_pids,
    final_lines,
    open_chat,
    press_start,
    press_stop,
    wait_until_ended,
)

AUDIBLE_RMS = 0.02  # the fake TTS plays at ~0.2 RMS
SILENT_RMS = 0.005
TAB_CLOSE_BOUND = 5.0
NETWORK_CUT_BOUND = 35.0


def test_start_flow_each_step_is_observable(page: Page, stack: Stack, api: Api, artifacts_dir: Path) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url.split('?')[0]}"))
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    # Record the speaking indicators as they toggle, in the page itself.
    page.add_init_script(
        """
        window.__indicatorLog = [];
        new MutationObserver((records) => {
          for (const r of records) {
            if (r.attributeName === "data-speaking")
              window.__indicatorLog.push(r.target.id + ":" + r.target.dataset.speaking);
          }
        }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-speaking"] });
        """
    )
    open_chat(page, stack, room="alpha-room", identity="alpha-user")
    session_id = press_start(page)

    # GET /token → LiveKit → POST /session → WS, in that order.
    api_calls = (f"GET {stack.backend_url}/token", f"POST {stack.backend_url}/session")
    calls = [c for c in requests if c.startswith(api_calls)]
    assert calls == [f"GET {stack.backend_url}/token", f"POST {stack.backend_url}/session"]
    livekit_ws = [u for u in sockets if u.startswith(stack.livekit_url)]
    transcript_ws = [u for u in sockets if f"/ws/transcript/{session_id}" in u]
    assert livekit_ws and transcript_ws
    assert sockets.index(livekit_ws[0]) < sockets.index(transcript_ws[0])
    assert page.evaluate("window.voiceAgent.roomState") == "connected"
    assert api.get(f"/session/{session_id}")[1]["status"] == "running"

    # The agent greets, and is audible while it speaks.
    expect(page.locator("#transcript .line.agent .text").first).to_have_text(DEFAULT_GREETING, timeout=30_000)
    page.wait_for_function(f"window.voiceAgent.agentPeakRms > {AUDIBLE_RMS}", timeout=30_000)
    # Interim then final user transcripts, then the agent's answer.
    script = ROOM_SCRIPTS["alpha-room"][0]
    expect(page.locator("#transcript .line.user .text").first).to_have_text(script, timeout=45_000)
    interims = page.evaluate("window.voiceAgent.messages.filter(m => m.final === false).map(m => m.text)")
    assert interims and all(script.startswith(text) for text in interims)
    expect(page.locator("#transcript .line.agent .text").nth(1)).to_have_text(f"You said: {script}", timeout=30_000)
    # Silent once the agent has finished speaking.
    expect(page.locator("#agent-indicator")).to_have_attribute("data-speaking", "false", timeout=30_000)
    page.wait_for_function(f"window.voiceAgent.agentRms < {SILENT_RMS}", timeout=10_000)

    # Indicators toggled on and off, for both sides, in order.
    log = page.evaluate("window.__indicatorLog")
    for side in ("user-indicator", "agent-indicator"):
        toggles = [entry for entry in log if entry.startswith(side + ":")]
        assert f"{side}:true" in toggles and f"{side}:false" in toggles[toggles.index(f"{side}:true"):]
    events = page.evaluate("window.voiceAgent.messages.filter(m => m.event).map(m => m.role + ':' + m.event)")
    assert events.index("user:speech_started") < events.index("user:speech_ended")
    page.screenshot(path=artifacts_dir / "acceptance-start-flow.png", full_page=True)
    press_stop(page)


def test_stop_resets_everything_and_start_works_again(page: Page, stack: Stack, api: Api) -> None:
    open_chat(page, stack)
    first = press_start(page)
    expect(page.locator("#transcript .line.agent").first).to_be_visible(timeout=30_000)

    press_stop(page)
    session = api.get(f"/session/{first}")[1]
    assert (session["status"], session["end_reason"]) == ("ended", "deleted")
    assert page.evaluate("[window.voiceAgent.wsState, window.voiceAgent.roomState]") == ["closed", "disconnected"]
    expect(page.locator("#user-indicator")).to_have_attribute("data-speaking", "false")
    expect(page.locator("#agent-indicator")).to_have_attribute("data-speaking", "false")
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()

    second = press_start(page)
    assert second != first
    expect(page.locator("#transcript .line.agent .text").first).to_have_text(DEFAULT_GREETING, timeout=30_000)
    press_stop(page)
    assert api.get(f"/session/{second}")[1]["status"] == "ended"


def test_closing_the_tab_ends_the_session(page: Page, stack: Stack, api: Api) -> None:
    open_chat(page, stack)
    session_id = press_start(page)
    page.close()
    session, seconds = wait_until_ended(api, session_id, timeout=TAB_CLOSE_BOUND)
    print(f"\ntab closed → session ended in {seconds:.2f} s (reason {session['end_reason']})")
    assert session["end_reason"] in ("deleted", "participant_left")


@pytest.fixture
def freezable_browser(
    browser_type: BrowserType, browser_type_launch_args: dict[str, Any], speech_wav: Path
) -> Iterator[tuple[Browser, str]]:
    """A browser of its own, with a uniquely named fake-mic file to find its processes by."""
    marker = speech_wav.with_name(f"netcut-{uuid.uuid4().hex}.wav")
    shutil.copy(speech_wav, marker)
    args = [a for a in browser_type_launch_args["args"] if not a.startswith("--use-file-for-fake-audio-capture")]
    args.append(f"--use-file-for-fake-audio-capture={marker}")
    try:
        browser = browser_type.launch(**{**browser_type_launch_args, "args": args})
        try:
            yield browser, str(marker)
        finally:
            # Thaw it (a stopped browser cannot close), whatever the test got to.
            with contextlib.suppress(AssertionError):
                for pid in browser_pids(str(marker)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGCONT)
            browser.close()
    finally:
        marker.unlink(missing_ok=True)


def test_cutting_the_network_ends_the_session_within_a_bound(
    freezable_browser: tuple[Browser, str], stack: Stack, api: Api
) -> None:
    browser, marker = freezable_browser
    page = browser.new_page()
    open_chat(page, stack)
    session_id = press_start(page)
    expect(page.locator("#transcript .line.agent").first).to_be_visible(timeout=30_000)
    # Freeze every process of that browser: no packet, no FIN, no goodbye — a cut cable.
    for pid in browser_pids(marker):
        os.kill(pid, signal.SIGSTOP)
    session, seconds = wait_until_ended(api, session_id, timeout=NETWORK_CUT_BOUND)
    print(f"\nnetwork cut → session ended in {seconds:.1f} s (reason {session['end_reason']})")
    assert session["end_reason"] == "participant_left"


def test_two_people_talk_at_once_without_cross_talk(
    new_context: Callable[..., BrowserContext], stack: Stack, api: Api, artifacts_dir: Path
) -> None:
    rooms = ["alpha-room", "bravo-room"]
    # One browser context per person; pytest-playwright closes them all, pass or fail.
    pages = {room: new_context().new_page() for room in rooms}
    ids = {}
    for room, page in pages.items():
        open_chat(page, stack, room=room, identity=f"{room}-user")
        ids[room] = press_start(page)
    for room, page in pages.items():
        said = ROOM_SCRIPTS[room][0]
        expect(page.locator("#transcript .line.user .text").first).to_have_text(said, timeout=45_000)
        expect(page.locator("#transcript .line.agent .text").nth(1)).to_have_text(f"You said: {said}", timeout=30_000)
        page.wait_for_function(f"window.voiceAgent.agentPeakRms > {AUDIBLE_RMS}", timeout=30_000)
    for room, page in pages.items():
        others = [ROOM_SCRIPTS[r][0] for r in ROOM_SCRIPTS if r != room]
        shown = " ".join(final_lines(page, "user") + final_lines(page, "agent"))
        assert not any(other in shown for other in others), (room, shown)
        page.screenshot(path=artifacts_dir / f"acceptance-multi-{room}.png")
        stored = api.get(f"/transcripts/{ids[room]}")[1]["entries"]
        assert not any(other in entry["text"] for entry in stored for other in others)
    for room, page in pages.items():
        press_stop(page)
        assert api.session(ids[room])["status"] == "ended"


def test_four_sessions_at_once_stay_isolated(
    new_context: Callable[..., BrowserContext], stack: Stack, api: Api
) -> None:
    """Stress variant: every scripted room talking at the same time."""
    pages = {room: new_context().new_page() for room in ROOM_SCRIPTS}
    ids = {}
    for room, page in pages.items():
        open_chat(page, stack, room=room, identity=f"{room}-stress")
        ids[room] = press_start(page)
    for room, page in pages.items():
        said = ROOM_SCRIPTS[room][0]
        reply = page.locator("#transcript .line.agent .text").filter(has_text=f"You said: {said}")
        expect(reply).to_have_count(1, timeout=60_000)
        shown = " ".join(final_lines(page, "user") + final_lines(page, "agent"))
        assert not any(ROOM_SCRIPTS[other][0] in shown for other in ROOM_SCRIPTS if other != room)
    for room, page in pages.items():
        press_stop(page)
        assert api.session(ids[room])["status"] == "ended"


def test_history_shows_the_finals_that_were_streamed(page: Page, stack: Stack) -> None:
    open_chat(page, stack, room="charlie-room", identity="charlie-history")
    session_id = press_start(page)
    said = ROOM_SCRIPTS["charlie-room"][0]
    expect(page.locator("#transcript .line.agent .text").nth(1)).to_have_text(f"You said: {said}", timeout=60_000)
    press_stop(page)
    streamed = page.evaluate(
        "window.voiceAgent.messages.filter(m => m.final === true).map(m => [m.role, m.text])"
    )

    page.goto(f"{stack.ui_url}/history")
    page.locator("#sessions tbody tr").filter(has_text="charlie-history").get_by_role("link").click()
    expect(page.locator("#detail-status")).to_have_attribute("data-state", "ready")
    lines = page.locator("#detail-transcript .line")
    expect(lines).to_have_count(len(streamed))
    shown = [
        [line.get_attribute("class").split()[-1], line.locator(".text").inner_text()]  # type: ignore[union-attr]
        for line in lines.all()
    ]
    assert shown == streamed
    assert page.url.endswith(f"/history/{session_id}")
