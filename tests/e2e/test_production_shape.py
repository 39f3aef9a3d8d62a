"""The production shape, for real: two web processes sharing nothing but Redis and a
PostgreSQL server (Debian's, started by the launcher), agents in two livekit-agents worker
processes that LiveKit dispatches to, and two livekit-server nodes sharing the same Redis
(LiveKit's own multi-node routing: a room lives on one node, the other relays to it).

- a session started through web process A, watched over a WebSocket on B and stopped
  through B: every message arrives once, in order, and the stop reaches the agent;
- sessions spread over both workers;
- a worker killed mid-session: its session ends as error, nothing stays running;
- a worker told to stop (SIGTERM) drains: its session ends as shutdown;
- two processes racing for the same room names on PostgreSQL: each name has one winner;
- a LiveKit node killed: the sessions in its rooms end with a reason, its rooms go, and the
  sessions on the other node go on.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Page, expect
from websockets.sync.client import connect

from devtools import setup
from devtools.stack import ROOT, Stack, wait_for_log
from tests.e2e.livekit_clients import LoopThread, Participant, agent_in, rooms_on_server
from tests.e2e.speech import WORD_SHARE, Recording, share_heard
from tests.e2e.support import (
    Api,
    end_live_sessions,
    press_start,
    separate_stack,
    unique,
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
        redis_server=setup.redis_server(), postgres_bin=setup.postgres_bin(), backends=2, agent_workers=2,
        livekit_nodes=2, extra_env=env,
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def whole_cluster(cluster: Stack, operator: Api) -> Iterator[None]:
    """Each test starts with both agent workers and both LiveKit nodes up, whatever ran
    before (some tests stop one), and leaves nothing live, however it ended."""
    for index in range(cluster.config.livekit_nodes):
        cluster.restart_livekit_node(index)  # a no-op when it runs
    for name, process in cluster.processes.items():
        if name.startswith("agent-worker") and process.poll() is not None:
            process.start()  # same command, environment and log file
            wait_for_log(process, "registered worker", timeout=60)
    yield
    end_live_sessions(operator.at(cluster.backend_url))


@pytest.fixture(scope="module")
def operator(api: Api) -> Api:
    """The visitor these tests act as (the `page` fixture's too), at either web process."""
    return api


def post_session(visitor: Api, room: str) -> str:
    status, body = visitor.post("/session", {"room": room, "identity": f"{room}-bot"})
    assert status == 201, body
    return body["session_id"]


def delete_session(visitor: Api, session_id: str) -> int:
    return visitor.delete(f"/session/{session_id}")[0]


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
    page: Page, cluster: Stack, person: Recording, operator: Api
) -> None:
    web_a, web_b = cluster.backend_urls
    page.goto(f"{cluster.ui_url}/chat?room=bravo-room&identity=bravo-person")  # the UI talks to A
    session_id = press_start(page)

    origin = cluster.ui_url
    socket_url = f"{web_b.replace('http', 'ws')}/ws/transcript/{session_id}"
    with connect(socket_url, origin=origin, additional_headers=operator.cookie_header) as socket:
        received = []
        # Until the agent (in a worker process) answers the person's words.
        while not any(m.get("role") == "agent" and m.get("text", "").startswith("You said:") for m in received):
            received.append(json.loads(socket.recv(timeout=45)))
        assert delete_session(operator.at(web_b), session_id) == 204
        while "event" not in received[-1] or received[-1]["event"] != "session_ended":
            received.append(json.loads(socket.recv(timeout=15)))

    seqs = [m["seq"] for m in received if "seq" in m]
    assert seqs == sorted(set(seqs)), "every message once, in order"
    said = [m["text"] for m in received if m.get("role") == "user" and m.get("final")]
    assert said and share_heard(person.text, said[0]) >= WORD_SHARE, (person.text, said)
    assert received[-1] == {"event": "session_ended", "reason": "deleted"}
    # The page on A learns the same end through its own socket and resets.
    expect(page.locator("#status")).to_have_attribute("data-state", "idle", timeout=15_000)
    assert operator.at(web_a).get(f"/session/{session_id}")[1]["end_reason"] == "deleted"


def test_sessions_spread_over_the_workers(cluster: Stack, operator: Api) -> None:
    ids = [post_session(operator.at(cluster.backend_urls[n % 2]), f"spread-{n}") for n in range(4)]
    workers = [worker_of(cluster, session_id) for session_id in ids]
    for n, session_id in enumerate(ids):
        assert delete_session(operator.at(cluster.backend_urls[(n + 1) % 2]), session_id) == 204
    # Each worker takes VOICE_WORKER_MAX_SESSIONS (2), then declines: LiveKit sends the rest on.
    assert sorted(workers) == ["agent-worker-1"] * 2 + ["agent-worker-2"] * 2


def test_a_killed_worker_leaves_nothing_running(cluster: Stack, operator: Api) -> None:
    session_id = post_session(operator.at(cluster.backend_urls[0]), "kill-room")
    victim = cluster.processes[worker_of(cluster, session_id)]
    os.killpg(victim.pid, signal.SIGKILL)  # the worker and its job processes, without warning
    victim.popen.wait(10)
    survivor = operator.at(cluster.backend_urls[1])
    session, seconds = wait_until_ended(survivor, session_id, timeout=HEARTBEAT_TIMEOUT + 15)
    print(f"\nworker killed → session ended in {seconds:.1f} s (reason {session['end_reason']})")
    assert session["end_reason"] == "error"
    status, page = operator.at(cluster.backend_url).get("/transcripts?limit=100")
    assert status == 200 and not [s for s in page["results"] if s["status"] != "ended"]


def test_sigterm_drains_a_worker(cluster: Stack, operator: Api) -> None:
    survivors = [name for name, p in cluster.processes.items() if name.startswith("agent-worker") and p.poll() is None]
    session_id = post_session(operator.at(cluster.backend_urls[1]), "drain-room")
    worker = cluster.processes[worker_of(cluster, session_id)]
    assert worker.name in survivors
    os.kill(worker.pid, signal.SIGTERM)
    session, seconds = wait_until_ended(operator.at(cluster.backend_urls[0]), session_id, timeout=30)
    print(f"\nworker SIGTERM → session ended in {seconds:.1f} s (reason {session['end_reason']})")
    assert session["end_reason"] == "shutdown"
    worker.popen.wait(30)


RACED_ROOMS = 40


def test_two_processes_race_for_the_same_rooms_on_postgresql(cluster: Stack) -> None:
    """Two processes claim the same 40 room names (the token path), then start a session in
    the same 40 other rooms (the session path), from one start line: one winner per name. The
    sessions won stay live until both sides are done, so a side that ran late still raced the
    other's live sessions."""
    assert cluster.database_url.startswith("postgres://"), cluster.database_url
    env = cluster.backend_env()
    sides = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.claim_race", name, "race", str(RACED_ROOMS)],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for name in ("racer-a", "racer-b")
    ]
    for side in sides:  # both have started Python and Django and connected
        assert side.stdout is not None and side.stdout.readline().strip() == "ready"
    for side in sides:  # the start line
        assert side.stdin is not None
        side.stdin.write("go\n")
        side.stdin.flush()
    results = [json.loads(side.stdout.readline()) for side in sides if side.stdout is not None]
    for side in sides:  # both are done: each ends its sessions
        side.communicate("end\n", timeout=60)
    assert [side.returncode for side in sides] == [0, 0]
    for path in ("claims", "sessions"):
        a, b = (set(result[path]) for result in results)
        assert not a & b, f"{path} won by both: {sorted(a & b)}"
        assert len(a | b) == RACED_ROOMS, f"{path} won by neither: {RACED_ROOMS - len(a | b)}"
        print(f"\n{path}: racer-a won {len(a)}, racer-b won {len(b)} of {RACED_ROOMS}")
    refused = sorted(line for result in results for line in result["refused"])
    assert len(refused) == 2 * RACED_ROOMS, refused  # every loss was a clear refusal


# ---- LiveKit as two nodes --------------------------------------------------------------
# From a node's death to the end of the sessions in its rooms. Measured ~11 s: the surviving
# node's relay of the clients' signal to the dead one times out (~10 s), the clients (the
# person's and the agent's, both connected to the first node) reconnect, LiveKit re-homes
# the room on the live node, the agent finds the person gone and its session ends.
NODE_FAILOVER = 30.0


def livekit_node_ids(stack: Stack) -> list[str]:
    """Each node's id, from its start-up line (a node started again has a new one)."""
    ids = []
    for index in range(stack.config.livekit_nodes):
        found = re.search(r'"nodeID": "(ND_\w+)"', stack.processes[stack.livekit_node_name(index)].output())
        assert found, f"node {index + 1} logged no node id"
        ids.append(found.group(1))
    return ids


def test_a_killed_livekit_node_ends_its_sessions_and_only_those(
    cluster: Stack, operator: Api, clients: LoopThread
) -> None:
    nodes, web = livekit_node_ids(cluster), operator.at(cluster.backend_url)
    # LiveKit's own record of which node hosts which room, in the Redis the nodes share.
    room_nodes = redis.Redis.from_url(cluster.livekit_redis_url)
    on_node: list[list[tuple[str, Participant]]] = [[] for _ in nodes]  # node → (session, person)
    for n in range(4):  # at most the workers' capacity (2 × VOICE_WORKER_MAX_SESSIONS)
        if all(on_node):
            break
        if n:
            time.sleep(2.5)  # nodes report their room counts every 2 s; a new room goes to the emptier
        visitor, room, identity = operator.at(cluster.backend_urls[n % 2]), unique("node"), unique("person")
        status, grant = visitor.get(f"/token?room={room}&identity={identity}")
        assert status == 200, grant
        person = clients.participant(grant["url"], grant["token"])  # through the first node: LIVEKIT_URL
        clients.run(person.join())
        status, body = visitor.post("/session", {"room": room, "identity": identity})
        assert status == 201, body
        wait_until(lambda person=person: agent_in(person.room), 30, "the agent in the person's room")
        host = nodes.index(room_nodes.hget("room_node_map", person.room_name).decode())
        on_node[host].append((body["session_id"], person))
    assert all(on_node), f"the rooms went to one node only: {on_node}"
    doomed, spared = on_node[1], on_node[0]

    cluster.kill_livekit_node(1)
    killed_at = time.monotonic()
    for session_id, _ in doomed:
        session, _ = wait_until_ended(web, session_id, NODE_FAILOVER)
        # The agent's link comes back through the live node without its person: the media
        # server failed them (error), whether or not the link came back at all.
        assert session["end_reason"] == "error", session
    ended_after = time.monotonic() - killed_at
    doomed_rooms = {person.room_name for _, person in doomed}
    wait_until(lambda: not doomed_rooms & clients.run(rooms_on_server(cluster.livekit_url)), 10,
               "the dead node's rooms to be deleted")
    reasons = [web.session(session_id)["end_reason"] for session_id, _ in doomed]
    print(f"\nnode killed → its {len(doomed)} session(s) ended in {ended_after:.1f} s ({reasons}); "
          f"the other node's {len(spared)} went on")

    for session_id, person in spared:  # untouched: live, the agent with the person, to the end
        assert web.session(session_id)["status"] == "running"
        assert agent_in(person.room) and person.disconnect_reason is None
        assert web.delete(f"/session/{session_id}")[0] == 204
        session, _ = wait_until_ended(web, session_id, 15)
        assert session["end_reason"] == "deleted"


# ---- the page when a dependency fails -----------------------------------------------------


@pytest.mark.parametrize("fault", ["restart_redis", "restart_livekit"])
def test_the_page_says_what_happened_when_a_dependency_fails_and_starts_again(
    page: Page, cluster: Stack, operator: Api, fault: str
) -> None:
    """Redis restarting under the page's transcript socket (closed 1012), or the LiveKit node
    it talks to restarting (its room gone): the page says the conversation was lost or ended,
    the session ends with a reason, and Start works again."""
    page.goto(f"{cluster.ui_url}/chat?room={unique('dep')}&identity={unique('dep')}")
    session_id = press_start(page)
    getattr(cluster, fault)()
    status = page.locator("#status")
    expect(status).not_to_have_attribute("data-state", "live", timeout=40_000)
    shown = status.inner_text() + " " + page.locator("#error").inner_text()
    assert "Press Start" in shown, shown  # what happened, and what to do now
    session, _ = wait_until_ended(operator.at(cluster.backend_url), session_id, 30)
    assert session["end_reason"], session
    again = press_start(page)
    assert again != session_id
