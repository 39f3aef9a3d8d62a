"""Final transcript lines survive a database blip: written once it is back, in order, exactly
once; a line that cannot be kept is reported lost by its seq, never dropped silently."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import jsonschema
import pytest
from django.db import OperationalError

from app.voice.agent import event_bridge
from app.voice.agent.event_bridge import TranscriptPublisher
from app.voice.contract import messages
from app.voice.models import TranscriptEntry, VoiceSession
from app.voice.sessions import store
from app.voice.sessions.groups import channel_layer, transcript_group
from fakes.livekit import FakeLiveKitGateway
from tests.unit.support import receive_until

pytestmark = pytest.mark.django_db(transaction=True)


class FlakyDatabase:
    """Stands in for store.save_final_transcript: unreachable while `down`; for the seqs in
    `answer_lost`, the first write goes through but its answer is lost (the connection drops
    after the commit)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, down: bool = True) -> None:
        self.down = down
        self.answer_lost: set[int] = set()
        self.calls: list[int] = []
        self.written: list[int] = []
        self.changed = asyncio.Event()
        self._save = store.save_final_transcript
        monkeypatch.setattr(store, "save_final_transcript", self)

    async def __call__(self, session_id: str, seq: int, role: str, text: str, **extra: Any) -> None:
        self.calls.append(seq)
        try:
            if self.down:
                raise OperationalError("could not connect to server")
            await self._save(session_id, seq, role, text, **extra)
            self.written.append(seq)
            if seq in self.answer_lost:
                self.answer_lost.discard(seq)
                raise OperationalError("server closed the connection unexpectedly")
        finally:
            self.changed.set()

    async def until(self, condition: Any, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_bridge, "RETRY_DELAY", 0.01)
    monkeypatch.setattr(event_bridge, "RETRY_MAX_DELAY", 0.05)


async def follow(session_id: str) -> str:
    """A channel that hears what the session's transcript sockets hear."""
    layer = channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(transcript_group(session_id), channel)
    return channel


async def heard(channel: str, count: int) -> list[dict[str, Any]]:
    layer = channel_layer()
    return [(await asyncio.wait_for(layer.receive(channel), 10))["message"] for _ in range(count)]


async def heard_nothing_more(channel: str) -> bool:
    """True when `channel` holds nothing more (a marker sent now comes back first)."""
    layer = channel_layer()
    await layer.send(channel, {"type": "marker", "message": "marker"})
    return (await asyncio.wait_for(layer.receive(channel), 10))["message"] == "marker"


async def stored(session_id: str) -> list[tuple[int, str]]:
    """The saved lines, in the order they were written."""
    return [(e.seq, e.text) async for e in TranscriptEntry.objects.filter(session_id=session_id).order_by("pk")]


async def new_session() -> str:
    return str((await VoiceSession.objects.acreate(room="room-finals", identity="alice", status="running")).id)


LINES = [
    messages.transcript("agent", "Hello! How can I help?", final=True),
    messages.transcript("user", "Book a", final=False),
    messages.transcript("user", "Book a table.", final=True),
    messages.agent_state("thinking"),
    messages.transcript("agent", "For how many people?", final=True),
]
FINALS = [(1, "Hello! How can I help?"), (3, "Book a table."), (5, "For how many people?")]


async def test_finals_said_while_the_database_is_down_are_written_in_order_once_it_is_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session_id = await new_session()
    database = FlakyDatabase(monkeypatch)
    follower = await follow(session_id)
    publisher = TranscriptPublisher(session_id)
    for line in LINES:
        publisher.publish(line)
    # The live stream does not wait for the database: everything is sent, in order.
    sent = await heard(follower, len(LINES))
    assert [m["seq"] for m in sent] == [1, 2, 3, 4, 5]
    assert [m.get("text") for m in sent] == [line.get("text") for line in LINES]
    await database.until(lambda: database.calls.count(1) >= 2)  # retried, still down
    assert database.written == []

    database.down = False
    await database.until(lambda: len(database.written) == len(FINALS))
    assert await stored(session_id) == FINALS  # in order, each once
    await publisher.aclose()
    assert database.written == [1, 3, 5]
    assert await heard_nothing_more(follower)  # no loss to report


async def test_a_final_written_before_its_answer_was_lost_is_not_written_twice(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    session_id = await new_session()
    database = FlakyDatabase(monkeypatch, down=False)
    database.answer_lost = {1}
    follower = await follow(session_id)
    publisher = TranscriptPublisher(session_id)
    publisher.publish(LINES[0])
    await database.until(lambda: database.calls == [1, 1])  # the retry meets the unique (session, seq)
    publisher.publish(LINES[2])
    with caplog.at_level(logging.ERROR, logger="app.voice.bridge"):
        await publisher.aclose()
    assert await stored(session_id) == [(1, "Hello! How can I help?"), (2, "Book a table.")]
    assert database.calls == [1, 1, 2]
    assert [m["seq"] for m in await heard(follower, 2)] == [1, 2]
    assert await heard_nothing_more(follower)
    assert not [r for r in caplog.records if r.getMessage() == "transcript.lines_lost"]


async def test_lines_past_a_full_buffer_and_unwritten_at_the_end_are_reported_lost_by_seq(
    monkeypatch: pytest.MonkeyPatch, settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.VOICE_FINALS_BUFFER = 2
    session_id = await new_session()
    database = FlakyDatabase(monkeypatch)  # down for good
    follower = await follow(session_id)
    overflowed = asyncio.Event()
    publisher = TranscriptPublisher(session_id, on_overflow=overflowed.set)
    finals = [messages.transcript("user", f"Line {n}.", final=True) for n in range(1, 5)]
    for line in finals:
        publisher.publish(line)
    await asyncio.wait_for(overflowed.wait(), 10)  # the third line found the buffer full
    with caplog.at_level(logging.ERROR, logger="app.voice.bridge"):
        await publisher.aclose()

    [lost] = [r for r in caplog.records if r.getMessage() == "transcript.lines_lost"]
    assert (lost.session_id, lost.seqs) == (session_id, [1, 2, 3, 4])
    assert "Line" not in lost.getMessage() + repr(vars(lost))  # seqs only, never the words
    sent = await heard(follower, 5)
    assert [m.get("text") for m in sent[:4]] == [line["text"] for line in finals]  # the live stream had them
    error = sent[4]
    assert error["seq"] == 5
    assert error["error"]["code"] == "transcript_lines_lost"
    assert error["error"]["seqs"] == [1, 2, 3, 4]
    assert "database" in error["error"]["message"]
    jsonschema.Draft202012Validator(messages.JSON_SCHEMA).validate(error)  # an error frame of the contract
    assert await stored(session_id) == []
    assert database.written == []


async def test_a_full_buffer_ends_the_session_with_an_error_naming_the_lost_lines(
    api, open_socket, gateway: FakeLiveKitGateway, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.VOICE_FINALS_BUFFER = 1
    FlakyDatabase(monkeypatch)
    response = await api.post("/session", json={"room": "room-full", "identity": "alice"})
    assert response.status_code == 201, response.content
    session_id = response.json()["session_id"]
    socket = await open_socket(f"/ws/transcript/{session_id}")
    # The greeting is sent though not saved: it fills the buffer.
    greeting = (await receive_until(socket, lambda m: m.get("role") == "agent" and m.get("final") is True))[-1]
    await gateway.rooms["room-full"].person_types("Book a table.")
    received = await receive_until(socket, lambda m: m.get("event") == "session_ended")
    typed = next(m for m in received if m.get("typed") is True)
    [error] = [m for m in received if "error" in m]
    assert error["error"]["code"] == "transcript_lines_lost"
    assert {greeting["seq"], typed["seq"]} <= set(error["error"]["seqs"])
    assert received[-1] == {"event": "session_ended", "reason": "error"}
    session = await VoiceSession.objects.aget(pk=session_id)
    assert (session.status, session.end_reason) == ("ended", "error")
