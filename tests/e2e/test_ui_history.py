"""The landing page and /history in Debian Chromium: the list of sessions (paginated), one
session's transcript, a missing one, at desktop and phone width."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from devtools.stack import Stack
from offline_openai.replies import GREETING
from tests.e2e.support import Api, unique


@pytest.fixture(scope="module")
def past_session(browser: Browser, browser_context_args: dict[str, Any], stack: Stack, api: Api) -> str:
    """One real conversation (greeting, the visitor, the reply), stopped, plus a bare session,
    both the `api` visitor's, whose history the `page` fixture's pages show."""
    created = api.post("/session", {"room": unique("bare"), "identity": "nobody"})[1]
    api.delete(f"/session/{created['session_id']}")
    context = browser.new_context(**browser_context_args)
    page = context.new_page()
    page.goto(f"{stack.ui_url}/chat?room={unique('hist')}&identity=historian")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#transcript .line.agent .text").nth(1)).to_have_text(re.compile("^You said: "), timeout=60_000)
    session_id = page.evaluate("window.voiceAgent.sessionId")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#status")).to_have_attribute("data-state", "idle", timeout=20_000)
    context.close()
    return session_id


def test_landing_page(page: Page, stack: Stack, artifacts_dir: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{stack.ui_url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Talk to an AI voice agent")
    page.screenshot(path=artifacts_dir / "landing.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=artifacts_dir / "mobile-landing.png", full_page=True)
    page.get_by_role("link", name="Start a conversation").click()
    expect(page).to_have_url(f"{stack.ui_url}/chat")
    expect(page.get_by_role("link", name="Talk")).to_have_attribute("aria-current", "page")


def test_history_list_and_transcript(page: Page, stack: Stack, past_session: str, artifacts_dir: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{stack.ui_url}/history")
    expect(page.locator("#history-status")).to_have_attribute("data-state", "ready")
    headers = page.locator("#sessions th").all_inner_texts()
    assert [h.lower() for h in headers] == ["started", "room", "who", "status", "length"]
    row = page.locator("#sessions tbody tr").filter(has_text="historian")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(3)).to_have_text("ended")
    expect(row.locator("td").nth(4)).to_have_text(re.compile(r"^\d+ s$|^\d+ min \d+ s$"))
    page.screenshot(path=artifacts_dir / "history-list.png", full_page=True)

    row.get_by_role("link").click()
    expect(page).to_have_url(f"{stack.ui_url}/history/{past_session}")
    expect(page.locator("#detail-status")).to_have_attribute("data-state", "ready")
    expect(page.locator("#detail-meta [data-field=identity]")).to_have_text("historian")
    expect(page.locator("#detail-transcript .line.agent .text").first).to_have_text(GREETING)
    expect(page.locator("#detail-transcript .line.user").first).to_be_visible()
    expect(page.locator("#detail-transcript .line.agent .text").nth(1)).to_have_text(re.compile("^You said: "))
    page.screenshot(path=artifacts_dir / "history-transcript.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=artifacts_dir / "mobile-history-transcript.png", full_page=True)
    page.get_by_role("link", name="All conversations").click()
    expect(page.locator("#history-status")).to_have_attribute("data-state", "ready")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=artifacts_dir / "mobile-history-list.png", full_page=True)


def test_history_pages(page: Page, stack: Stack, api: Api, past_session: str) -> None:
    page.goto(f"{stack.ui_url}/history?limit=1")
    expect(page.locator("#sessions tbody tr")).to_have_count(1)
    expect(page.locator("#page-range")).to_have_text(re.compile(r"^1–1 of \d+$"))
    expect(page.locator("#newer")).to_have_attribute("aria-disabled", "true")
    # The page follows the API's own `next`, not a page size of its own.
    next_page = parse_qs(urlsplit(api.get("/transcripts?limit=1")[1]["next"]).query)
    older = parse_qs(urlsplit(page.locator("#older").get_attribute("href") or "").query)
    assert older == next_page == {"limit": ["1"], "offset": ["1"]}
    page.get_by_role("link", name="Older →").click()
    expect(page).to_have_url(re.compile(r"offset=1"))
    expect(page.locator("#page-range")).to_have_text(re.compile(r"^2–2 of \d+$"))
    expect(page.locator("#newer")).not_to_have_attribute("aria-disabled", "true")
    page.get_by_role("link", name="← Newer").click()
    expect(page.locator("#page-range")).to_have_text(re.compile(r"^1–1 of \d+$"))


def test_history_first_page_is_the_apis_default_page(page: Page, stack: Stack, api: Api, past_session: str) -> None:
    code, first = api.get("/transcripts")
    assert code == 200 and first["results"]
    page.goto(f"{stack.ui_url}/history")
    expect(page.locator("#history-status")).to_have_attribute("data-state", "ready")
    expect(page.locator("#sessions tbody tr")).to_have_count(len(first["results"]))
    expect(page.locator("#pager")).to_be_visible(visible=bool(first["next"]))


def test_history_page_that_does_not_exist(page: Page, stack: Stack, artifacts_dir: Path) -> None:
    page.goto(f"{stack.ui_url}/history?limit=0")  # the API refuses it: limits start at 1
    expect(page.locator("#history-status")).to_have_attribute("data-state", "error")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("No such page of history")
    expect(alert).to_contain_text("limit")
    page.screenshot(path=artifacts_dir / "history-no-such-page.png", full_page=True)
    alert.get_by_role("link", name="Show the newest conversations").click()
    expect(page).to_have_url(f"{stack.ui_url}/history")
    expect(page.locator("#history-status")).to_have_attribute("data-state", re.compile(r"^(ready|empty)$"))


def test_missing_transcript(page: Page, stack: Stack, artifacts_dir: Path) -> None:
    page.goto(f"{stack.ui_url}/history/{uuid.uuid4()}")
    expect(page.locator("#detail-status")).to_have_attribute("data-state", "error")
    expect(page.get_by_role("alert")).to_contain_text("Conversation not found")
    page.screenshot(path=artifacts_dir / "history-not-found.png", full_page=True)
    assert page.goto(f"{stack.ui_url}/history/not-an-id").status == 404
