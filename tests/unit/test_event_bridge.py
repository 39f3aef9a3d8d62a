"""The event bridge: AgentSession events → transcript-socket messages.

First the SessionBridge alone, fed the library's own event objects through an emitter
(no session, no room, no database); then the real AgentSession in a fake room, through
the HTTP API and the socket, for what only the running pipeline can show: typed lines,
the latency of real replies, and a reply cut off by the person.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest
from livekit import rtc
from livekit.agents.llm import ChatMessage, MetricsReport
from livekit.agents.voice.events import (
    AgentStateChangedEvent,
    ConversationItemAddedEvent,
    UserInputTranscribedEvent,
    UserStateChangedEvent,
)
from livekit.agents.voice.room_io import TextInputEvent

from app.voice.agent import event_bridge
from app.voice.contract import messages
from app.voice.models import TranscriptEntry
from fakes.livekit import FakeLiveKitGateway, PersonScript
from fakes.llm import DEFAULT_GREETING
from fakes.stt import DEFAULT_UTTERANCES
from tests.unit.support import receive_until

LATENCY_KEYS = {"total_ms", "end_of_turn_ms", "stt_ms", "llm_ms", "tts_ms"}


# ---- SessionBridge alone -------------------------------------------------------------------


class FakeSession(rtc.EventEmitter):
    """What the bridge and the library's default text-input handling use of an AgentSession:
    its events, and (for a typed line) claim the user's turn, interrupt, reply."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    @contextlib.asynccontextmanager
    async def _claim_user_turn(self) -> AsyncIterator[None]:
        self.calls.append("claim")
        yield

    async def interrupt(self) -> None:
        self.calls.append("interrupt")

    def generate_reply(self, *, user_input: str) -> None:
        self.calls.append(f"reply:{user_input}")


def bridged(clock: float = 0.0) -> tuple[FakeSession, event_bridge.SessionBridge, list[dict]]:
    """A bridge attached to a FakeSession, publishing into a list; its wall clock stands at `clock`."""
    session, sent = FakeSession(), []
    bridge = event_bridge.attach(session, sent.append, clock=lambda: clock)  # type: ignore[arg-type]
    return session, bridge, sent


def agent_state(session: FakeSession, old: str, new: str) -> None:
    session.emit("agent_state_changed", AgentStateChangedEvent(old_state=old, new_state=new))


def item_added(session: FakeSession, role: str, text: str, **fields: object) -> None:
    message = ChatMessage(role=role, content=[text], **fields)  # type: ignore[arg-type]
    session.emit("conversation_item_added", ConversationItemAddedEvent(item=message))


def partials(sent: list[dict]) -> list[str]:
    return [m["text"] for m in sent if m.get("type") == "agent_partial"]


def test_user_transcripts_become_interims_and_finals_and_blank_ones_are_dropped() -> None:
    session, _, sent = bridged()
    for text, final in [("Hello", False), ("   ", False), ("Hello there", True), ("", True)]:
        session.emit("user_input_transcribed", UserInputTranscribedEvent(transcript=text, is_final=final))
    assert sent == [
        {"role": "user", "text": "Hello", "final": False},
        {"role": "user", "text": "Hello there", "final": True, "typed": False},
    ]


def test_user_speaking_edges_become_speech_events_and_away_is_not_one() -> None:
    session, _, sent = bridged()
    for old, new in [("listening", "speaking"), ("speaking", "listening"), ("listening", "away")]:
        session.emit("user_state_changed", UserStateChangedEvent(old_state=old, new_state=new))
    assert sent == [
        {"role": "user", "event": "speech_started"},
        {"role": "user", "event": "speech_ended"},
    ]


def test_every_agent_state_is_sent_and_speaking_edges_also_as_speech_events() -> None:
    session, _, sent = bridged()
    for old, new in [("initializing", "listening"), ("listening", "thinking"), ("thinking", "speaking"),
                     ("speaking", "listening")]:
        agent_state(session, old, new)
    assert sent == [
        {"type": "agent_state", "state": "listening"},
        {"type": "agent_state", "state": "thinking"},
        {"type": "agent_state", "state": "speaking"},
        {"role": "agent", "event": "speech_started"},
        {"type": "agent_state", "state": "listening"},
        {"role": "agent", "event": "speech_ended"},
    ]


def test_spoken_words_grow_one_partial_each_and_blank_or_repeated_words_send_nothing() -> None:
    session, bridge, sent = bridged()
    agent_state(session, "listening", "thinking")
    for words in ["Hi!", " ", "I", "", " am", "  "]:
        bridge.spoken(words)
    assert partials(sent) == ["Hi!", "Hi! I", "Hi! I am"]


async def test_the_text_output_at_the_end_of_the_chain_feeds_the_partials() -> None:
    session, bridge, sent = bridged()
    agent_state(session, "listening", "thinking")
    await bridge.text_output.capture_text("Good")
    bridge.text_output.flush()  # the end of an audio segment: the reply goes on
    await bridge.text_output.capture_text(" morning")
    assert partials(sent) == ["Good", "Good morning"]


def test_a_finished_replys_late_words_are_dropped_and_the_next_reply_starts_from_nothing() -> None:
    session, bridge, sent = bridged()
    agent_state(session, "listening", "thinking")
    bridge.spoken("Hi")
    item_added(session, "assistant", "Hi there")
    bridge.spoken(" there")  # released by the synchroniser after the final line: already in it
    agent_state(session, "speaking", "listening")
    agent_state(session, "listening", "thinking")
    bridge.spoken("Next")
    assert partials(sent) == ["Hi", "Next"]
    finals = [m["text"] for m in sent if m.get("final")]
    assert finals == ["Hi there"]
    assert sent.index({"type": "agent_partial", "text": "Next"}) > sent.index(
        {"role": "agent", "text": "Hi there", "final": True, "interrupted": False, "latency": None}
    )


def test_an_interrupted_reply_is_final_with_only_the_words_said_and_says_it_was_cut_off() -> None:
    """livekit-agents puts in the interrupted ChatMessage only the synchronised transcript
    of what played; the bridge passes that text and the flag on, and drops the rest."""
    session, bridge, sent = bridged()
    agent_state(session, "listening", "thinking")
    bridge.spoken("Hi! I am")
    item_added(session, "assistant", "Hi! I am", interrupted=True)
    bridge.spoken(" your")
    assert sent[-1] == {"role": "agent", "text": "Hi! I am", "final": True, "interrupted": True, "latency": None}
    assert partials(sent) == ["Hi! I am"]


def test_user_items_and_blank_agent_items_publish_nothing() -> None:
    """User lines come from transcription (or the typed input), never from the chat context."""
    session, _, sent = bridged()
    item_added(session, "user", "Hello there", metrics={"stopped_speaking_at": 1.0})
    item_added(session, "assistant", "   ")
    item_added(session, "system", "You are a helpful assistant.")
    assert sent == []


def test_a_spoken_turns_reply_gets_its_latency_from_the_session_metrics() -> None:
    session, _, sent = bridged()
    turn: MetricsReport = {"stopped_speaking_at": 100.0, "end_of_turn_delay": 0.5, "transcription_delay": 0.3}
    item_added(session, "user", "Hello there", metrics=turn)
    reply: MetricsReport = {
        "started_speaking_at": 100.9, "e2e_latency": 0.9, "llm_node_ttft": 0.1, "tts_node_ttfb": 0.2
    }
    item_added(session, "assistant", "You said: Hello there", metrics=reply)
    assert sent[-1]["latency"] == {"total_ms": 900, "end_of_turn_ms": 500, "stt_ms": 300, "llm_ms": 100, "tts_ms": 200}


def test_only_the_first_reply_after_a_turn_answers_it() -> None:
    """A reply whose audio began before the turn ended (cut off by it) answers nothing and
    leaves the turn to the next reply; a second reply to the same turn has no latency."""
    session, _, sent = bridged()
    item_added(session, "user", "Hello there", metrics={"stopped_speaking_at": 100.0})
    item_added(session, "assistant", "Let me", interrupted=True, metrics={"started_speaking_at": 99.0})
    item_added(session, "assistant", "You said: Hello there", metrics={"started_speaking_at": 100.4})
    item_added(session, "assistant", "Anything else?", metrics={"started_speaking_at": 103.0})
    assert [(m["text"], m["latency"]) for m in sent] == [
        ("Let me", None),
        ("You said: Hello there",
         {"total_ms": 400, "end_of_turn_ms": None, "stt_ms": None, "llm_ms": None, "tts_ms": None}),
        ("Anything else?", None),
    ]


def test_a_greeting_answers_no_turn_so_has_no_latency() -> None:
    session, _, sent = bridged()
    item_added(session, "assistant", DEFAULT_GREETING, metrics={"started_speaking_at": 100.0, "llm_node_ttft": 0.1})
    assert sent[-1]["latency"] is None


async def test_a_typed_line_is_handled_by_the_library_then_sent_once_as_a_typed_final() -> None:
    session, bridge, sent = bridged(clock=200.0)
    await bridge.on_typed_input(session, TextInputEvent(text="  Book a table  "))  # type: ignore[arg-type]
    # The library's default handling ran (claim the turn, interrupt, reply) before the line was sent.
    assert session.calls == ["claim", "interrupt", "reply:  Book a table  "]
    assert sent == [{"role": "user", "text": "Book a table", "final": True, "typed": True}]
    # The typed message in the chat context has no speech metrics: the turn noted on arrival stays.
    item_added(session, "user", "  Book a table  ")
    item_added(session, "assistant", "You said: Book a table",
               metrics={"started_speaking_at": 200.25, "llm_node_ttft": 0.05, "tts_node_ttfb": 0.1})
    assert sent[-1]["latency"] == {"total_ms": 250, "end_of_turn_ms": None, "stt_ms": None, "llm_ms": 50, "tts_ms": 100}


async def test_a_blank_typed_line_does_nothing_at_all() -> None:
    session, bridge, sent = bridged()
    await bridge.on_typed_input(session, TextInputEvent(text=" \n "))  # type: ignore[arg-type]
    assert (session.calls, sent) == ([], [])


def test_everything_the_bridge_sends_validates_against_the_message_schema() -> None:
    session, bridge, sent = bridged(clock=0.0)
    session.emit("user_input_transcribed", UserInputTranscribedEvent(transcript="Hi", is_final=False))
    session.emit("user_state_changed", UserStateChangedEvent(old_state="listening", new_state="speaking"))
    item_added(session, "user", "Hi", metrics={"stopped_speaking_at": 1.0, "end_of_turn_delay": 0.2})
    agent_state(session, "listening", "thinking")
    agent_state(session, "thinking", "speaking")
    bridge.spoken("Hello")
    item_added(session, "assistant", "Hello", metrics={"started_speaking_at": 1.5, "llm_node_ttft": 0.1})
    assert len(sent) == 7
    validator = jsonschema.Draft202012Validator(messages.JSON_SCHEMA)
    for seq, message in enumerate(sent, start=1):
        validator.validate(messages.with_seq(message, seq))


# ---- the real AgentSession in a fake room ----------------------------------------------------

db = pytest.mark.django_db(transaction=True)


async def start(api, room: str) -> str:
    response = await api.post("/session", json={"room": room, "identity": "alice"})
    assert response.status_code == 201, response.content
    return response.json()["session_id"]


def agent_final(text: str):
    return lambda m: m.get("role") == "agent" and m.get("final") is True and m.get("text") == text


def without_seq(message: dict) -> dict:
    return {k: v for k, v in message.items() if k != "seq"}


def assert_latency_part(value: object) -> None:
    assert isinstance(value, int) and not isinstance(value, bool) and value >= 0, value


@db
async def test_a_typed_line_is_a_typed_user_final_and_its_answer_has_a_latency_without_speech_parts(
    api, open_socket, gateway: FakeLiveKitGateway
) -> None:
    session_id = await start(api, "room-typed")  # the person stays silent
    socket = await open_socket(f"/ws/transcript/{session_id}")
    await receive_until(socket, agent_final(DEFAULT_GREETING), timeout=30)  # the greeting is over

    line = "Please book a table for two"
    await gateway.rooms["room-typed"].person_types(line)
    received = await receive_until(socket, agent_final(f"You said: {line}"), timeout=30)

    user_finals = [without_seq(m) for m in received if m.get("role") == "user" and m.get("final")]
    assert user_finals == [{"role": "user", "text": line, "final": True, "typed": True}]
    typed_seq = next(m["seq"] for m in received if m.get("text") == line)
    reply = received[-1]
    assert reply["seq"] > typed_seq and reply["interrupted"] is False
    latency = reply["latency"]
    assert set(latency) == LATENCY_KEYS
    assert (latency["end_of_turn_ms"], latency["stt_ms"]) == (None, None)  # nothing was spoken
    for part in ("total_ms", "llm_ms", "tts_ms"):
        assert_latency_part(latency[part])
    # The reply's words came after the typed line, and were heard up to the whole reply.
    reply_partials = [m for m in received if m.get("type") == "agent_partial" and m["seq"] > typed_seq]
    assert reply_partials and reply_partials[-1]["text"] == f"You said: {line}"

    entries = [e async for e in TranscriptEntry.objects.filter(session_id=session_id).order_by("seq")]
    assert [(e.role, e.text, e.typed, e.latency) for e in entries] == [
        ("agent", DEFAULT_GREETING, False, None),
        ("user", line, True, None),  # once: the chat context's copy of the line is not sent again
        ("agent", f"You said: {line}", False, latency),
    ]
    assert (await api.delete(f"/session/{session_id}")).status_code == 204


@db
async def test_a_spoken_turns_answer_has_every_latency_part_and_the_greeting_has_none(
    api, open_socket, gateway: FakeLiveKitGateway, speech_wav: Path
) -> None:
    gateway.script_room("room-spoken", PersonScript.saying(speech_wav, speak_after=4.0))
    session_id = await start(api, "room-spoken")
    socket = await open_socket(f"/ws/transcript/{session_id}")
    said = DEFAULT_UTTERANCES[0]
    received = await receive_until(socket, agent_final(f"You said: {said}"), timeout=30)

    finals = {m["text"]: m for m in received if m.get("final") is True}
    assert finals[DEFAULT_GREETING]["latency"] is None
    assert finals[said]["typed"] is False
    latency = finals[f"You said: {said}"]["latency"]
    assert set(latency) == LATENCY_KEYS
    # The parts overlap (see messages.Latency): each is only known to be a whole, non-negative
    # number of milliseconds, and the end-of-turn wait to be part of the total.
    for part in LATENCY_KEYS:
        assert_latency_part(latency[part])
    assert latency["total_ms"] >= latency["end_of_turn_ms"]

    stored = {e.text: e async for e in TranscriptEntry.objects.filter(session_id=session_id)}
    assert stored[f"You said: {said}"].latency == latency
    assert stored[DEFAULT_GREETING].latency is None and stored[said].latency is None
    assert (await api.delete(f"/session/{session_id}")).status_code == 204


@db
async def test_typing_over_the_agent_cuts_its_line_to_the_words_played_before_the_typed_line(
    api, open_socket, gateway: FakeLiveKitGateway
) -> None:
    session_id = await start(api, "room-cut")
    socket = await open_socket(f"/ws/transcript/{session_id}")
    # The greeting is being heard: its words so far reach "voice" ("Hi! I am your voice ...").
    heard = await receive_until(socket, lambda m: m.get("type") == "agent_partial" and "voice" in m["text"])
    await gateway.rooms["room-cut"].person_types("Stop please")
    received = heard + await receive_until(socket, agent_final("You said: Stop please"), timeout=30)

    cut = next(m for m in received if m.get("role") == "agent" and m.get("final"))
    assert cut["interrupted"] is True and cut["latency"] is None
    # Only what was played: a non-empty beginning of the greeting, not all of it.
    assert cut["text"] and DEFAULT_GREETING.startswith(cut["text"]) and cut["text"] != DEFAULT_GREETING
    greeting_partials = [m for m in received if m.get("type") == "agent_partial" and m["seq"] < cut["seq"]]
    assert greeting_partials[-1]["text"].startswith(cut["text"])
    # The cut line is sent before the typed line that cut it, and no greeting word after it.
    typed = next(m for m in received if m.get("role") == "user" and m.get("final"))
    assert (typed["text"], typed["typed"]) == ("Stop please", True) and cut["seq"] < typed["seq"]
    later = [m["text"] for m in received if m.get("type") == "agent_partial" and m["seq"] > cut["seq"]]
    assert later and all("You said: Stop please".startswith(text) for text in later)

    entries = [e async for e in TranscriptEntry.objects.filter(session_id=session_id).order_by("seq")]
    assert [(e.role, e.text, e.interrupted, e.typed) for e in entries] == [
        ("agent", cut["text"], True, False),
        ("user", "Stop please", False, True),
        ("agent", "You said: Stop please", False, False),
    ]
    assert (await api.delete(f"/session/{session_id}")).status_code == 204
