"""The transcript socket's messages (app.voice.contract.messages): the builders, the models
they go through, and the JSON Schema generated from the models.

The requirement's shapes (interim, final, speech event) keep their keys and values; the
added keys ride along, and the added messages carry a `type` and no `role`, so a client
that switches on `role` never mistakes them for transcript lines."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import TypeAdapter

from app.voice.contract import messages

LATENCY: messages.Latency = {"total_ms": 850, "end_of_turn_ms": 500, "stt_ms": 320, "llm_ms": 120, "tts_ms": 90}
TYPED_LATENCY: messages.Latency = {"total_ms": 240, "end_of_turn_ms": None, "stt_ms": None, "llm_ms": 120, "tts_ms": 90}

REQUIREMENT_KEYS = {"role", "text", "final"}

# Every message the server sends, by what it is.
BUILT: dict[str, messages.Message] = {
    "user interim": messages.transcript("user", "Hello can", final=False),
    "user final spoken": messages.transcript("user", "Hello, can you hear me?", final=True),
    "user final typed": messages.transcript("user", "Book a table", final=True, typed=True),
    "agent final": messages.transcript("agent", "You said: hello", final=True, latency=LATENCY),
    "agent final typed turn": messages.transcript("agent", "You said: book", final=True, latency=TYPED_LATENCY),
    "agent final cut off": messages.transcript("agent", "Hi! I am", final=True, interrupted=True),
    "greeting": messages.transcript("agent", "Hi! How can I help?", final=True),
    **{
        f"{role} {event}": messages.speech(role, event)
        for role in messages.ROLES
        for event in ("speech_started", "speech_ended")
    },
    **{f"agent state {state}": messages.agent_state(state) for state in messages.AGENT_STATES},
    "agent partial": messages.agent_partial("You said:"),
    "session ended": messages.session_ended("deleted"),
    "pong": messages.pong(),
    "error": messages.error_body("unsupported_frame", "Only pings are accepted.", retry_after=3),
}
ADDED = ["agent partial", "pong", *(f"agent state {state}" for state in messages.AGENT_STATES)]

validator = jsonschema.Draft202012Validator(messages.JSON_SCHEMA)
server_message: TypeAdapter[messages.ServerMessage] = TypeAdapter(messages.ServerMessage)


def test_the_schema_itself_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(messages.JSON_SCHEMA)


@pytest.mark.parametrize("name", list(BUILT))
def test_every_built_message_validates_with_and_without_its_seq(name: str) -> None:
    message = BUILT[name]
    validator.validate(message)
    if name not in ("session ended", "error", "pong"):  # the ones the publisher numbers
        validator.validate(messages.with_seq(message, 7))


@pytest.mark.parametrize("name", list(BUILT))
def test_every_built_message_parses_back_into_its_model_unchanged(name: str) -> None:
    message = BUILT[name]
    assert server_message.validate_python(message).model_dump() == message


def test_an_interim_is_exactly_the_requirements_shape_byte_for_byte() -> None:
    assert json.dumps(BUILT["user interim"]) == '{"role": "user", "text": "Hello can", "final": false}'


def test_finals_keep_the_requirements_keys_first_then_the_added_ones() -> None:
    typed = '{"role": "user", "text": "Book a table", "final": true, "typed": true}'
    greeting = '{"role": "agent", "text": "Hi", "final": true, "interrupted": false, "latency": null, "seq": 3}'
    assert json.dumps(BUILT["user final typed"]) == typed
    assert json.dumps(messages.with_seq(messages.transcript("agent", "Hi", final=True), 3)) == greeting


@pytest.mark.parametrize(
    ("name", "role", "text", "added"),
    [
        ("user final spoken", "user", "Hello, can you hear me?", {"typed": False}),
        ("user final typed", "user", "Book a table", {"typed": True}),
        ("agent final", "agent", "You said: hello", {"interrupted": False, "latency": dict(LATENCY)}),
        ("agent final cut off", "agent", "Hi! I am", {"interrupted": True, "latency": None}),
        ("greeting", "agent", "Hi! How can I help?", {"interrupted": False, "latency": None}),
    ],
)
def test_a_final_keeps_the_requirements_keys_and_values_plus_only_its_added_keys(
    name: str, role: str, text: str, added: dict
) -> None:
    message = BUILT[name]
    assert {key: message[key] for key in REQUIREMENT_KEYS} == {"role": role, "text": text, "final": True}
    assert {key: value for key, value in message.items() if key not in REQUIREMENT_KEYS} == added
    assert messages.is_final_transcript(message)


def test_speech_events_are_exactly_role_and_event() -> None:
    assert [BUILT[f"{role} {event}"] for role in ("user", "agent") for event in ("speech_started", "speech_ended")] == [
        {"role": "user", "event": "speech_started"},
        {"role": "user", "event": "speech_ended"},
        {"role": "agent", "event": "speech_started"},
        {"role": "agent", "event": "speech_ended"},
    ]


@pytest.mark.parametrize("name", ADDED)
def test_added_messages_carry_a_type_and_no_role_so_role_based_clients_ignore_them(name: str) -> None:
    message = BUILT[name]
    assert "type" in message and "role" not in message
    assert not messages.is_final_transcript(message)


def test_added_messages_say_what_they_carry() -> None:
    assert messages.agent_state("thinking") == {"type": "agent_state", "state": "thinking"}
    assert messages.agent_partial("You said: hi") == {"type": "agent_partial", "text": "You said: hi"}
    assert messages.pong() == {"type": "pong"}


def test_seq_is_added_to_a_copy_and_nothing_else_changes() -> None:
    message = messages.transcript("user", "Hi", final=True)
    numbered = messages.with_seq(message, 12)
    assert numbered == {**message, "seq": 12} and "seq" not in message


def test_the_latency_in_a_final_is_a_copy_with_every_part() -> None:
    latency = dict(LATENCY)
    message = messages.transcript("agent", "You said: hello", final=True, latency=latency)  # type: ignore[arg-type]
    latency["total_ms"] = 0
    assert message["latency"] == LATENCY and list(message["latency"]) == list(LATENCY)


@pytest.mark.parametrize(
    ("build", "complaint"),
    [
        (lambda: messages.transcript("system", "hi", final=True), "input_value='system'"),  # type: ignore[arg-type]
        (lambda: messages.transcript("agent", "hi", final=False), "AgentFinal.final"),
        (lambda: messages.transcript("user", "hi", final=True, interrupted=True), "UserFinal.interrupted"),
        (lambda: messages.transcript("agent", "hi", final=True, typed=True), "AgentFinal.typed"),
        (lambda: messages.transcript("user", "hi", final=False, typed=True), "UserInterim.typed"),
        (lambda: messages.transcript("user", "hi", final=True, latency=LATENCY), "UserFinal.latency"),
        (lambda: messages.agent_state("sleeping"), "input_value='sleeping'"),  # type: ignore[arg-type]
        (lambda: messages.speech("bot", "speech_started"), "input_value='bot'"),  # type: ignore[arg-type]
        (lambda: messages.speech("user", "speech_paused"), "input_value='speech_paused'"),  # type: ignore[arg-type]
    ],
    ids=[
        "role",
        "agent-interim",
        "user-interrupted",
        "agent-typed",
        "interim-typed",
        "user-latency",
        "agent-state",
        "speech-role",
        "speech-event",
    ],
)
def test_invalid_inputs_raise_value_error(build, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        build()


@pytest.mark.parametrize(
    "message",
    [
        {"role": "agent", "text": "hi", "final": False},  # agents have no interims
        {"role": "user", "text": "hi"},  # no final
        {"role": "agent", "text": "hi", "final": True, "latency": {"total_ms": 10}},  # parts missing
        {"role": "agent", "text": "hi", "final": True, "latency": {**LATENCY, "total_ms": -1}},
        {"role": "agent", "text": "hi", "final": True, "latency": {**LATENCY, "queue_ms": 3}},
        {"role": "agent", "text": "hi", "final": True, "seq": 0},
        {"role": "user", "event": "speech_paused"},
        {"type": "agent_state", "state": "sleeping"},
        {"type": "agent_partial"},
        {"event": "session_ended"},
        {"error": {"code": "x"}},
    ],
)
def test_the_schema_rejects_what_the_builders_cannot_make(message: dict) -> None:
    assert not validator.is_valid(message)


def test_the_schema_lets_clients_accept_added_keys() -> None:
    assert validator.is_valid({"role": "user", "text": "hi", "final": True, "typed": False, "ts": 1.5})
