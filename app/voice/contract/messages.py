"""The WebSocket message schema and the error body, in one place.

Every message the transcript socket carries is built here, so the event bridge,
persistence, the consumer and the tests agree on the exact shapes the requirements
name (interim, final, speech events). Keys may be added (``seq``), never renamed or
removed. HTTP errors and WebSocket error frames share ``error_body``.
"""

from __future__ import annotations

from typing import Any, Literal

Role = Literal["user", "agent"]
SpeechEvent = Literal["speech_started", "speech_ended"]
ROLES: tuple[Role, ...] = ("user", "agent")

Message = dict[str, Any]


def transcript(role: Role, text: str, *, final: bool, interrupted: bool = False) -> Message:
    """Interim (user only) or final transcript line. An agent's final also says whether
    the person cut it off (added key ``interrupted``)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if role == "agent" and not final:
        raise ValueError("agent transcripts are always final")
    if interrupted and role != "agent":
        raise ValueError("only the agent's lines can be interrupted")
    message: Message = {"role": role, "text": text, "final": final}
    if role == "agent":
        message["interrupted"] = interrupted
    return message


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
    return message.get("final") is True and "text" in message


def with_seq(message: Message, seq: int) -> Message:
    """Numbered copy, so a client (and a late subscriber's replay) can order and dedupe."""
    return {**message, "seq": seq}
