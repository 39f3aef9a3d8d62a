"""Press Start, hear the agent, see both sides of the conversation, press Stop."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from devtools.stack import Stack
from offline_openai.replies import GREETING, reply_to
from tests.e2e.speech import WORD_SHARE, Recording, share_heard
from tests.e2e.support import Api

AUDIBLE_RMS = 0.02  # flite speaks at ~0.1 RMS; silence reads ~0


def test_start_converse_stop(page: Page, stack: Stack, api: Api, person: Recording, artifacts_dir: Path) -> None:
    page.goto(f"{stack.ui_url}/chat")
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "idle")

    page.get_by_role("button", name="Start").click()
    expect(status).to_have_attribute("data-state", "live", timeout=30_000)
    session_id = page.evaluate("window.voiceAgent.sessionId")
    assert api.get(f"/session/{session_id}")[1]["status"] == "running"

    # The agent greets, by voice: a final agent line and audible audio on the remote track.
    expect(page.locator("#transcript .line.agent .text").first).to_have_text(GREETING, timeout=30_000)
    page.wait_for_function(f"window.voiceAgent.agentPeakRms > {AUDIBLE_RMS}", timeout=30_000)

    # The fake mic speaks; the agent hears its words and answers them.
    expect(page.locator("#transcript .line.user .text").first).to_be_visible(timeout=45_000)
    said = page.locator("#transcript .line.user .text").first.inner_text()
    assert share_heard(person.text, said) >= WORD_SHARE, (person.text, said)
    expect(page.locator("#transcript .line.agent .text").nth(1)).to_have_text(reply_to(said), timeout=30_000)
    page.screenshot(path=artifacts_dir / "chat-live.png", full_page=True)

    page.get_by_role("button", name="Stop").click()
    expect(status).to_have_attribute("data-state", "idle", timeout=20_000)
    assert page.evaluate("window.voiceAgent.wsState") == "closed"
    assert page.evaluate("window.voiceAgent.roomState") == "disconnected"
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
    code, session = api.get(f"/session/{session_id}")
    assert (code, session["status"], session["end_reason"]) == (200, "ended", "deleted")
