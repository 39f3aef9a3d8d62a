"""A session's agent when Redis, the database or LiveKit fail under it: every run still
ends, answers whoever asked it to stop, leaves no task behind, and says what went wrong.

Waits are on events with timeouts; the time bounds are correctness bounds (an answer well
before VOICE_STOP_TIMEOUT), not benchmarks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from django.db import OperationalError
from django.utils import timezone

from app.voice import lifecycle
from app.voice.agent import runner
from app.voice.agent.host import get_host
from app.voice.agent.runner import AgentRun
from app.voice.lifespan import with_lifespan
from app.voice.livekit_gateway import get_gateway
from app.voice.models import EndReason, VoiceSession
from app.voice.sessions import ending, store, sweeper
from app.voice.sessions.groups import channel_layer, control_group
from app.voice.sessions.info import SessionInfo
from fakes.livekit import FakeLiveKitGateway

pytestmark = pytest.mark.django_db(transaction=True)

T = TypeVar("T")
# DELETE's own wait, far above what any answer here may take.
STOP_TIMEOUT = 5.0
ANSWERED_WITHIN = 2.0


async def start(api, room: str, identity: str = "alice") -> str:
    response = await api.post("/session", json={"room": room, "identity": identity})
    assert response.status_code == 201, response.content
    return response.json()["session_id"]


async def timed(awaitable: Awaitable[T]) -> tuple[T, float]:
    loop = asyncio.get_running_loop()
    began = loop.time()
    result = await awaitable
    return result, loop.time() - began


async def assert_ended(session_id: str, reason: str) -> None:
    session = await VoiceSession.objects.aget(pk=session_id)
    assert (session.status, session.end_reason) == ("ended", reason)


def logged(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == event]


def failing_end_session(monkeypatch: pytest.MonkeyPatch, failures: int | None) -> list[EndReason]:
    """The run's end_session fails `failures` times (None: always), as with the database
    unreachable; returns the reasons it was called with."""
    calls: list[EndReason] = []

    async def end_session(info: SessionInfo, reason: EndReason) -> None:
        calls.append(reason)
        if failures is None or len(calls) <= failures:
            raise OperationalError("could not connect to server")
        await ending.end_session(info, reason)

    monkeypatch.setattr(runner, "end_session", end_session)
    monkeypatch.setattr(runner, "END_RETRY_DELAY", 0.01)
    return calls


# ---- 1. an ending that fails still finishes ---------------------------------------------------


async def test_an_ending_that_fails_once_is_retried_and_answers_the_delete(
    api, gateway: FakeLiveKitGateway, settings, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    settings.VOICE_STOP_TIMEOUT = STOP_TIMEOUT
    calls = failing_end_session(monkeypatch, failures=1)
    session_id = await start(api, "room-blip")
    run = get_host().runs[session_id]
    with caplog.at_level(logging.WARNING, logger="app.voice.agent"):
        response, seconds = await timed(api.delete(f"/session/{session_id}"))
    assert response.status_code == 204
    assert seconds < ANSWERED_WITHIN, f"DELETE took {seconds:.1f} s"
    assert run.ended.is_set() and session_id not in get_host().runs
    assert calls == [EndReason.DELETED, EndReason.DELETED]  # the blip, then the retry
    await assert_ended(session_id, "deleted")  # ended by the run, with its true reason
    [failure] = logged(caplog, "session.end_failed")
    assert failure.session_id == session_id and "could not connect" in failure.error


async def test_an_ending_that_keeps_failing_still_ends_the_run_and_the_sweeper_ends_the_row(
    api, gateway: FakeLiveKitGateway, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    calls = failing_end_session(monkeypatch, failures=None)
    session_id = await start(api, "room-db-down")
    run = get_host().runs[session_id]
    with caplog.at_level(logging.WARNING, logger="app.voice.agent"):
        gateway.rooms["room-db-down"].person_leaves()
        await asyncio.wait_for(run.ended.wait(), 10)
    assert len(calls) == runner.END_ATTEMPTS
    assert gateway.rooms["room-db-down"].closed  # everything was released all the same
    assert [r.session_id for r in logged(caplog, "session.end_failed")] == [session_id] * runner.END_ATTEMPTS
    [given_up] = logged(caplog, "session.end_left_to_sweeper")
    assert given_up.session_id == session_id and given_up.levelno == logging.ERROR
    await get_host().shutdown()  # waits for every hosted run to be over
    assert session_id not in get_host().runs

    # The row is still live, its heartbeat stopped: once that is stale, the sweeper ends it.
    assert (await VoiceSession.objects.aget(pk=session_id)).status == "running"
    long_ago = timezone.now() - timedelta(minutes=5)
    await VoiceSession.objects.filter(pk=session_id).aupdate(heartbeat_at=long_ago)
    assert await sweeper.sweep_once() == 1
    await assert_ended(session_id, "error")


async def test_every_stop_request_is_answered_even_when_one_answer_fails(
    api, gateway: FakeLiveKitGateway, settings, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """Two DELETEs at once; the answer to the first cannot be sent (Redis blip): the second
    is still answered, and the failure is logged."""
    settings.VOICE_STOP_TIMEOUT = 3.0  # what the unlucky one waits: kept short
    session_id = await start(api, "room-replies")
    session = await VoiceSession.objects.aget(pk=session_id)
    layer = channel_layer()
    send = layer.send
    dropped: list[str] = []

    async def flaky_send(channel: str, message: dict[str, Any]) -> None:
        if message.get("type") == "session.stopped" and not dropped:
            dropped.append(channel)
            raise ConnectionError("redis went away")
        await send(channel, message)

    monkeypatch.setattr(layer, "send", flaky_send)
    loop = asyncio.get_running_loop()
    began = loop.time()
    finished: list[float] = []

    async def stop() -> None:
        await lifecycle.stop_session(session)
        finished.append(loop.time() - began)

    with caplog.at_level(logging.WARNING, logger="app.voice.agent"):
        await asyncio.gather(stop(), stop())
    assert len(dropped) == 1
    assert min(finished) < ANSWERED_WITHIN  # the other one was answered
    assert [r.session_id for r in logged(caplog, "session.stop_reply_failed")] == [session_id]
    await assert_ended(session_id, "deleted")


# ---- 2. a stop during the start ------------------------------------------------------------


def hold_join(monkeypatch: pytest.MonkeyPatch, gateway: FakeLiveKitGateway) -> tuple[asyncio.Event, asyncio.Event]:
    """The agent's join waits for `gate`; `joining` says it got there."""
    joining, gate = asyncio.Event(), asyncio.Event()
    join = gateway.join_room

    async def held_join(**kwargs: str) -> Any:
        joining.set()
        await gate.wait()
        return await join(**kwargs)

    monkeypatch.setattr(gateway, "join_room", held_join)
    return joining, gate


async def start_agent(room: str) -> tuple[str, asyncio.Task[None]]:
    """What POST /session does, without marking the row running afterwards (on the tests'
    in-memory SQLite that write could collide with the stop's, which a real database
    queues): the row, the room, and the agent starting in this process."""
    row = await store.create_session(room, "alice")
    info = SessionInfo.of(row)
    await get_gateway().create_room(info.livekit_room)
    return info.session_id, asyncio.create_task(get_host().start(info))


def spy_stops(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, list[AgentRun]]:
    """Set once a run is asked to stop; the runs asked."""
    asked, runs = asyncio.Event(), []
    request_stop = AgentRun.request_stop

    def spy(self: AgentRun, reason: EndReason) -> asyncio.Task[None]:
        asked.set()
        runs.append(self)
        return request_stop(self, reason)

    monkeypatch.setattr(AgentRun, "request_stop", spy)
    return asked, runs


async def test_a_start_whose_caller_goes_away_runs_to_its_end(
    gateway: FakeLiveKitGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client leaves mid-start (Django cancels its request): the session still becomes
    running, not a row left 'created' with an agent in the room."""
    joining, gate = hold_join(monkeypatch, gateway)
    request = asyncio.create_task(lifecycle.start_session("room-gone", "alice", visitor="v"))
    await joining.wait()
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    gate.set()
    session = await VoiceSession.objects.aget(room="room-gone")
    async with asyncio.timeout(10):
        while (run := get_host().runs.get(str(session.pk))) is None or session.status != "running":
            await asyncio.sleep(0.05)
            await session.arefresh_from_db()
    await run.request_stop(EndReason.DELETED)
    await asyncio.wait_for(run.ended.wait(), 10)


async def test_a_stop_that_arrives_mid_start_waits_for_the_start_and_releases_all_of_it(
    gateway: FakeLiveKitGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    joining, gate = hold_join(monkeypatch, gateway)
    stop_asked, runs = spy_stops(monkeypatch)
    session_id, starting = await start_agent("room-midstart")
    await asyncio.wait_for(joining.wait(), 10)
    session = await VoiceSession.objects.aget(pk=session_id)
    stopping = asyncio.create_task(lifecycle.stop_session(session))
    await asyncio.wait_for(stop_asked.wait(), 10)  # the run heard the DELETE, mid-start
    gate.set()
    await asyncio.wait_for(starting, 20)  # the start itself succeeded
    await asyncio.wait_for(stopping, 20)
    await assert_ended(session_id, "deleted")
    room = gateway.rooms["room-midstart"]
    assert room.closed and room.session is not None  # joined, started, then released
    assert session_id not in get_host().runs
    run = runs[0]
    assert run._heartbeat_task is None  # never started: the stop was under way
    assert all(task is None or task.done() for task in (run._timeout_task, run._control_task))
    # Nor any task of the session: the conftest's leak check.


async def test_shutdown_waits_for_a_session_that_is_still_starting(
    gateway: FakeLiveKitGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    joining, gate = hold_join(monkeypatch, gateway)
    stop_asked, _ = spy_stops(monkeypatch)
    session_id, starting = await start_agent("room-starting")
    await asyncio.wait_for(joining.wait(), 10)
    shutting_down = asyncio.create_task(get_host().shutdown())
    await asyncio.wait_for(stop_asked.wait(), 5)  # shutdown saw the starting session
    assert not shutting_down.done()  # and waits for it
    gate.set()
    await asyncio.wait_for(shutting_down, 20)
    assert starting.done()
    await starting
    await assert_ended(session_id, "shutdown")
    assert gateway.rooms["room-starting"].closed
    assert not get_host().runs


# ---- 3. the control listener survives Redis errors -------------------------------------------


async def test_the_control_listener_survives_a_failing_receive_and_still_hears_a_stop(
    api, gateway: FakeLiveKitGateway, settings, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    settings.VOICE_STOP_TIMEOUT = STOP_TIMEOUT
    monkeypatch.setattr(runner, "CONTROL_RETRY_DELAY", 0.01)
    session_id = await start(api, "room-redis")
    run = get_host().runs[session_id]
    layer = channel_layer()
    receive = layer.receive
    failed, listening_again = asyncio.Event(), asyncio.Event()

    async def flaky_receive(channel: str) -> dict[str, Any]:
        if channel == run._control_channel:
            if not failed.is_set():
                failed.set()
                # As a restarted Redis: the group membership is gone too.
                await layer.group_discard(control_group(session_id), channel)
                raise ConnectionError("redis went away")
            listening_again.set()
        return await receive(channel)

    monkeypatch.setattr(layer, "receive", flaky_receive)
    with caplog.at_level(logging.WARNING, logger="app.voice.agent"):
        await layer.send(run._control_channel, {"type": "noop"})  # its next receive fails
        await asyncio.wait_for(failed.wait(), 5)
        await asyncio.wait_for(listening_again.wait(), 5)
        response, seconds = await timed(api.delete(f"/session/{session_id}"))
    assert response.status_code == 204
    assert seconds < ANSWERED_WITHIN, f"DELETE took {seconds:.1f} s"
    assert run.ended.is_set()  # the agent itself stopped, not just its row
    [failure] = logged(caplog, "session.control_failed")
    assert failure.session_id == session_id and "redis went away" in failure.error
    await assert_ended(session_id, "deleted")


# ---- 4. a DELETE while the session is already ending -------------------------------------


async def test_a_delete_while_the_session_is_ending_returns_once_it_has_ended(
    api, gateway: FakeLiveKitGateway, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page closes: the person leaves the room and the page sends DELETE at once."""
    settings.VOICE_STOP_TIMEOUT = STOP_TIMEOUT
    session_id = await start(api, "room-pageclose")
    room = gateway.rooms["room-pageclose"]
    leaving, gate = asyncio.Event(), asyncio.Event()
    aclose = room.aclose

    async def held_leave() -> None:
        leaving.set()
        await gate.wait()
        await aclose()

    monkeypatch.setattr(room, "aclose", held_leave)
    layer = channel_layer()
    spy = await layer.new_channel()  # hears what the run's control group hears
    await layer.group_add(control_group(session_id), spy)
    try:
        room.person_leaves()
        await asyncio.wait_for(leaving.wait(), 10)  # the run is shutting down
        deleting = asyncio.create_task(timed(api.delete(f"/session/{session_id}")))
        assert (await asyncio.wait_for(layer.receive(spy), 10))["type"] == "session.stop"
        gate.set()
        response, seconds = await asyncio.wait_for(deleting, 2 * STOP_TIMEOUT)
    finally:
        await layer.group_discard(control_group(session_id), spy)
    assert response.status_code == 204
    assert seconds < ANSWERED_WITHIN, f"DELETE took {seconds:.1f} s"
    await assert_ended(session_id, "participant_left")  # the first reason stands


async def test_a_delete_that_finds_the_row_ended_after_its_read_does_not_wait(settings) -> None:
    """The run ended and left between the view's read and the stop request: nobody answers,
    and nobody needs to."""
    settings.VOICE_STOP_TIMEOUT = STOP_TIMEOUT
    row = await VoiceSession.objects.acreate(
        room="room-gone", livekit_room="room-gone~1", identity="bob", status="running"
    )
    assert await store.mark_ended(row.id, EndReason.PARTICIPANT_LEFT)  # `row` still says live
    _, seconds = await timed(lifecycle.stop_session(row))
    assert seconds < ANSWERED_WITHIN, f"stop took {seconds:.1f} s"
    await assert_ended(str(row.id), "participant_left")


# ---- 5. errors are said ------------------------------------------------------------------------


async def test_a_session_or_room_that_fails_to_close_is_logged_and_the_rest_still_released(
    api, gateway: FakeLiveKitGateway, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    session_id = await start(api, "room-badclose")
    run = get_host().runs[session_id]
    room = gateway.rooms["room-badclose"]
    assert run.session is not None
    close_session, close_room = run.session.aclose, room.aclose

    async def session_fails() -> None:
        await close_session()
        raise RuntimeError("session close blew up")

    async def room_fails() -> None:
        await close_room()
        raise ConnectionError("LiveKit went away")

    monkeypatch.setattr(run.session, "aclose", session_fails)
    monkeypatch.setattr(room, "aclose", room_fails)
    with caplog.at_level(logging.WARNING, logger="app.voice.agent"):
        assert (await api.delete(f"/session/{session_id}")).status_code == 204
    [session_failure] = logged(caplog, "session.close_failed")
    [room_failure] = logged(caplog, "room.leave_failed")
    assert session_failure.session_id == room_failure.session_id == session_id
    assert "session close blew up" in session_failure.error and "LiveKit went away" in room_failure.error
    assert run.ended.is_set()
    await assert_ended(session_id, "deleted")


async def test_lifespan_shutdown_leaves_no_sweeper_task_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_host(), "prewarm", lambda: None)  # no models to load here

    async def no_app(scope: dict, receive: Any, send: Any) -> None:
        raise AssertionError("only the lifespan is served")

    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: asyncio.Queue[str] = asyncio.Queue()
    sweepers: list[asyncio.Task[Any]] = []
    pending_at_stop: list[asyncio.Task[Any]] = []

    async def send(message: dict[str, str]) -> None:
        if message["type"] == "lifespan.startup.complete":
            sweepers.extend(t for t in asyncio.all_tasks() if t.get_name() == "session-sweeper")
        if message["type"] == "lifespan.shutdown.complete":  # the process may exit from here on
            pending_at_stop.extend(t for t in sweepers if not t.done())
        await sent.put(message["type"])

    serving = asyncio.create_task(with_lifespan(no_app)({"type": "lifespan"}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    assert await asyncio.wait_for(sent.get(), 30) == "lifespan.startup.complete"
    assert len(sweepers) == 1
    await inbox.put({"type": "lifespan.shutdown"})
    assert await asyncio.wait_for(sent.get(), 30) == "lifespan.shutdown.complete"
    await asyncio.wait_for(serving, 5)
    assert not pending_at_stop, "the sweeper was still running when the server said it had stopped"
