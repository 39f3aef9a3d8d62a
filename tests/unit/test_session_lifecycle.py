"""A whole session offline: POST /session, one spoken turn heard by real Silero VAD,
the WS stream, DELETE, and everything released afterwards."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from app.voice.models import TranscriptEntry, VoiceSession
from fakes.livekit import FakeLiveKitGateway, PersonScript
from fakes.llm import DEFAULT_GREETING
from fakes.stt import DEFAULT_UTTERANCES
from tests.unit.support import receive_until

pytestmark = pytest.mark.django_db(transaction=True)


def _step(message: dict) -> str:
    """One of the requirement's messages as 'role:event' or 'role:interim|final:text', for
    sequence assertions (the added messages, with a `type` key and no role, are asserted apart)."""
    if "event" in message:
        return f"{message['role']}:{message['event']}"
    return f"{message['role']}:{'final' if message['final'] else 'interim'}:{message['text']}"


def _added(messages: list[dict], kind: str) -> list[dict]:
    return [m for m in messages if m.get("type") == kind]


async def test_one_turn_streams_the_contract_messages_then_delete_ends_it(
    api, open_socket, gateway: FakeLiveKitGateway, speech_wav: Path
) -> None:
    gateway.script_room("room-1", PersonScript.saying(speech_wav, speak_after=4.0))

    response = await api.post("/session", json={"room": "room-1", "identity": "alice"})
    assert response.status_code == 201, response.content
    session_id = response.json()["session_id"]
    socket = await open_socket(f"/ws/transcript/{session_id}")

    reply = f"You said: {DEFAULT_UTTERANCES[0]}"
    received = await receive_until(
        socket, lambda m: m.get("role") == "agent" and m.get("final") is True and m.get("text") == reply, timeout=30
    )
    # The agent is listening again once its reply is over.
    after = await receive_until(socket, lambda m: m.get("type") == "agent_state" and m["state"] == "listening")
    steps = [_step(m) for m in received if "type" not in m]
    print("\nobserved:", *steps, sep="\n  ")

    # The greeting (its final line, then the end of its speech), then the user's turn.
    assert steps[: steps.index("user:speech_started")][-2:] == [f"agent:final:{DEFAULT_GREETING}", "agent:speech_ended"]
    turn = steps[steps.index("user:speech_started") :]
    interims = [step for step in turn if step.startswith("user:interim:")]
    said = DEFAULT_UTTERANCES[0]
    assert turn[: len(interims) + 1] == ["user:speech_started", *interims]
    # The session's VAD and the STT's own VAD stream race to the end of speech: either
    # the speaking indicator or the final transcript may come first.
    assert sorted(turn[len(interims) + 1 : len(interims) + 3]) == sorted(
        ["user:speech_ended", f"user:final:{said}"]
    )
    assert turn[len(interims) + 3 :] == ["agent:speech_started", f"agent:final:{reply}"]
    # Interims reveal the utterance word by word while the person speaks.
    texts = [step.removeprefix("user:interim:") for step in interims]
    assert texts and all(said.startswith(t) for t in texts) and texts == sorted(texts, key=len)
    # Numbered without gaps from where this subscriber joined, so clients can order and dedupe
    # (the added messages too).
    seqs = [m["seq"] for m in received + after]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

    # The added messages carry a `type` and no `role`, so a client that knows only the
    # requirement's messages ignores them.
    assert all("role" not in m for m in received + after if "type" in m)
    # The agent's state around the reply: listening while the person speaks, then thinking,
    # speaking and listening again.
    turn_started = next(m["seq"] for m in received if m.get("role") == "user" and m.get("event") == "speech_started")
    user_final = next(m["seq"] for m in received if m.get("role") == "user" and m.get("final") is True)
    reply_final = received[-1]["seq"]
    states = _added(received + after, "agent_state")
    assert [m["state"] for m in states if m["seq"] < turn_started][-1:] == ["listening"]
    assert [m["state"] for m in states if m["seq"] > turn_started] == ["thinking", "speaking", "listening"]
    assert all(m["seq"] > user_final for m in states if m["seq"] > turn_started)
    # The reply's words, heard as they are played: growing, after the agent started speaking and
    # before its final line, the last of them the whole reply.
    agent_started = next(
        m["seq"] for m in received if m.get("role") == "agent" and m.get("event") == "speech_started"
        and m["seq"] > turn_started
    )
    words = _added([m for m in received if m["seq"] > turn_started], "agent_partial")
    assert words and all(agent_started < m["seq"] < reply_final for m in words)
    heard = [m["text"] for m in words]
    assert all(later.startswith(earlier) and later != earlier for earlier, later in pairwise(heard))
    assert heard[-1] == reply
    assert not _added(after, "agent_partial")  # nothing of the reply after its final line

    room = gateway.rooms["room-1"]
    assert room.speaker.rms() > 0.05  # the agent's audio is really audio

    response = await api.delete(f"/session/{session_id}")
    assert response.status_code == 204
    ended = await receive_until(socket, lambda m: m.get("event") == "session_ended")
    assert ended[-1] == {"event": "session_ended", "reason": "deleted"}
    assert (await socket.receive_output(timeout=5))["type"] == "websocket.close"

    session = await VoiceSession.objects.aget(pk=session_id)
    assert (session.status, session.end_reason) == ("ended", "deleted")
    texts = [e.text async for e in TranscriptEntry.objects.filter(session=session).order_by("seq")]
    assert texts[:3] == [DEFAULT_GREETING, DEFAULT_UTTERANCES[0], reply]
    assert room.closed
    # No task of the session outlives it: the conftest's leak check fails the test otherwise.
