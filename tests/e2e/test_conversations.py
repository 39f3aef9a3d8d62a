"""Scripted conversations in real Chromium with the product's openai providers on the offline server: the words the
person said are on the page, the agent's answers are heard in the page as words, each turn
is answered within its latency budget, and a barge-in stops the agent.

The conversations and their checks are data (tests/e2e/conversations.py); `./dev.sh converse`
runs them all with a printed report. The suite plays two: real people over two turns, and a
barge-in; "three-turns" (synthetic voices) adds time, not a kind of check, so only
`./dev.sh converse` plays it.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import BrowserType

from devtools.stack import Stack
from tests.e2e.conversations import CONVERSATIONS, run


@pytest.mark.parametrize("name", ["real-people", "barge-in"])
def test_scripted_conversation(
    name: str, stack: Stack, browser_type: BrowserType, browser_type_launch_args: dict[str, Any]
) -> None:
    report = run(CONVERSATIONS[name], stack, browser_type, **browser_type_launch_args)
    print("\n" + report.render())
    assert not report.problems, report.render()
    # The page, the socket and history hold the same final lines; the socket and history in the
    # same order (on the page an answer the person cut off stays where it began, above their line).
    assert sorted(report.on_page) == sorted(report.shown)
    assert [(entry["role"], entry["text"]) for entry in report.stored] == report.shown
    assert len(report.shown) == 1 + 2 * len(report.turns)
