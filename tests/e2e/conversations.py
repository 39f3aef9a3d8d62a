"""Scripted conversations: declared as data, run in real Chromium against the real stack with
the product's openai providers on the offline OpenAI-compatible server, and reported turn by turn.

Each conversation is a fake-microphone recording (what the person says, with pauses for
the agent to answer) and, per turn, the words expected in the person's final line and in
the agent's answer, and a latency budget (end of the person's speech → first agent audio,
as the page hears it). A turn may instead barge in: the person speaks over the agent's
previous answer, which must stop and be marked as interrupted.

    ./dev.sh converse                 # every conversation, with a per-turn report
    ./dev.sh converse three-turns     # one of them

The e2e suite runs the same conversations (tests/e2e/test_conversations.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserType, Page

from devtools import setup
from devtools.speech import write_wav
from devtools.stack import ROOT, Stack
from tests.e2e import page_audio
from tests.e2e.speech import (
    WORD_SHARE,
    Recording,
    Utterance,
    content_words,
    human,
    recognize,
    recording,
    share_heard,
    words,
)
from tests.e2e.support import Api, open_chat, press_start, press_stop, separate_stack, unique, wait_until

ARTIFACTS = ROOT / "artifacts" / "e2e"
# Barge-in: the agent's audio in the page must stop within this many seconds of the person
# starting to speak over it (VAD needs ~0.5 s of speech to call it an interruption).
BARGE_IN_STOP_BOUND = 2.0


@dataclass(frozen=True)
class Turn:
    say: Utterance
    user_words: frozenset[str]  # must be in the person's final line
    agent_words: frozenset[str]  # must be in the agent's answer, as text and as heard audio
    budget: float = 2.5  # seconds from the end of the person's speech to the agent's first audio
    barge_in: bool = False  # spoken over the previous answer, which must stop (interrupted)


@dataclass(frozen=True)
class Conversation:
    name: str
    turns: tuple[Turn, ...]
    lead: float = 7.0  # silence before the first turn: the agent's greeting plays meanwhile

    def recording(self) -> Recording:
        return recording([turn.say for turn in self.turns], lead=self.lead, name=self.name)


def _turn(text: str, user: str, agent: str, **kw: Any) -> Turn:
    say_options = {k: kw.pop(k) for k in ("voice", "stretch", "pause_after") if k in kw}
    return Turn(Utterance(text, **say_options), frozenset(user.split()), frozenset(agent.split()), **kw)


def _human_turn(name: str, user: str, agent: str, *, pause_after: float, **kw: Any) -> Turn:
    """A turn spoken by a real person (a recording of tests/data/human)."""
    return Turn(human(name, pause_after=pause_after), frozenset(user.split()), frozenset(agent.split()), **kw)


CONVERSATIONS = {
    c.name: c
    for c in [
        Conversation(
            "three-turns",
            (
                # Pauses leave room for the answer (up to ~7 s of speech) before the next turn.
                _turn("What is the weather like in Paris today?", "weather paris today", "weather offline nice",
                      pause_after=10.0),
                _turn("My favorite color is green.", "favorite color green", "green lovely color",
                      voice="rms", stretch=0.8, pause_after=8.0),
                _turn("Thank you very much, goodbye.", "very much goodbye", "goodbye talking",
                      voice="awb", stretch=1.1, pause_after=7.0),
            ),
        ),
        Conversation(
            # Real people, not synthetic voices: a read sentence, then a digit string.
            "real-people",
            (
                _human_turn("librivox_0930.wav", "might even made amiable himself", "amiable himself",
                            pause_after=9.0),
                _human_turn("cards_005.wav", "eight spades four seven hearts", "spades hearts", pause_after=9.0),
            ),
        ),
        Conversation(
            "barge-in",
            (
                # The answer to this one is long; the next sentence starts in the middle of it, so
                # the agent's line holds only its beginning (what was said before it stopped).
                _turn("Tell me a story about a dragon.", "story dragon", "said story", voice="rms", pause_after=2.6),
                _turn("Please turn on the kitchen lights.", "please turn kitchen lights", "kitchen lights",
                      voice="rms", stretch=0.8, barge_in=True, pause_after=7.0),
            ),
        ),
    ]
}


@dataclass
class TurnReport:
    said: str
    user_line: str | None
    agent_line: str | None
    agent_heard: str  # what the agent's audio in the page was recognised as
    latency: float | None  # seconds, end of the person's speech → first agent audio
    interrupted: bool | None = None  # the previous answer, for a barge-in turn
    barge_in_stop: float | None = None  # seconds from the person's onset to the agent's silence
    problems: list[str] = field(default_factory=list)


@dataclass
class Report:
    name: str
    session_id: str
    greeting: str | None
    turns: list[TurnReport]
    stored: list[dict[str, Any]]
    shown: list[tuple[str, str]] = field(default_factory=list)  # the final lines the socket sent, in order
    on_page: list[tuple[str, str]] = field(default_factory=list)  # the lines the page's transcript shows

    @property
    def problems(self) -> list[str]:
        return [f"turn {n + 1}: {p}" for n, turn in enumerate(self.turns) for p in turn.problems]

    def render(self) -> str:
        lines = [f"== {self.name} (session {self.session_id})", f"   agent greeting: {self.greeting!r}"]
        for n, t in enumerate(self.turns, 1):
            latency = f"{t.latency:.2f} s" if t.latency is not None else "–"
            lines += [
                f"   turn {n}: said   {t.said!r}",
                f"           heard  {t.user_line!r}",
                f"           agent  {t.agent_line!r}",
                f"           page heard the agent say {t.agent_heard!r}",
                f"           end of speech → first agent audio: {latency}"
                + (f"; spoken over the previous answer (marked interrupted: {t.interrupted}), which stopped "
                   f"{t.barge_in_stop:.2f} s after the person started" if t.barge_in_stop is not None else ""),
            ]
            lines += [f"           PROBLEM: {p}" for p in t.problems]
        lines.append("   ok" if not self.problems else f"   {len(self.problems)} problem(s)")
        return "\n".join(lines)


def launch_browser(browser_type: BrowserType, microphone: str, **launch: Any) -> Browser:
    """A Chromium of its own whose fake microphone plays `microphone` (a WAV path; a
    ``%noloop`` suffix plays it once). The capture file is a browser flag: one browser per voice."""
    args = [a for a in launch.pop("args", []) if not a.startswith("--use-file-for-fake-audio-capture")]
    flags = [*setup.CHROMIUM_FLAGS, *(a for a in args if a not in setup.CHROMIUM_FLAGS)]
    return browser_type.launch(
        **{"executable_path": str(setup.chromium()), **launch},
        args=[*flags, f"--use-file-for-fake-audio-capture={microphone}"],
    )


def agent_finals(page: Page) -> list[dict[str, Any]]:
    return page.evaluate("window.voiceAgent.messages.filter(m => m.role === 'agent' && m.final === true)")


def user_finals(page: Page) -> list[dict[str, Any]]:
    return page.evaluate("window.voiceAgent.messages.filter(m => m.role === 'user' && m.final === true)")


def run(conversation: Conversation, stack: Stack, browser_type: BrowserType, **launch: Any) -> Report:
    """Play the conversation into /chat in a browser of its own and report every turn."""
    mic = conversation.recording()
    browser = launch_browser(browser_type, mic.noloop, **launch)
    try:
        page = browser.new_page()
        page_audio.install(page)
        open_chat(page, stack, room=unique(conversation.name), identity=unique("speaker"))
        session_id = press_start(page)
        replies = 1 + len(conversation.turns)  # the greeting, then one answer per turn
        played = mic.spans[-1][1] + 15
        try:
            wait_until(lambda: len(agent_finals(page)) >= replies, played, f"{replies} agent lines")
            wait_until(lambda: page.evaluate("window.voiceAgent.agentRms") < 0.005, 10, "the agent to go quiet")
        except AssertionError:
            pass  # report what did happen: the missing lines show up as problems
        agents, users = agent_finals(page), user_finals(page)
        shown = page.evaluate("window.voiceAgent.messages.filter(m => m.final === true).map(m => [m.role, m.text])")
        on_page = page.evaluate(
            "[...document.querySelectorAll('#transcript .line.user, #transcript .line.agent')]"
            ".map(l => [l.dataset.role, l.querySelector('.text').textContent])"
        )
        heard = page_audio.heard(page)
        page.screenshot(path=ARTIFACTS / f"conversation-{conversation.name}.png", full_page=True)
        write_wav(ARTIFACTS / f"conversation-{conversation.name}-agent-audio.wav", heard.agent, heard.rate)
        press_stop(page)
        status, transcript = Api.for_page(page, stack.backend_url).get(f"/transcripts/{session_id}")
        assert status == 200, transcript
    finally:
        browser.close()
    report = _report(conversation, session_id, agents, users, heard, transcript["entries"])
    report.shown = [tuple(line) for line in shown]
    report.on_page = [tuple(line) for line in on_page]
    return report


def _report(
    conversation: Conversation,
    session_id: str,
    agents: list[dict[str, Any]],
    users: list[dict[str, Any]],
    heard: page_audio.Heard,
    stored: list[dict[str, Any]],
) -> Report:
    greeting, answers = (agents[0]["text"], agents[1:]) if agents else (None, [])
    mic_spans = heard.mic_spans
    turns: list[TurnReport] = []
    for n, turn in enumerate(conversation.turns):
        user_line = users[n]["text"] if n < len(users) else None
        answer = answers[n] if n < len(answers) else None
        report = TurnReport(turn.say.text, user_line, answer["text"] if answer else None, "", None)
        turns.append(report)
        if user_line is None or share_heard(" ".join(turn.user_words), user_line) < WORD_SHARE:
            report.problems.append(f"the person's line {user_line!r} lacks {sorted(turn.user_words)}")
        if answer is None or not turn.agent_words <= content_words(answer["text"]) | set(words(answer["text"])):
            report.problems.append(f"the agent's line {report.agent_line!r} lacks {sorted(turn.agent_words)}")
        if n >= len(mic_spans):
            report.problems.append("the page never heard the person say it")
            continue
        speech_end = mic_spans[n][1]
        # The answer: the agent's audio from the end of this turn to the start of the next
        # (its phrases may be apart by more than the spans' merge gap: "You said: ...").
        next_start = mic_spans[n + 1][0] if n + 1 < len(mic_spans) else float("inf")
        replies = [span for span in heard.agent_spans if speech_end < span[0] < next_start]
        if not replies:
            report.problems.append("no agent audio after the person spoke")
            continue
        report.latency = replies[0][0] - speech_end
        report.agent_heard = recognize(heard.agent_audio(replies[0][0], replies[-1][1]), heard.rate)
        expected = report.agent_line
        if expected and answer and answer.get("interrupted"):
            # Cut off: its line ends with the words released as the audio stopped, and the last
            # of them may have been stopped halfway ("Once upon" heard as "One").
            expected = " ".join(expected.split()[:-1])
        if expected and share_heard(expected, report.agent_heard) < WORD_SHARE:
            report.problems.append(f"the page heard {report.agent_heard!r}, not {report.agent_line!r}")
        if report.latency > turn.budget:
            report.problems.append(f"latency {report.latency:.2f} s over the budget of {turn.budget} s")
        if turn.barge_in:
            _check_barge_in(report, n, answers, heard, mic_spans[n][0])
    return Report(conversation.name, session_id, greeting, turns, stored)


def _check_barge_in(
    report: TurnReport, n: int, answers: list[dict[str, Any]], heard: page_audio.Heard, onset: float
) -> None:
    """Turn n was spoken over answer n-1: that answer must stop soon and say it was cut off."""
    previous = answers[n - 1] if n >= 1 and n - 1 < len(answers) else None
    report.interrupted = bool(previous and previous.get("interrupted"))
    if not report.interrupted:
        report.problems.append("the answer the person spoke over is not marked interrupted")
    playing = [span for span in heard.agent_spans if span[0] < onset < span[1]]
    if not playing:
        report.problems.append("the agent was not speaking when the person barged in")
        return
    report.barge_in_stop = playing[0][1] - onset
    if report.barge_in_stop > BARGE_IN_STOP_BOUND:
        report.problems.append(f"the agent kept talking {report.barge_in_stop:.2f} s over the person")


def main() -> int:
    """`./dev.sh converse [name ...]`: run conversations on a fresh local stack and report."""
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(prog="converse", description="Run scripted conversations and report each turn.")
    parser.add_argument("names", nargs="*", metavar="name", help=f"default: all ({', '.join(CONVERSATIONS)})")
    parser.add_argument("--json", type=Path, help="also write the reports to this file")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in CONVERSATIONS]
    if unknown:
        parser.error(f"unknown conversation(s): {', '.join(unknown)}; known: {', '.join(CONVERSATIONS)}")
    chosen = [CONVERSATIONS[name] for name in args.names or CONVERSATIONS]
    started = time.monotonic()
    reports = []
    with tempfile.TemporaryDirectory() as folder, separate_stack("converse", ARTIFACTS, Path(folder)) as stack:
        print(f"stack ready in {time.monotonic() - started:.0f} s", flush=True)
        with sync_playwright() as playwright:
            for conversation in chosen:
                report = run(conversation, stack, playwright.chromium)
                reports.append(report)
                print(report.render(), flush=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in reports], indent=2))
    return 1 if any(r.problems for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
