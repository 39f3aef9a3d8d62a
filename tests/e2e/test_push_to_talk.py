"""Push-to-talk in the browser, with real speech: the /chat page in Chromium against the real
stack (the product's openai providers on the offline server: Silero VAD, Whisper, Piper).

A Chromium of its own, whose fake microphone says one sentence again and again (a short
loop, so the test waits less than with the shared browser's). Everything waits on what the
page observed: the microphone's level edges (page_audio's probe, on the page's audio clock)
say when a sentence begins and when it is over, the socket's messages what the agent made
of it (an answer counts from its first words: the agent's partial line).

1. Live, hands-free (the default); push-to-talk switched on: the agent acknowledges it.
2. A whole sentence begun after that, nothing held: no user line, interim or speech event.
3. Space held from the silence after it to the end of the next sentence, then let go: that
   sentence is the one user line since the unheld one began, and the agent answers it.
4. Switched off: a sentence is heard hands-free and answered, no key held.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserType, Page, expect

from devtools.stack import Stack
from tests.e2e import page_audio
from tests.e2e.conversations import launch_browser
from tests.e2e.speech import WORD_SHARE, Utterance, recording, share_heard
from tests.e2e.support import open_chat, press_start, press_stop, unique, wait_until

SENTENCE = Utterance("What is the weather like in Paris today?", voice="rms", pause_after=4.0)
# A sentence starts with sound after at least PAUSE of silence, and is over once the
# microphone has been quiet QUIET_AFTER (its pauses between words are shorter; the pause
# after it is SENTENCE.pause_after).
PAUSE = 1.5
QUIET_AFTER = 0.8
# One loop of the recording is ~10 s: waiting for the next sentence and its answer fits in this.
TURN_SECONDS = 35.0


def messages(page: Page) -> list[dict[str, Any]]:
    return page.evaluate("window.voiceAgent.messages")


def audio_clock(page: Page) -> float:
    return float(page.evaluate("window.__pageAudio.ctx.currentTime"))


def mic_edges(page: Page) -> list[dict[str, Any]]:
    return page.evaluate("window.__pageAudio.edges.filter((e) => e.src === 'mic')")


def sentence_start(page: Page, after: float) -> float | None:
    """When the first sentence begun after `after` (the page's audio clock) began."""
    edges = mic_edges(page)
    for i, edge in enumerate(edges):
        if edge["t"] > after and edge["loud"] and (i == 0 or edge["t"] - edges[i - 1]["t"] >= PAUSE):
            return float(edge["t"])
    return None


def sentence_end(page: Page, start: float) -> float | None:
    """When the sentence begun at `start` ended, once it is over."""
    edges = [e for e in mic_edges(page) if e["t"] >= start]
    if not edges or edges[-1]["loud"] or audio_clock(page) - edges[-1]["t"] < QUIET_AFTER:
        return None
    return float(edges[-1]["t"])


def wait_for(find: Callable[[], float | None], what: str) -> float:
    found: float | None = None

    def done() -> bool:
        nonlocal found
        found = find()
        return found is not None

    wait_until(done, TURN_SECONDS, what)
    assert found is not None
    return found


def user_speech(message: dict[str, Any]) -> bool:
    """A message saying the person was heard: a transcript (interim or final) or speech event."""
    return message.get("role") == "user" and ("text" in message or "event" in message)


def user_finals(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in found if m.get("role") == "user" and m.get("final") is True]


def agent_words(message: dict[str, Any]) -> bool:
    """The agent's words: a final line, or its words so far as its audio plays them."""
    return message.get("type") == "agent_partial" or (message.get("role") == "agent" and message.get("final") is True)


def answered(found: list[dict[str, Any]]) -> bool:
    """A user final holds the sentence, and the agent is saying (or has said) an answer to it
    after it: the reply policy repeats what it heard, so the answer carries the sentence's words."""
    line = next((m for m in user_finals(found) if share_heard(SENTENCE.text, m["text"]) >= WORD_SHARE), None)
    return line is not None and any(
        agent_words(m) and m["seq"] > line["seq"] and share_heard(SENTENCE.text, m["text"]) >= WORD_SHARE
        for m in found
    )


def switch_to(page: Page, on: bool) -> int:
    """Flip the switch and wait for the agent's acknowledgement; the number of socket
    messages by then."""
    toggle = page.get_by_role("switch", name="Push to talk")
    toggle.check() if on else toggle.uncheck()
    page.wait_for_function(f"() => window.voiceAgent.pushToTalk.enabled === {str(on).lower()}"
                           " && !window.voiceAgent.pushToTalk.switching", timeout=15_000)
    return len(messages(page))


def test_push_to_talk_hears_only_while_held_and_hands_free_comes_back(
    browser_type: BrowserType, browser_type_launch_args: dict[str, Any], stack: Stack, artifacts_dir: Path
) -> None:
    mic = recording([SENTENCE], lead=3.0, name="push-to-talk")  # loops: the sentence every ~10 s
    browser = launch_browser(browser_type, str(mic.path), **browser_type_launch_args)
    try:
        page = browser.new_page()
        page_audio.install(page)
        open_chat(page, stack, room=unique("ptt"), identity=unique("holder"))
        toggle = page.get_by_role("switch", name="Push to talk")
        expect(toggle).not_to_be_checked()  # hands-free by default
        began, timeline = time.monotonic(), []

        def mark(what: str) -> None:
            timeline.append(f"{what} {time.monotonic() - began:.1f}")

        press_start(page)
        mark("live")

        # 1. On, during the conversation; the focus goes to the button, so Space talks.
        switch_to(page, True)
        on_clock = audio_clock(page)
        mark("on")
        hold = page.get_by_role("button", name="Hold to talk")
        expect(hold).to_be_focused()
        expect(hold).to_have_attribute("aria-pressed", "false")
        expect(page.locator("#status")).to_contain_text("hold Space")

        # 2. A whole sentence, nothing held.
        unheld_start = wait_for(lambda: sentence_start(page, after=on_clock), "a sentence to begin")
        unheld_at = len(messages(page))
        unheld_end = wait_for(lambda: sentence_end(page, unheld_start), "the sentence to end")
        pressed_at = len(messages(page))
        mark("unheld said")

        # 3. Space from the silence after it to the end of the next one.
        page.keyboard.down("Space")
        expect(page.get_by_role("button", name="Talking…")).to_have_attribute("aria-pressed", "true")
        page.screenshot(path=artifacts_dir / "push-to-talk-talking.png", full_page=True)
        held_start = wait_for(lambda: sentence_start(page, after=unheld_end), "the next sentence to begin")
        wait_for(lambda: sentence_end(page, held_start), "the held sentence to end")
        page.keyboard.up("Space")
        mark("released")
        expect(hold).to_have_attribute("aria-pressed", "false")
        wait_until(lambda: answered(messages(page)[pressed_at:]), TURN_SECONDS, "the held sentence's answer")
        held_turn = messages(page)[unheld_at:]
        mark("answered")
        page.screenshot(path=artifacts_dir / "push-to-talk-answered.png", full_page=True)

        # 4. Off: the next sentence is heard without a key, and answered.
        off_at = switch_to(page, False)
        expect(page.get_by_role("button", name="Hold to talk")).to_be_hidden()
        expect(page.locator("#status")).to_have_text("Live: speak any time.")
        wait_until(lambda: answered(messages(page)[off_at:]), TURN_SECONDS, "a hands-free answer")
        hands_free = messages(page)[off_at:]
        mark("hands-free answered")
        print(f"\npush-to-talk timeline (s): {', '.join(timeline)}")
        press_stop(page)
    finally:
        browser.close()

    # Nothing held, nothing heard: from the start of the unheld sentence to the press, no sign
    # of the person.
    unheld = [m for m in held_turn[: pressed_at - unheld_at] if user_speech(m)]
    assert unheld == [], unheld
    # The held sentence is the one line since the unheld one began (that one, had it been
    # heard, would have come first), and it was answered.
    lines = [m["text"] for m in user_finals(held_turn)]
    assert len(lines) == 1 and share_heard(SENTENCE.text, lines[0]) >= WORD_SHARE, lines
    assert answered(held_turn)
    assert answered(hands_free)
