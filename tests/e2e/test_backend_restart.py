"""A backend restart in the middle of a conversation leaves nothing running.

Graceful (SIGTERM): uvicorn first closes the WebSockets, so the page usually leaves the
room at once (reason participant_left); otherwise the backend's shutdown ends the
session (reason shutdown). Crash (SIGKILL): nobody ends it then; the restarted
backend's sweeper finds the silent row and ends it (reason error) within the
heartbeat timeout.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from devtools.stack import Stack
from tests.e2e.support import Api, end_live_sessions, press_start, separate_stack, wait_until_ended

HEARTBEAT_TIMEOUT = 4.0


@pytest.fixture(scope="module")
def restartable(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    heartbeat = {"VOICE_HEARTBEAT_INTERVAL": "1", "VOICE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT)}
    with separate_stack("restart", artifacts_dir, tmp_path_factory.mktemp("restart"), extra_env=heartbeat) as running:
        yield running


@pytest.fixture
def restart_api(restartable: Stack, api: Api) -> Iterator[Api]:
    """The restartable stack's backend, as the `page` fixture's visitor; whatever the test got
    to, nothing stays live after it."""
    api = api.at(restartable.backend_url)
    yield api
    end_live_sessions(api)


def nothing_running(api: Api) -> bool:
    status, page = api.get("/transcripts?limit=100")
    assert status == 200
    return all(session["status"] == "ended" for session in page["results"])


@pytest.mark.parametrize(
    ("kill", "reasons"),
    [(False, {"shutdown", "participant_left"}), (True, {"error"})],
    ids=["sigterm", "sigkill"],
)
def test_backend_restart_mid_session_leaves_nothing_running(
    page: Page, restartable: Stack, restart_api: Api, kill: bool, reasons: set[str]
) -> None:
    api = restart_api
    page.goto(f"{restartable.ui_url}/chat")
    session_id = press_start(page)
    expect(page.locator("#transcript .line.agent").first).to_be_visible(timeout=30_000)

    restartable.restart_backend(kill=kill)
    session, seconds = wait_until_ended(api, session_id, timeout=HEARTBEAT_TIMEOUT + 10)
    how = "killed" if kill else "stopped"
    print(f"\nbackend {how} → session ended {seconds:.1f} s after restart ({session['end_reason']})")
    assert session["end_reason"] in reasons
    assert nothing_running(api)
    # The page noticed: no longer live (ended, or the connection lost), and Start works again.
    expect(page.locator("#status")).to_have_attribute("data-state", re.compile(r"^(idle|error)$"), timeout=30_000)
    expect(page.get_by_role("button", name="Start")).to_be_enabled()
