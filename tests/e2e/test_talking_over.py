"""Talking over the agent, in the browser: whenever the person speaks (over the greeting, as
it ends, over a reply), the whole sentence becomes a user line during the session and the
agent answers it.

One Chromium per timing, its fake microphone playing the recording once from when the page
goes live (``lead`` seconds of silence, then the sentence). Checks are on content: the user
line holds the sentence's words (WORD_SHARE of its content words), it is on the page before
Stop, and a new agent line after it answers it (the reply policy repeats what it heard, so
the answer carries the sentence's words; the greeting and a reply cut by the sentence do
not). Each run prints what the page showed and where the sentence fell against the agent's
audio, as the page heard them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserType, Page

from devtools.stack import Stack
from tests.e2e import page_audio
from tests.e2e.conversations import launch_browser
from tests.e2e.speech import WORD_SHARE, Utterance, recording, share_heard
from tests.e2e.support import Api, open_chat, press_start, press_stop, unique, wait_until

WEATHER = Utterance("What is the weather like in Paris today?", pause_after=20.0)
COLOR = Utterance("My favorite color is green.", pause_after=2.4)
DRAGON = Utterance("Tell me a story about a dragon.", pause_after=20.0)
# Seconds from when the page goes live (the microphone starts) to the end of the greeting's
# audio (measured here with Piper: it starts ~0.6 s after, and lasts ~3.8 s).
GREETING_ENDS = 4.4


@dataclass(frozen=True)
class Timing:
    """When the person speaks: `lead` seconds after the page goes live, these sentences (the
    last one is the one said over the agent)."""

    lead: float
    utterances: tuple[Utterance, ...]

    @property
    def sentence(self) -> str:
        return self.utterances[-1].text


# The unit suite plays more timings over the greeting into a real AgentSession
# (tests/unit/test_talking_over.py); the browser adds one over the greeting, one as it ends.
TIMINGS = {
    "over-the-greeting-1.5s": Timing(1.5, (WEATHER,)),
    # Its first 0.4 s over the greeting's last word: the agent is stopped as it ends.
    "as-the-greeting-ends": Timing(GREETING_ENDS - 0.4, (WEATHER,)),
    # A first sentence after the greeting, then one ~1 s into the agent's answer to it.
    "over-a-reply": Timing(GREETING_ENDS + 2.0, (COLOR, DRAGON)),
}


def socket_messages(page: Page) -> list[dict[str, Any]]:
    return page.evaluate("window.voiceAgent.messages")


def finals(messages: list[dict[str, Any]]) -> list[tuple[str, str, bool]]:
    return [(m["role"], m["text"], bool(m.get("interrupted"))) for m in messages if m.get("final") is True]


def user_line(messages: list[dict[str, Any]], sentence: str) -> dict[str, Any] | None:
    """The user final that holds the sentence's words."""
    return next(
        (m for m in messages
         if m.get("role") == "user" and m.get("final") is True and share_heard(sentence, m["text"]) >= WORD_SHARE),
        None,
    )


def answer(messages: list[dict[str, Any]], sentence: str) -> dict[str, Any] | None:
    """The agent final after the sentence's user line that answers it (it repeats its words)."""
    line = user_line(messages, sentence)
    if line is None:
        return None
    return next(
        (m for m in messages
         if m.get("role") == "agent" and m.get("final") is True and m["seq"] > line["seq"]
         and share_heard(sentence, m["text"]) >= WORD_SHARE),
        None,
    )


def where_it_fell(page: Page) -> str:
    """The sentences and the agent's audio as the page heard them, from the first sound."""
    heard = page_audio.heard(page)
    sounds = [(start, "person", end) for start, end in heard.mic_spans]
    sounds += [(start, "agent", end) for start, end in heard.agent_spans]
    origin = min((start for start, _, _ in sounds), default=0.0)
    return ", ".join(f"{who} {start - origin:.1f}-{end - origin:.1f} s" for start, who, end in sorted(sounds))


@pytest.mark.parametrize("timing", TIMINGS.values(), ids=TIMINGS.keys())
def test_a_sentence_said_over_the_agent_is_a_whole_line_and_answered(
    browser_type: BrowserType, browser_type_launch_args: dict[str, Any], stack: Stack, artifacts_dir: Path,
    request: pytest.FixtureRequest, timing: Timing,
) -> None:
    name = request.node.callspec.id
    mic = recording(list(timing.utterances), lead=timing.lead, name=f"talking-over-{name}")
    browser = launch_browser(browser_type, mic.noloop, **browser_type_launch_args)
    try:
        page = browser.new_page()
        page_audio.install(page)
        open_chat(page, stack, room=unique("talking-over"), identity=unique("talker"))
        session_id = press_start(page)
        # During the session: the line, then its answer (what is missing shows below).
        with contextlib.suppress(AssertionError):
            wait_until(lambda: answer(socket_messages(page), timing.sentence), mic.spans[-1][1] + 20, "the answer")
        messages = socket_messages(page)
        print(f"\n{name}: said {timing.sentence!r} at {mic.spans[-1][0]:.1f} s of the microphone; "
              f"the page showed {finals(messages)}; heard: {where_it_fell(page)}")
        page.screenshot(path=artifacts_dir / f"talking-over-{name}.png", full_page=True)
        line, reply = user_line(messages, timing.sentence), answer(messages, timing.sentence)
        press_stop(page)
        stored = Api.for_page(page, stack.backend_url).get(f"/transcripts/{session_id}")[1]["entries"]
    finally:
        browser.close()
    assert line is not None, f"no user line holds {timing.sentence!r} during the session: {finals(messages)}"
    assert reply is not None, f"no agent line answers {line['text']!r}: {finals(messages)}"
    assert line["text"] in [e["text"] for e in stored if e["role"] == "user"]
