"""The production shape, for real: two web processes sharing nothing but Redis and the
database, agents in two livekit-agents worker processes that LiveKit dispatches to.

- a session started through web process A, watched over a WebSocket on B and stopped
  through B: every message arrives once, in order, and the stop reaches the agent;
- sessions spread over both workers;
- a worker killed mid-session: its session ends as error, nothing stays running;
- a worker told to stop (SIGTERM) drains: its session ends as shutdown.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from websockets.sync.client import connect

from devtools import setup
from devtools.stack import Stack, wait_for_log
from tests.e2e.speech import WORD_SHARE, Recording, share_heard
from tests.e2e.support import (
    Api,
    end_live_sessions,
    press_start,
    separate_stack,
    wait_until,
    wait_until_ended,
)

HEARTBEAT_TIMEOUT = 4.0


@pytest.fixture(scope="module")
def cluster(artifacts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "VOICE_HEARTBEAT_INTERVAL": "1",
        "VOICE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "VOICE_WORKER_DRAIN_TIMEOUT": "2",
        "VOICE_WORKER_MAX_SESSIONS": "2",  # so four sessions must use both workers
    }
    with separate_stack("cluster", artifacts_dir, tmp_path_factory.mktemp("cluster"),
        redis_server=setup.redis_server(), backends=2, agent_workers=2, extra_env=env,
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def whole_cluster(cluster: Stack) -> Iterator[None]:
    """Each test starts with both agent workers up, whatever ran before (some tests stop
    one), and leaves nothing live, however it ended."""
    for name, process in cluster.processes.items():
        if name.startswith("agent-worker") and process.poll() is not None:
            process.start()  # same command, environment and log file
            wait_for_log(process, "registered worker", timeout=60)
    yield
    end_live_sessions(Api(cluster.backend_url))


def post_session(backend_url: str, room: str) -> str:
    status, body = Api(backend_url).post("/session", {"room": room, "identity": f"{room}-bot"})
    assert status == 201, body
    return body["session_id"]


def delete_session(backend_url: str, session_id: str) -> int:
    return Api(backend_url).delete(f"/session/{session_id}")[0]


def worker_of(stack: Stack, session_id: str, timeout: float = 10.0) -> str:
    """The worker whose log says it runs the session (logs arrive a moment after the reply)."""

    def mentioning() -> list[str]:
        return [
            name for name, process in stack.processes.items()
            if name.startswith("agent-worker") and f'"session_id": "{session_id}"' in process.output()
        ]

    wait_until(mentioning, timeout, f"a worker log to mention {session_id}")
    return mentioning()[0]


def test_start_on_one_web_process_watch_and_stop_on_the_other(
    page: Page, cluster: Stack, person: Recording
) -> None:
    web_a, web_b = cluster.backend_urls
    page.goto(f"{cluster.ui_url}/chat?room=bravo-room&identity=bravo-person")  # the UI talks to A
    session_id = press_start(page)

    origin = cluster.ui_url
    with connect(f"{web_b.replace('http', 'ws')}/ws/transcript/{session_id}", origin=origin) as socket:
        received = []
        # Until the agent (in a worker process) answers the person's words.
        while not any(m.get("role") == "agent" and m.get("text", "").startswith("You said:") for m in received):
            received.append(json.loads(socket.recv(timeout=45)))
        assert delete_session(web_b, session_id) == 204
        while "event" not in received[-1] or received[-1]["event"] != "session_ended":
            received.append(json.loads(socket.recv(timeout=15)))

    seqs = [m["seq"] for m in received if "seq" in m]
    assert seqs == sorted(set(seqs)), "every message once, in order"
    said = [m["text"] for m in received if m.get("role") == "user" and m.get("final")]
    assert said and share_heard(person.text, said[0]) >= WORD_SHARE, (person.text, said)
    assert received[-1] == {"event": "session_ended", "reason": "deleted"}
    # The page on A learns the same end through its own socket and resets.
    expect(page.locator("#status")).to_have_attribute("data-state", "idle", timeout=15_000)
    assert Api(web_a).get(f"/session/{session_id}")[1]["end_reason"] == "deleted"


def test_sessions_spread_over_the_workers(cluster: Stack) -> None:
    ids = [post_session(cluster.backend_urls[n % 2], f"spread-{n}") for n in range(4)]
    workers = [worker_of(cluster, session_id) for session_id in ids]
    for n, session_id in enumerate(ids):
        assert delete_session(cluster.backend_urls[(n + 1) % 2], session_id) == 204
    # Each worker takes VOICE_WORKER_MAX_SESSIONS (2), then declines: LiveKit sends the rest on.
    assert sorted(workers) == ["agent-worker-1"] * 2 + ["agent-worker-2"] * 2


def test_a_killed_worker_leaves_nothing_running(cluster: Stack) -> None:
    session_id = post_session(cluster.backend_urls[0], "kill-room")
    victim = cluster.processes[worker_of(cluster, session_id)]
    os.killpg(victim.pid, signal.SIGKILL)  # the worker and its job processes, without warning
    victim.popen.wait(10)
    session, seconds = wait_until_ended(Api(cluster.backend_urls[1]), session_id, timeout=HEARTBEAT_TIMEOUT + 15)
    print(f"\nworker killed → session ended in {seconds:.1f} s (reason {session['end_reason']})")
    assert session["end_reason"] == "error"
    status, page = Api(cluster.backend_url).get("/transcripts?limit=100")
    assert status == 200 and not [s for s in page["results"] if s["status"] != "ended"]


def test_sigterm_drains_a_worker(cluster: Stack) -> None:
    survivors = [name for name, p in cluster.processes.items() if name.startswith("agent-worker") and p.poll() is None]
    session_id = post_session(cluster.backend_urls[1], "drain-room")
    worker = cluster.processes[worker_of(cluster, session_id)]
    assert worker.name in survivors
    os.kill(worker.pid, signal.SIGTERM)
    session, seconds = wait_until_ended(Api(cluster.backend_urls[0]), session_id, timeout=30)
    print(f"\nworker SIGTERM → session ended in {seconds:.1f} s (reason {session['end_reason']})")
    assert session["end_reason"] == "shutdown"
    worker.popen.wait(30)
