"""Error states that need a server down. They run on their own stack (never the shared one):
first a fresh, empty history; then LiveKit stopped; then the backend stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devtools.stack import Stack
from tests.e2e.support import separate_stack


@pytest.fixture(scope="module")
def own_stack(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with separate_stack("errors", artifacts_dir, tmp_path_factory) as running:
        yield running


def test_history_empty(page: Page, own_stack: Stack, artifacts_dir: Path) -> None:
    page.goto(f"{own_stack.ui_url}/history")
    expect(page.locator("#history-status")).to_have_attribute("data-state", "empty")
    expect(page.get_by_text("No conversations yet.").first).to_be_visible()
    expect(page.get_by_role("link", name="Start a conversation")).to_be_visible()
    expect(page.locator("#sessions")).to_be_hidden()
    page.screenshot(path=artifacts_dir / "history-empty.png", full_page=True)


def test_livekit_stopped(page: Page, own_stack: Stack, artifacts_dir: Path) -> None:
    own_stack.processes["livekit"].stop()
    page.goto(f"{own_stack.ui_url}/chat")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#status")).to_have_attribute("data-state", "error", timeout=30_000)
    expect(page.locator("#error-title")).to_have_text("Can’t reach the media server")
    expect(page.locator("#error-message")).to_contain_text(own_stack.livekit_url)
    assert page.evaluate("[window.voiceAgent.errorKind, window.voiceAgent.sessionId]") == ["livekit_down", None]
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    page.screenshot(path=artifacts_dir / "chat-error-livekit-down.png", full_page=True)


def test_backend_stopped(page: Page, own_stack: Stack, artifacts_dir: Path) -> None:
    own_stack.processes["backend"].stop()
    page.goto(f"{own_stack.ui_url}/chat")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#status")).to_have_attribute("data-state", "error", timeout=30_000)
    expect(page.locator("#error-title")).to_have_text("Can’t reach the voice service")
    expect(page.locator("#error-message")).to_contain_text(own_stack.backend_url)
    assert page.evaluate("window.voiceAgent.errorKind") == "backend_down"
    page.screenshot(path=artifacts_dir / "chat-error-backend-down.png", full_page=True)

    page.goto(f"{own_stack.ui_url}/history")
    expect(page.locator("#history-status")).to_have_attribute("data-state", "error")
    expect(page.get_by_role("alert")).to_contain_text("History is unavailable")
    page.screenshot(path=artifacts_dir / "history-error.png", full_page=True)
