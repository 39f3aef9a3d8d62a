"""The transcript socket's messages as types, and the error body.

Every message the socket carries is a model here, so the event bridge, persistence, the
consumer and the tests agree on the exact shapes the requirements name (interim, final,
speech events). Keys may be added (``seq``, ``interrupted``, ``typed``, ``latency``), never
renamed or removed. Messages beyond the requirement's carry a ``type`` key (``agent_state``,
``agent_partial``, ``pong``), so a client that knows only the requirement's shapes can
ignore them. The builders return the plain dicts the channel layer carries; ``JSON_SCHEMA``
is generated from the models. A client may send only a ping (``client_message``). HTTP
errors and WebSocket error frames share ``error_body``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypedDict  # pydantic takes typing's TypedDict from Python 3.12 on

Role = Literal["user", "agent"]
SpeechEvent = Literal["speech_started", "speech_ended"]
AgentState = Literal["initializing", "listening", "thinking", "speaking", "idle"]
ROLES: tuple[Role, ...] = get_args(Role)
AGENT_STATES: tuple[AgentState, ...] = get_args(AgentState)

Message = dict[str, Any]
Ms = Annotated[int, Field(ge=0)]


@with_config(ConfigDict(extra="forbid"))
class Latency(TypedDict):
    """One reply's latency in whole milliseconds: ``total_ms`` from the end of the person's
    speech (or the typed message) to the agent's first audio; its parts from the session's
    metrics, None where a part does not apply (a typed turn has no end-of-turn wait or STT).
    The parts overlap (the transcript is awaited during the end-of-turn wait), so they need
    not add up to the total."""

    total_ms: Ms
    end_of_turn_ms: Ms | None
    stt_ms: Ms | None
    llm_ms: Ms | None
    tts_ms: Ms | None


class _Message(BaseModel):
    # A builder refuses a key its message does not have; a client must accept added keys.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"additionalProperties": True})


class _Numbered(_Message):
    """A message the session's publisher numbers (``with_seq``)."""

    seq: Annotated[int, Field(ge=1, description="order of the session's messages, from 1")] | SkipJsonSchema[None] = (
        Field(default=None, exclude_if=lambda seq: seq is None)
    )


class UserInterim(_Numbered):
    """The requirement's interim transcript; the agent has none."""

    role: Literal["user"]
    text: str
    final: Literal[False]


class UserFinal(_Numbered):
    """The requirement's final transcript of the person; added: ``typed`` (typed, not spoken)."""

    role: Literal["user"]
    text: str
    final: Literal[True]
    typed: bool = False


class AgentFinal(_Numbered):
    """The requirement's final transcript of the agent (what was said, only that when cut off);
    added: ``interrupted`` (the person cut it off) and ``latency`` (how long the reply took to
    start; None for a line that answers no turn, like the greeting)."""

    role: Literal["agent"]
    text: str
    final: Literal[True]
    interrupted: bool = False
    latency: Latency | None = None


class Speech(_Numbered):
    """Someone started or stopped speaking."""

    role: Role
    event: SpeechEvent


class AgentStateChanged(_Numbered):
    """The agent's state changed (added message)."""

    type: Literal["agent_state"]
    state: AgentState


class AgentPartial(_Numbered):
    """The words of the agent's current reply heard so far, in step with its audio (added
    message); the reply's final line follows."""

    type: Literal["agent_partial"]
    text: str


class SessionEnded(_Message):
    """Announced just before the server closes the socket at the end of a session."""

    event: Literal["session_ended"]
    reason: str


class Pong(_Message):
    """Answer to a client's ping."""

    type: Literal["pong"]


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class Error(_Numbered):
    """The one error shape, for HTTP answers and WebSocket error frames alike. Numbered when
    the agent sends it (a typed line it refused, lines it could not save); not when it answers
    the client's own frame."""

    error: ErrorDetail


ServerMessage = (
    UserInterim | UserFinal | AgentFinal | Speech | AgentStateChanged | AgentPartial | SessionEnded | Pong | Error
)

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Transcript socket message (server to client)",
    **TypeAdapter(ServerMessage).json_schema(),
}


class Ping(BaseModel):
    """The client's keep-alive, answered with a pong."""

    type: Literal["ping"]


# What a client may send, told apart by `type`; another message would join the union.
ClientMessage = Annotated[Ping, Field(discriminator="type")]
_CLIENT_MESSAGE: TypeAdapter[Ping] = TypeAdapter(ClientMessage)


def client_message(frame: str) -> Ping | None:
    """A client's text frame as its message, or None when it is none the socket accepts."""
    try:
        return _CLIENT_MESSAGE.validate_json(frame)
    except ValidationError:
        return None


_TRANSCRIPT: TypeAdapter[UserInterim | UserFinal | AgentFinal] = TypeAdapter(UserInterim | UserFinal | AgentFinal)


def transcript(
    role: Role,
    text: str,
    *,
    final: bool,
    interrupted: bool = False,
    typed: bool = False,
    latency: Latency | None = None,
) -> Message:
    """Interim (user only) or final transcript line, with the added keys of its kind; an added
    key set on a line of another kind is a ValueError (pydantic's ValidationError)."""
    added = {"interrupted": interrupted, "typed": typed, "latency": latency}
    line = {"role": role, "text": text, "final": final, **{key: value for key, value in added.items() if value}}
    return _TRANSCRIPT.validate_python(line).model_dump()


def agent_state(state: AgentState) -> Message:
    return AgentStateChanged(type="agent_state", state=state).model_dump()


def agent_partial(text: str) -> Message:
    return AgentPartial(type="agent_partial", text=text).model_dump()


def speech(role: Role, event: SpeechEvent) -> Message:
    return Speech(role=role, event=event).model_dump()


def session_ended(reason: str) -> Message:
    return SessionEnded(event="session_ended", reason=reason).model_dump()


def pong() -> Message:
    return Pong(type="pong").model_dump()


def error_body(code: str, message: str, **extra: Any) -> Message:
    """``{"error": {"code": snake_case, "message": human text, ...extra}}``."""
    return Error(error=ErrorDetail(code=code, message=message, **extra)).model_dump()


def is_final_transcript(message: Message) -> bool:
    return message.get("final") is True and "text" in message and "role" in message


def with_seq(message: Message, seq: int) -> Message:
    """Numbered copy, so a client (and a late subscriber's replay) can order and dedupe."""
    return {**message, "seq": seq}
