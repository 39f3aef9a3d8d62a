"""Typed input is bounded on the server: a line longer than rules.TYPED_MAX_CHARS, or one
past the burst and rate (VOICE_TYPED_BURST, VOICE_TYPED_PER_MINUTE), is refused with an
error frame on the transcript socket, and reaches neither the LLM nor the history.

The pen-test behind it: a 2,000,000-character line over ``lk.chat`` was stored and served
back whole, a 100 KB one kept the event loop busy for 30 s, and 30 lines in 40 ms were all
answered (each a paid LLM request with OpenAI); the page's maxlength binds only the page.
"""

from __future__ import annotations

import jsonschema
import pytest
from livekit.agents.voice.room_io import TextInputEvent

from app.voice.agent.typed_input import TypedInputGate
from app.voice.contract import messages, rules
from app.voice.models import TranscriptEntry
from fakes.livekit import FakeLiveKitGateway
from fakes.llm import DEFAULT_GREETING
from tests.unit.support import receive_until


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def gate(clock: Clock, **bounds: int) -> tuple[TypedInputGate, list[str], list[dict]]:
    handled: list[str] = []
    published: list[dict] = []

    async def handle(session: object, ev: TextInputEvent) -> None:
        handled.append(ev.text)

    bounds = {"per_minute": 20, "burst": 3, **bounds}
    return TypedInputGate(handle, published.append, clock=clock, **bounds), handled, published


async def test_a_line_at_the_bound_passes_and_a_longer_one_is_refused_saying_why() -> None:
    typed, handled, published = gate(Clock())
    at_bound = "a" * rules.TYPED_MAX_CHARS
    await typed(None, TextInputEvent(text=at_bound))  # type: ignore[arg-type]
    await typed(None, TextInputEvent(text="b" * 2_000_000))  # type: ignore[arg-type]
    assert handled == [at_bound]
    assert published == [
        messages.error_body(
            "typed_too_long",
            f"That message has 2000000 characters; the agent takes at most {rules.TYPED_MAX_CHARS}. "
            "Shorten it and send it again.",
        )
    ]


async def test_lines_past_the_burst_wait_for_the_rate() -> None:
    clock = Clock()
    typed, handled, published = gate(clock, per_minute=20, burst=3)  # one line every 3 s
    for n in range(30):  # 30 lines at once, as in the finding
        await typed(None, TextInputEvent(text=f"line {n}"))  # type: ignore[arg-type]
    assert handled == ["line 0", "line 1", "line 2"]
    assert len(published) == 27 and {m["error"]["code"] for m in published} == {"typed_too_fast"}
    assert "3 in a row, then 20 a minute" in published[0]["error"]["message"]
    clock.now += 2.9
    await typed(None, TextInputEvent(text="too soon"))  # type: ignore[arg-type]
    clock.now += 0.2
    await typed(None, TextInputEvent(text="after 3 s"))  # type: ignore[arg-type]
    assert handled[3:] == ["after 3 s"]


async def test_a_blank_line_costs_nothing() -> None:
    typed, handled, published = gate(Clock(), burst=1)
    await typed(None, TextInputEvent(text="   "))  # type: ignore[arg-type]
    await typed(None, TextInputEvent(text="hello"))  # type: ignore[arg-type]
    assert (handled, published) == (["   ", "hello"], [])  # the bridge drops the blank one


@pytest.mark.django_db(transaction=True)
async def test_in_a_session_a_refused_line_is_an_error_frame_and_is_not_answered_or_kept(
    api, open_socket, gateway: FakeLiveKitGateway
) -> None:
    response = await api.post("/session", json={"room": "room-long", "identity": "alice"})
    assert response.status_code == 201, response.content
    session_id = response.json()["session_id"]
    socket = await open_socket(f"/ws/transcript/{session_id}")
    await receive_until(socket, lambda m: m.get("role") == "agent" and m.get("text") == DEFAULT_GREETING, 30)

    room = gateway.rooms["room-long"]
    await room.person_types("x" * 100_000)
    refused = await receive_until(socket, lambda m: "error" in m, 10)
    assert refused[-1]["error"]["code"] == "typed_too_long" and "seq" in refused[-1]
    jsonschema.validate(refused[-1], messages.JSON_SCHEMA)
    await room.person_types("Hello there")  # the session goes on: a line within bounds is answered
    answered = await receive_until(socket, lambda m: m.get("role") == "agent" and m.get("final") is True, 30)
    assert answered[-1]["text"] == "You said: Hello there"
    assert not any(m.get("text", "").startswith("x") for m in refused + answered)
    kept = [(e.role, e.text) async for e in TranscriptEntry.objects.filter(session_id=session_id).order_by("seq")]
    assert kept == [("agent", DEFAULT_GREETING), ("user", "Hello there"), ("agent", "You said: Hello there")]
    assert (await api.delete(f"/session/{session_id}")).status_code == 204
