"""Push-to-talk on a real AgentSession: with it on, the microphone is heard only while the
person holds the key, and the agent takes the turn on release; switched off, hands-free is
back. The page's calls (LiveKit RPC to the agent) are checked: only the person may make
them, and only in the shape they have.

A real session (Silero VAD on real speech) in a fake room, reached through the API as the
page does. The fake recogniser gives the person's speech the script's lines in order, each
line to the first speech it hears after the last one: which line a turn holds tells whether
the recogniser heard speech said before it. The fake room's microphone drops its frames
while the session's audio input is off, as RoomIO's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from channels.testing import WebsocketCommunicator
from livekit import rtc

from app.voice.agent import push_to_talk as ptt
from app.voice.agent.providers import ProviderSet, shared_vad, using_providers
from app.voice.sessions.info import SessionInfo
from fakes.livekit import FakeLiveKitGateway, FakeRoom, PersonScript, ScriptedMicrophone, read_wav
from fakes.llm import DEFAULT_GREETING, DEFAULT_REPLY, ScriptedLLM
from fakes.stt import ScriptedSTT
from fakes.tts import ToneTTS
from tests.unit.support import SPEECH_WAV

# The recogniser's lines, in the order it hears speech.
LINES = ("Hello agent, can you hear me?", "Please tell me a short story.", "Thank you, bye.")
SPEECH, RATE = read_wav(SPEECH_WAV)
# A person lets go of the key a moment after their last word.
RELEASE_AFTER = np.zeros(int(0.3 * RATE), dtype=np.int16)
# Long enough for any of these conversations, with room to spare on a loaded machine.
CONVERSATION_SECONDS = 20.0

db = pytest.mark.django_db(transaction=True)


def providers(info: SessionInfo) -> ProviderSet:
    """The fake set with the recogniser's lines above."""
    return ProviderSet(vad=shared_vad(), stt=ScriptedSTT(utterances=LINES), llm=ScriptedLLM(), tts=ToneTTS())


@pytest.fixture(autouse=True)
def _push_to_talk_providers() -> Iterator[None]:
    with using_providers(providers):
        yield


@dataclass
class Conversation:
    """One live session, as its page sees it: the socket's messages, the person's microphone
    and their calls to the agent."""

    session_id: str
    room: FakeRoom
    socket: WebsocketCommunicator
    received: list[dict[str, Any]]

    @property
    def microphone(self) -> ScriptedMicrophone:
        assert isinstance(self.room.microphone, ScriptedMicrophone)
        return self.room.microphone

    async def until(self, condition: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """The socket's messages until `condition(all so far)` holds, or the time a
        conversation takes (the assertions then say what was missing)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONVERSATION_SECONDS):
                while not condition(self.received):
                    self.received.append(await self.socket.receive_json_from(timeout=CONVERSATION_SECONDS))
        return self.received

    async def call(self, method: str, body: object = None, *, caller: str | None = None) -> dict[str, Any]:
        payload = "" if body is None else body if isinstance(body, str) else json.dumps(body)
        answer: dict[str, Any] = json.loads(await self.room.person_calls(method, payload, caller=caller))
        return answer

    async def says(self, *parts: np.ndarray) -> None:
        """The person says this now; returns once it has been said (heard or not)."""
        self.microphone.say(np.concatenate(parts))
        await self.microphone.said()

    async def holds_and_says(self, *parts: np.ndarray) -> None:
        assert await self.call(ptt.START_TURN) == {"enabled": True, "held": True}
        await self.says(*parts)
        assert await self.call(ptt.END_TURN) == {"enabled": True, "held": False}

    def user_lines(self) -> list[str]:
        return [m["text"] for m in self.received if m.get("role") == "user" and m.get("final") is True]

    def agent_lines(self) -> list[tuple[str, bool]]:
        return [(m["text"], m["interrupted"]) for m in self.received if m.get("role") == "agent" and m.get("final")]

    def turns(self) -> list[str]:
        """The person's turns in the session's own history (what the agent answers)."""
        assert self.room.session is not None
        return [item.text_content or "" for item in self.room.session.history.items
                if item.type == "message" and item.role == "user"]


def is_final(role: str, text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("role") == role and m.get("final") is True and m.get("text") == text


def answered(line: str) -> Callable[[list[dict[str, Any]]], bool]:
    """`line` is a user final and the agent's answer to it came after it."""

    def check(received: list[dict[str, Any]]) -> bool:
        user = next((m for m in received if is_final("user", line)(m)), None)
        reply = DEFAULT_REPLY.format(text=line)
        return user is not None and any(is_final("agent", reply)(m) and m["seq"] > user["seq"] for m in received)

    return check


def agent_said_words(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda received: any(
        m.get("type") == "agent_partial" and len(m["text"].split()) >= count for m in received
    )


def user_speech_starts(received: list[dict[str, Any]]) -> int:
    return sum(1 for m in received if m.get("role") == "user" and m.get("event") == "speech_started")


Start = Callable[[], Awaitable[Conversation]]


@pytest.fixture
async def conversation(api, open_socket, gateway: FakeLiveKitGateway) -> AsyncIterator[Start]:
    """Start a session whose person is silent until the test makes them speak; every session
    is stopped at teardown."""
    sessions: list[str] = []

    async def start() -> Conversation:
        room = f"room-ptt-{len(sessions)}"
        gateway.script_room(room, PersonScript(speech=None, sample_rate=RATE))
        response = await api.post("/session", json={"room": room, "identity": "alice"})
        assert response.status_code == 201, response.content
        sessions.append(session_id := response.json()["session_id"])
        socket = await open_socket(f"/ws/transcript/{session_id}")
        return Conversation(session_id, gateway.rooms[room], socket, [])

    yield start
    for session_id in sessions:
        assert (await api.delete(f"/session/{session_id}")).status_code == 204


# ---- turns -----------------------------------------------------------------------------------


@db
async def test_with_push_to_talk_only_held_speech_is_a_turn_and_it_is_answered_on_release(conversation: Start) -> None:
    talk = await conversation()
    assert await talk.call(ptt.SET_MODE, {"enabled": True}) == {"enabled": True, "held": False}
    await talk.says(SPEECH, RELEASE_AFTER)  # nobody holds the key: nobody hears
    await talk.holds_and_says(SPEECH, RELEASE_AFTER)
    await talk.until(answered(LINES[0]))
    # The recogniser heard the held speech only: it is the script's first line, the one turn,
    # and the only time the person was heard speaking.
    assert talk.user_lines() == [LINES[0]]
    assert talk.turns() == [LINES[0]]
    assert user_speech_starts(talk.received) == 1
    assert answered(LINES[0])(talk.received), talk.received


@db
async def test_a_cancelled_hold_is_no_turn(conversation: Start) -> None:
    talk = await conversation()
    await talk.call(ptt.SET_MODE, {"enabled": True})
    assert await talk.call(ptt.START_TURN) == {"enabled": True, "held": True}
    await talk.says(SPEECH, RELEASE_AFTER)
    assert await talk.call(ptt.CANCEL_TURN) == {"enabled": True, "held": False}
    await talk.holds_and_says(SPEECH, RELEASE_AFTER)
    await talk.until(answered(LINES[1]))
    # The cancelled words (the first line) were neither a line, nor a turn, nor answered (the
    # press also cut the greeting, maybe before its first word: it may have no line).
    assert talk.user_lines() == [LINES[1]]
    assert talk.turns() == [LINES[1]]
    replies = [text for text, _ in talk.agent_lines() if not DEFAULT_GREETING.startswith(text)]
    assert replies == [DEFAULT_REPLY.format(text=LINES[1])]


@db
async def test_switched_off_it_is_hands_free_again(conversation: Start) -> None:
    talk = await conversation()
    await talk.call(ptt.SET_MODE, {"enabled": True})
    await talk.says(SPEECH, RELEASE_AFTER)  # not held: not heard
    assert await talk.call(ptt.SET_MODE, {"enabled": False}) == {"enabled": False, "held": False}
    await talk.says(SPEECH)  # heard, and its end ends the turn: no key
    await talk.until(answered(LINES[0]))
    assert talk.user_lines() == [LINES[0]]
    assert talk.turns() == [LINES[0]]
    assert answered(LINES[0])(talk.received), talk.received


@db
async def test_pressing_stops_the_agent_and_a_silent_hold_gets_no_answer(conversation: Start) -> None:
    talk = await conversation()
    await talk.call(ptt.SET_MODE, {"enabled": True})
    await talk.until(agent_said_words(3))  # the greeting is being said
    await talk.holds_and_says(RELEASE_AFTER)  # press over it, say nothing, let go
    await talk.holds_and_says(SPEECH, RELEASE_AFTER)
    await talk.until(answered(LINES[0]))
    # The greeting was cut by the press; the silent hold was no turn and got no reply (the
    # scripted model would have greeted again, or echoed nothing).
    greeting, interrupted = talk.agent_lines()[0]
    assert interrupted and DEFAULT_GREETING.startswith(greeting) and greeting != DEFAULT_GREETING
    assert talk.turns() == [LINES[0]]
    assert [text for text, _ in talk.agent_lines()[1:]] == [DEFAULT_REPLY.format(text=LINES[0])]


# ---- the calls -------------------------------------------------------------------------------


def refusal_code(error: rtc.RpcError) -> str:
    assert error.data is not None
    code: str = json.loads(error.data)["code"]
    return code


BAD_SET_MODE = [
    "",
    "{}",
    "not json",
    "[true]",
    "null",
    '{"enabled": "yes"}',
    '{"enabled": 1}',
    '{"enabled": true, "also": 1}',
    json.dumps({"enabled": True, "padding": "x" * ptt.MAX_PAYLOAD_BYTES}),
]
BAD_TURN = ['{"now": true}', "[]", "1", "x" * (ptt.MAX_PAYLOAD_BYTES + 1)]


@db
async def test_bad_calls_are_refused_and_change_nothing(conversation: Start) -> None:
    talk = await conversation()
    for payload in BAD_SET_MODE:
        with pytest.raises(rtc.RpcError) as refused:
            await talk.call(ptt.SET_MODE, payload)
        assert (refused.value.code, refusal_code(refused.value)) == (ptt.BAD_REQUEST, "ptt_bad_request"), payload
    for method in (ptt.START_TURN, ptt.END_TURN, ptt.CANCEL_TURN):
        for payload in BAD_TURN:
            with pytest.raises(rtc.RpcError) as refused:
                await talk.call(method, payload)
            assert refused.value.code == ptt.BAD_REQUEST, (method, payload)
    # Holding needs push-to-talk on; letting go of nothing is harmless.
    with pytest.raises(rtc.RpcError) as refused:
        await talk.call(ptt.START_TURN)
    assert (refused.value.code, refusal_code(refused.value)) == (ptt.MODE_OFF, "ptt_off")
    assert await talk.call(ptt.END_TURN, {}) == {"enabled": False, "held": False}
    assert await talk.call(ptt.CANCEL_TURN) == {"enabled": False, "held": False}
    # Nobody but the person: another participant of the room can neither switch it nor hold.
    for method, body in ((ptt.SET_MODE, {"enabled": True}), (ptt.START_TURN, None), (ptt.END_TURN, None)):
        with pytest.raises(rtc.RpcError) as refused:
            await talk.call(method, body, caller="mallory")
        assert (refused.value.code, refusal_code(refused.value)) == (ptt.NOT_ALLOWED, "ptt_not_allowed")
    # Nothing above switched push-to-talk on: the person is heard hands-free.
    await talk.says(SPEECH)
    await talk.until(answered(LINES[0]))
    assert talk.turns() == [LINES[0]]


@db
async def test_calls_after_the_session_ended_are_refused(api, conversation: Start) -> None:
    talk = await conversation()
    assert (await api.delete(f"/session/{talk.session_id}")).status_code == 204
    with pytest.raises(rtc.RpcError) as refused:
        await talk.call(ptt.SET_MODE, {"enabled": True})
    assert (refused.value.code, refusal_code(refused.value)) == (ptt.UNAVAILABLE, "ptt_unavailable")
