"""What a visitor can do and see, end to end, against the real stack: livekit-server
--dev, Django/Channels with the in-process agent (the product's openai providers through
livekit-plugins-openai, pointed at the offline OpenAI-compatible server: Silero VAD, realtime
Whisper tiny.en, rule-based replies, Piper), the Flask UI, and Debian Chromium whose fake
microphone says a known sentence. Start shows each step (token, room, session, transcript
socket); the person's words appear (interim, then final) on the page, on the socket and in
the database; the agent greets and answers in words that the page really hears; Stop (or
leaving) releases everything; three people in three browsers talk at once and each page,
socket, database and speaker holds only its own words; the history shows what was streamed.

Word checks: at least WORD_SHARE of a sentence's content words must arrive. The local
recogniser hears 0.92-0.98 of these voices' words through Opus, so one miss in a short
sentence must not fail a test; another sentence's words (cross-talk) share next to none.

Bounds asserted here (and printed, with the measured time):
- tab closed → session ended within TAB_CLOSE_BOUND (pagehide sends DELETE; the person
  leaving the room ends it too);
- network cut → ended within NETWORK_CUT_BOUND: LiveKit drops a silent participant after
  its 15 s ping timeout, then the agent ends the session (reason participant_left).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserType, Page, expect

from devtools.stack import Stack
from offline_openai.replies import GREETING, reply_to
from tests.e2e import page_audio
from tests.e2e.conversations import launch_browser
from tests.e2e.crosstalk import SessionView, cross_talk
from tests.e2e.speech import WORD_SHARE, Recording, Utterance, recognize, recording, share_heard
from tests.e2e.support import (
    Api,
    browser_pids,
    final_lines,
    log_marks,
    logs_since,
    open_chat,
    press_start,
    press_stop,
    unique,
    wait_until,
    wait_until_ended,
)

SILENT_RMS = 0.005
TAB_CLOSE_BOUND = 5.0
NETWORK_CUT_BOUND = 35.0


def test_start_flow_each_step_is_observable(
    page: Page, stack: Stack, api: Api, person: Recording, artifacts_dir: Path
) -> None:
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
    page_audio.install(page)
    open_chat(page, stack, room=unique("start"), identity=unique("person"))
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

    # The agent greets.
    expect(page.locator("#transcript .line.agent .text").first).to_have_text(GREETING, timeout=30_000)
    # The person's words: interim lines while they speak, then the final one.
    expect(page.locator("#transcript .line.user .text").first).to_be_visible(timeout=45_000)
    said = page.locator("#transcript .line.user .text").first.inner_text()
    print(f"\nthe microphone said {person.text!r}; the page shows {said!r}")
    assert share_heard(person.text, said) >= WORD_SHARE
    messages = page.evaluate("window.voiceAgent.messages")
    user = [m for m in messages if m.get("role") == "user" and "text" in m]
    first_final = next(i for i, m in enumerate(user) if m["final"])
    assert user[first_final]["text"] == said  # the socket carried the line the page shows
    interims = [m["text"] for m in user[:first_final]]
    assert len(interims) >= 2 and all(text.strip() for text in interims), interims
    # The answer follows from what was heard, and the page hears the agent say it.
    reply = reply_to(said)
    expect(page.locator("#transcript .line.agent .text").nth(1)).to_have_text(reply, timeout=30_000)
    expect(page.locator("#agent-indicator")).to_have_attribute("data-speaking", "false", timeout=30_000)
    page.wait_for_function(f"() => window.voiceAgent.agentRms < {SILENT_RMS}", timeout=10_000)
    heard = page_audio.heard(page)
    agent_said = recognize(heard.agent, heard.rate)
    print(f"the agent said {GREETING!r} and {reply!r}; the page heard {agent_said!r}")
    assert share_heard(f"{GREETING} {reply}", agent_said) >= WORD_SHARE
    # The database holds the same final lines, in the same order.
    stored = [(e["role"], e["text"]) for e in api.get(f"/transcripts/{session_id}")[1]["entries"]]
    assert stored[:3] == [("agent", GREETING), ("user", said), ("agent", reply)]

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
    expect(page.locator("#transcript .line.agent .text").first).to_have_text(GREETING, timeout=30_000)
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
    browser_type: BrowserType, browser_type_launch_args: dict[str, Any], person: Recording
) -> Iterator[tuple[Browser, str]]:
    """A browser of its own, with a uniquely named fake-mic file to find its processes by."""
    marker = person.path.with_name(f"netcut-{uuid.uuid4().hex}.wav")
    shutil.copy(person.path, marker)
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
    owner = Api.for_page(page)  # read from the browser while it still answers
    # Freeze every process of that browser: no packet, no FIN, no goodbye — a cut cable.
    for pid in browser_pids(marker):
        os.kill(pid, signal.SIGSTOP)
    session, seconds = wait_until_ended(owner, session_id, timeout=NETWORK_CUT_BOUND)
    print(f"\nnetwork cut → session ended in {seconds:.1f} s (reason {session['end_reason']})")
    assert session["end_reason"] == "participant_left"


# Three people, three browsers (the fake microphone is a browser flag), three voices.
PEOPLE = {
    "ana": Utterance("My favorite color is green.", voice="rms", stretch=0.9, pause_after=14.0),
    "ben": Utterance("I would like to order a large pizza.", voice="kal16", pause_after=14.0),
    "cleo": Utterance("Can you recommend a good book to read?", voice="awb", stretch=1.1, pause_after=14.0),
}


def test_three_people_at_once_each_hear_and_are_heard_without_cross_talk(
    browser_type: BrowserType, browser_type_launch_args: dict[str, Any], stack: Stack, api: Api, artifacts_dir: Path
) -> None:
    browsers: dict[str, Browser] = {}
    marks = log_marks(stack)
    try:
        pages, ids, mics = {}, {}, {}
        for name, utterance in PEOPLE.items():
            mics[name] = recording([utterance], lead=7.0, name=f"isolation-{name}")
            browsers[name] = launch_browser(browser_type, mics[name].noloop, **browser_type_launch_args)
            pages[name] = browsers[name].new_page()
            page_audio.install(pages[name])
            open_chat(pages[name], stack, room=unique(name), identity=unique(name))
        for name, page in pages.items():  # started one after another, they then talk at once
            ids[name] = press_start(page)
        views = []
        for name, page in pages.items():
            # The greeting and the answer, then quiet; what is missing shows in the report below.
            with contextlib.suppress(AssertionError):
                wait_until(lambda p=page: len(final_lines(p, "agent")) >= 2, 60, f"{name}'s answer")
                wait_until(lambda p=page: p.evaluate("window.voiceAgent.agentRms") < SILENT_RMS, 15, "quiet")
            heard = page_audio.heard(page)
            said_end = heard.mic_spans[0][1] if heard.mic_spans else 0.0
            answer = [span for span in heard.agent_spans if span[0] > said_end]
            messages = page.evaluate("window.voiceAgent.messages")
            stored = Api.for_page(page).get(f"/transcripts/{ids[name]}")[1]["entries"]
            views.append(
                SessionView(
                    name,
                    PEOPLE[name].text,
                    page_user=final_lines(page, "user"),
                    socket_user=[m["text"] for m in messages if m.get("role") == "user" and m.get("final")],
                    stored_user=[e["text"] for e in stored if e["role"] == "user"],
                    agent_lines=final_lines(page, "agent")[1:],
                    agent_heard=recognize(heard.agent_audio(answer[0][0], answer[-1][1]), heard.rate) if answer else "",
                )
            )
            page.screenshot(path=artifacts_dir / f"acceptance-isolation-{name}.png")
        for view in views:
            print(f"\n{view.name} said {view.said!r}: page {view.page_user}, agent {view.agent_lines}, "
                  f"heard the agent say {view.agent_heard!r}")
        problems = cross_talk(views)
        if problems:  # the agent's side of it (the offline server's request times show a backlog)
            print(logs_since(stack, marks, ("backend", "offline-openai")))
        assert problems == []
        assert all(len(view.page_user) == 1 and len(view.agent_lines) == 1 for view in views)
        for name, page in pages.items():
            press_stop(page)
            assert Api.for_page(page).session(ids[name])["status"] == "ended"
    finally:
        for browser in browsers.values():
            browser.close()


def test_history_shows_the_finals_that_were_streamed(page: Page, stack: Stack) -> None:
    identity = unique("historian")
    open_chat(page, stack, identity=identity)
    session_id = press_start(page)
    expect(page.locator("#transcript .line.agent .text").nth(1)).to_have_text(re.compile("^You said: "), timeout=60_000)
    press_stop(page)
    streamed = page.evaluate(
        "window.voiceAgent.messages.filter(m => m.final === true).map(m => [m.role, m.text])"
    )

    page.goto(f"{stack.ui_url}/history")
    page.locator("#sessions tbody tr").filter(has_text=identity).get_by_role("link").click()
    expect(page.locator("#detail-status")).to_have_attribute("data-state", "ready")
    lines = page.locator("#detail-transcript .line")
    expect(lines).to_have_count(len(streamed))
    shown = [
        [line.get_attribute("class").split()[-1], line.locator(".text").inner_text()]  # type: ignore[union-attr]
        for line in lines.all()
    ]
    assert shown == streamed
    assert page.url.endswith(f"/history/{session_id}")
