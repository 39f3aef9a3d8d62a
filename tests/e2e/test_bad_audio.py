"""Microphones that send no words: silence, loud noise, or an unintelligible sentence (real
speech played backwards). Nothing crashes, no empty line appears anywhere, and the page
stays usable: Stop works, and Start works again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from playwright.sync_api import BrowserType, expect

from devtools.speech import synthesize
from devtools.stack import Stack
from offline_openai.replies import GREETING
from tests.e2e import page_audio
from tests.e2e.conversations import launch_browser
from tests.e2e.speech import MIC_RATE, sound_file
from tests.e2e.support import Api, final_lines, open_chat, press_start, press_stop, unique, wait_until

SECONDS = 6  # the sound plays once, after a pause for the greeting (long enough for several VAD turns)
LEAD = 5  # the greeting's audio ends ~4.4 s after the microphone starts (tests/e2e/test_talking_over.py)
TAIL = 2  # then silence: the last turn the sound may have started ends (0.7 s) and is answered


def sound(name: str) -> np.ndarray:
    lead = np.zeros(LEAD * MIC_RATE, np.int16)
    if name == "silence":
        body = np.zeros(SECONDS * MIC_RATE, np.int16)
    elif name == "noise":
        body = np.random.default_rng(7).normal(0, 6000, SECONDS * MIC_RATE).astype(np.int16)
    else:  # gibberish: a real sentence, backwards
        body = synthesize("What is the weather like in Paris today?", rate=MIC_RATE)[::-1].copy()
    return np.concatenate([lead, body, np.zeros(TAIL * MIC_RATE, np.int16)])


@pytest.mark.parametrize("name", ["silence", "noise", "gibberish"])
def test_a_microphone_without_words_breaks_nothing(
    name: str, browser_type: BrowserType, browser_type_launch_args: dict[str, Any], stack: Stack, api: Api
) -> None:
    path = sound_file(f"bad-audio-{name}", sound(name))
    browser = launch_browser(browser_type, f"{path}%noloop", **browser_type_launch_args)
    try:
        page = browser.new_page()
        page_audio.install(page)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        open_chat(page, stack, room=unique(name), identity=unique(name))
        session_id = press_start(page)
        expect(page.locator("#transcript .line.agent .text").first).to_have_text(GREETING, timeout=30_000)
        # The whole file has played (and the session had time to answer anything it heard).
        played = len(sound(name)) / MIC_RATE
        wait_until(lambda: page_audio.mic_seconds(page) > played, played + 30, "the microphone's file to end")
        expect(page.locator("#status")).to_have_attribute("data-state", "live")
        messages = page.evaluate("window.voiceAgent.messages")
        lines = [m for m in messages if "role" in m and "text" in m]  # transcripts, not agent_partial
        print(f"\n{name}: {[(m['role'], m['text'], m['final']) for m in lines]}")
        assert all(m["text"].strip() for m in lines), lines  # never an empty line, interim or final
        assert all(text.strip() for text in final_lines(page, "user") + final_lines(page, "agent"))
        owner = Api.for_page(page)  # this browser is a visitor of its own
        stored = owner.get(f"/transcripts/{session_id}")[1]["entries"]
        assert stored and all(entry["text"].strip() for entry in stored)
        if name == "silence":  # nothing was said: no line from the person at all
            assert not [m for m in lines if m["role"] == "user"]
        # What was briefly taken for words (an interim line) does not linger once it was not.
        if not final_lines(page, "user"):
            expect(page.locator("#interim")).to_have_attribute("data-active", "false", timeout=10_000)
        press_stop(page)
        assert owner.session(session_id)["status"] == "ended"
        again = press_start(page)  # still usable
        assert again != session_id
        press_stop(page)
        assert errors == []
    finally:
        browser.close()
