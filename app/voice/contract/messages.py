"""The WebSocket message schema and the error body, in one place.

Every message the transcript socket carries is built here, so the event bridge,
persistence, the consumer and the tests agree on the exact shapes the requirements
name (interim, final, speech events). Keys may be added (``seq``, ``interrupted``,
``typed``, ``latency``), never renamed or removed. Messages beyond the requirement's
carry a ``type`` key (``agent_state``, ``agent_partial``, ``pong``), so a client that
knows only the requirement's shapes can ignore them. ``JSON_SCHEMA`` describes them
all. HTTP errors and WebSocket error frames share ``error_body``.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, get_args

Role = Literal["user", "agent"]
SpeechEvent = Literal["speech_started", "speech_ended"]
AgentState = Literal["initializing", "listening", "thinking", "speaking", "idle"]
ROLES: tuple[Role, ...] = ("user", "agent")
AGENT_STATES: tuple[AgentState, ...] = get_args(AgentState)

Message = dict[str, Any]


class Latency(TypedDict):
    """One reply's latency in whole milliseconds: ``total_ms`` from the end of the person's
    speech (or the typed message) to the agent's first audio; its parts from the session's
    metrics, None where a part does not apply (a typed turn has no end-of-turn wait or STT).
    The parts overlap (the transcript is awaited during the end-of-turn wait), so they need
    not add up to the total."""

    total_ms: int
    end_of_turn_ms: int | None
    stt_ms: int | None
    llm_ms: int | None
    tts_ms: int | None


LATENCY_PARTS = ("end_of_turn_ms", "stt_ms", "llm_ms", "tts_ms")


def transcript(
    role: Role,
    text: str,
    *,
    final: bool,
    interrupted: bool = False,
    typed: bool = False,
    latency: Latency | None = None,
) -> Message:
    """Interim (user only) or final transcript line. Added keys: a user's final says whether
    it was typed rather than spoken (``typed``); an agent's final says whether the person cut
    it off (``interrupted``) and how long the reply took to start (``latency``, None for a
    line that answers no turn, like the greeting)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if role == "agent" and not final:
        raise ValueError("agent transcripts are always final")
    if interrupted and role != "agent":
        raise ValueError("only the agent's lines can be interrupted")
    if typed and (role != "user" or not final):
        raise ValueError("only the user's final lines can be typed")
    if latency is not None and role != "agent":
        raise ValueError("only the agent's lines have a latency")
    message: Message = {"role": role, "text": text, "final": final}
    if role == "agent":
        message["interrupted"] = interrupted
        message["latency"] = None if latency is None else dict(latency)
    elif final:
        message["typed"] = typed
    return message


def agent_state(state: str) -> Message:
    """The agent's state changed (added message)."""
    if state not in AGENT_STATES:
        raise ValueError(f"unknown agent state {state!r}")
    return {"type": "agent_state", "state": state}


def agent_partial(text: str) -> Message:
    """The words of the agent's current reply heard so far, in step with its audio (added
    message); the reply's final line follows."""
    return {"type": "agent_partial", "text": text}


def speech(role: Role, event: SpeechEvent) -> Message:
    """Someone started or stopped speaking."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if event not in ("speech_started", "speech_ended"):
        raise ValueError(f"unknown speech event {event!r}")
    return {"role": role, "event": event}


def session_ended(reason: str) -> Message:
    """Announced just before the server closes the socket at the end of a session."""
    return {"event": "session_ended", "reason": reason}


def pong() -> Message:
    """Answer to a client's {"type": "ping"} keep-alive."""
    return {"type": "pong"}


def error_body(code: str, message: str, **extra: Any) -> Message:
    """The one error shape, for HTTP answers and WebSocket error frames alike:
    ``{"error": {"code": snake_case, "message": human text, ...extra}}``."""
    return {"error": {"code": code, "message": message, **extra}}


def is_final_transcript(message: Message) -> bool:
    return message.get("final") is True and "text" in message and "role" in message


def with_seq(message: Message, seq: int) -> Message:
    """Numbered copy, so a client (and a late subscriber's replay) can order and dedupe."""
    return {**message, "seq": seq}


# ---- JSON Schema of every server → client message (draft 2020-12) ---------------------------

_SEQ = {"type": "integer", "minimum": 1, "description": "order of the session's messages, from 1"}
_MS = {"type": "integer", "minimum": 0}
_PART = {"type": ["integer", "null"], "minimum": 0}

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Transcript socket message (server to client)",
    "oneOf": [
        {
            "title": "user interim",
            "type": "object",
            "properties": {
                "role": {"const": "user"},
                "text": {"type": "string"},
                "final": {"const": False},
                "seq": _SEQ,
            },
            "required": ["role", "text", "final"],
        },
        {
            "title": "user final",
            "type": "object",
            "properties": {
                "role": {"const": "user"},
                "text": {"type": "string"},
                "final": {"const": True},
                "typed": {"type": "boolean", "description": "added: typed, not spoken"},
                "seq": _SEQ,
            },
            "required": ["role", "text", "final"],
        },
        {
            "title": "agent final",
            "type": "object",
            "properties": {
                "role": {"const": "agent"},
                "text": {"type": "string", "description": "what was said (only that, when interrupted)"},
                "final": {"const": True},
                "interrupted": {"type": "boolean", "description": "added: the person cut the line off"},
                "latency": {
                    "description": "added: end of the person's turn → the agent's first audio",
                    "oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "properties": {"total_ms": _MS, **{part: _PART for part in LATENCY_PARTS}},
                            "required": ["total_ms", *LATENCY_PARTS],
                            "additionalProperties": False,
                        },
                    ],
                },
                "seq": _SEQ,
            },
            "required": ["role", "text", "final"],
        },
        {
            "title": "speech event",
            "type": "object",
            "properties": {
                "role": {"enum": list(ROLES)},
                "event": {"enum": ["speech_started", "speech_ended"]},
                "seq": _SEQ,
            },
            "required": ["role", "event"],
        },
        {
            "title": "agent state (added)",
            "type": "object",
            "properties": {
                "type": {"const": "agent_state"},
                "state": {"enum": list(AGENT_STATES)},
                "seq": _SEQ,
            },
            "required": ["type", "state"],
        },
        {
            "title": "agent partial (added)",
            "type": "object",
            "properties": {
                "type": {"const": "agent_partial"},
                "text": {"type": "string", "description": "the current reply's words spoken so far"},
                "seq": _SEQ,
            },
            "required": ["type", "text"],
        },
        {
            "title": "session ended",
            "type": "object",
            "properties": {"event": {"const": "session_ended"}, "reason": {"type": "string"}},
            "required": ["event", "reason"],
        },
        {
            "title": "pong",
            "type": "object",
            "properties": {"type": {"const": "pong"}},
            "required": ["type"],
        },
        {
            "title": "error",
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    "required": ["code", "message"],
                },
                # Numbered when the agent sends it (a typed line it refused); not for a reply
                # to the client's own frame.
                "seq": _SEQ,
            },
            "required": ["error"],
        },
    ],
}
