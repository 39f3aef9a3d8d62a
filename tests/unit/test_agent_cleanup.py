"""Every way a session ends releases everything and says so, without the Stop button too.

Each test prints the measured time from the trigger to the session's end.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from app.voice.agent.host import get_host
from app.voice.models import TranscriptEntry, VoiceSession
from fakes.livekit import FakeLiveKitGateway, PersonScript
from tests.unit.support import receive_until, visitor_of

pytestmark = pytest.mark.django_db(transaction=True)


async def start(api, room: str, identity: str = "alice") -> str:
    response = await api.post("/session", json={"room": room, "identity": identity})
    assert response.status_code == 201, response.content
    return response.json()["session_id"]


async def wait_ended(socket) -> tuple[str, float]:
    started = time.monotonic()
    messages = await receive_until(socket, lambda m: m.get("event") == "session_ended")
    return messages[-1]["reason"], time.monotonic() - started


async def assert_released(session_id: str, gateway: FakeLiveKitGateway, room: str, reason: str) -> None:
    session = await VoiceSession.objects.aget(pk=session_id)
    assert (session.status, session.end_reason) == ("ended", reason)
    assert session.ended_at is not None
    assert gateway.rooms[room].closed
    assert session_id not in get_host().runs


@pytest.mark.parametrize(
    ("event", "reason"),
    [("person_leaves", "participant_left"), ("lose_connection", "error"), ("lose_node", "error")],
    ids=["participant-left", "connection-lost", "node-lost"],
)
async def test_the_room_going_away_ends_the_session(api, open_socket, gateway, event: str, reason: str) -> None:
    """The person leaving (tab closed, network gone), the agent's own LiveKit link failing, or
    the person gone as the agent's link comes back (the LiveKit node hosting the room died)."""
    session_id = await start(api, f"room-{event}")
    socket = await open_socket(f"/ws/transcript/{session_id}")
    getattr(gateway.rooms[f"room-{event}"], event)()
    ended_with, seconds = await wait_ended(socket)
    print(f"\n{event} → session ended in {seconds * 1000:.0f} ms")
    assert ended_with == reason
    await assert_released(session_id, gateway, f"room-{event}", reason)


async def test_nobody_joining_ends_it_after_the_participant_timeout(api, open_socket, gateway, settings) -> None:
    settings.VOICE_PARTICIPANT_TIMEOUT = 0.5
    gateway.script_room("room-empty", PersonScript(present=False))
    session_id = await start(api, "room-empty")
    socket = await open_socket(f"/ws/transcript/{session_id}")
    reason, seconds = await wait_ended(socket)
    print(f"\nnobody joined → session ended {seconds * 1000:.0f} ms after the socket opened")
    assert reason == "participant_left"
    await assert_released(session_id, gateway, "room-empty", "participant_left")


async def test_shutdown_ends_every_live_session(api, open_socket, gateway) -> None:
    ids = [await start(api, f"room-shutdown-{n}") for n in range(2)]
    started = time.monotonic()
    await get_host().shutdown()
    print(f"\nshutdown of 2 sessions took {(time.monotonic() - started) * 1000:.0f} ms")
    for n, session_id in enumerate(ids):
        await assert_released(session_id, gateway, f"room-shutdown-{n}", "shutdown")
    assert not await VoiceSession.objects.exclude(status="ended").aexists()


async def test_delete_of_a_session_whose_host_is_gone_still_ends_it(api, settings) -> None:
    """The row is live but no process hosts its agent (it crashed): DELETE must not hang."""
    settings.VOICE_STOP_TIMEOUT = 0.3
    orphan = await VoiceSession.objects.acreate(
        room="room-orphan", identity="bob", status="running", visitor=await visitor_of(api)
    )
    response = await api.delete(f"/session/{orphan.id}")
    assert response.status_code == 204
    await orphan.arefresh_from_db()
    assert (orphan.status, orphan.end_reason) == ("ended", "deleted")


async def test_stop_is_idempotent_and_repeat_delete_is_harmless(api, gateway) -> None:
    session_id = await start(api, "room-twice")
    first, second = await asyncio.gather(api.delete(f"/session/{session_id}"), api.delete(f"/session/{session_id}"))
    assert (first.status_code, second.status_code) == (204, 204)
    assert (await api.delete(f"/session/{session_id}")).status_code == 204
    await assert_released(session_id, gateway, "room-twice", "deleted")


async def test_two_sessions_at_once_do_not_cross_talk(
    api, open_socket, gateway, speech_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = {"room-a": ["Alpha speaking here."], "room-b": ["Bravo speaking here."]}
    monkeypatch.setenv("FAKE_STT_SCRIPTS", json.dumps(scripts))
    for room in scripts:
        gateway.script_room(room, PersonScript.saying(speech_wav, speak_after=4.0))
    ids = {room: await start(api, room, identity=f"user-{room}") for room in scripts}
    sockets = {room: await open_socket(f"/ws/transcript/{ids[room]}") for room in scripts}

    async def conversation(room: str) -> list[dict]:
        """The socket's messages up to the agent's final answer to its own person (the same
        words come first as agent_partial messages, while the answer is being played)."""
        expected = f"You said: {scripts[room][0]}"
        return await receive_until(
            sockets[room], lambda m: m.get("role") == "agent" and m.get("final") is True and m["text"] == expected,
            timeout=40,
        )

    streams = dict(zip(scripts, await asyncio.gather(*(conversation(r) for r in scripts)), strict=True))
    for room, other in (("room-a", "room-b"), ("room-b", "room-a")):
        finals = [(m["role"], m["text"]) for m in streams[room] if m.get("final")]
        assert ("user", scripts[room][0]) in finals  # each socket carries its own person's words
        heard = [m["text"] for m in streams[room] if m.get("type") == "agent_partial"]
        assert heard and heard[-1] == f"You said: {scripts[room][0]}"  # and its own agent's words
        texts = " ".join(m.get("text", "") for m in streams[room])  # finals, interims and partials
        assert scripts[other][0].split()[0] not in texts  # "Alpha" never reaches Bravo's socket
        stored = [e.text async for e in TranscriptEntry.objects.filter(session_id=ids[room])]
        assert scripts[room][0] in stored and f"You said: {scripts[room][0]}" in stored
        assert not any(scripts[other][0] in text for text in stored)
    for session_id in ids.values():
        assert (await api.delete(f"/session/{session_id}")).status_code == 204


async def test_sweeper_ends_sessions_whose_host_went_silent(api, gateway, settings) -> None:
    """A host that dies stops its heartbeat; every web process's sweeper ends its sessions."""
    from datetime import timedelta

    from django.utils import timezone

    from app.voice.sessions import sweeper

    settings.VOICE_HEARTBEAT_TIMEOUT = 20.0
    live_id = await start(api, "room-alive")  # heartbeats: must survive the sweep
    long_ago = timezone.now() - timedelta(seconds=60)
    dead = await VoiceSession.objects.acreate(room="room-dead", identity="x", status="running", heartbeat_at=long_ago)
    never = await VoiceSession.objects.acreate(room="room-never", identity="y")
    await VoiceSession.objects.filter(pk=never.pk).aupdate(created_at=long_ago)

    assert await sweeper.sweep_once() == 2
    for orphan in (dead, never):
        await orphan.arefresh_from_db()
        assert (orphan.status, orphan.end_reason) == ("ended", "error")
    assert (await VoiceSession.objects.aget(pk=live_id)).status == "running"
    assert (await api.delete(f"/session/{live_id}")).status_code == 204
