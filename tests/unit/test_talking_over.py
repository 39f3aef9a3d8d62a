"""Talking over the agent: whenever the person speaks (over the greeting, as it ends, over a
reply), their whole sentence becomes a user line during the session and gets an answer.

The real AgentSession with Silero VAD hears real speech in a fake room. The fake recogniser
only knows the speech that reaches it (``word_seconds``): audio the session withholds from
it, as it did during its echo-cancellation warm-up over the agent's first speech, takes its
words with it. The speaker pauses as the room's audio output does, and the synthetic voice
ends each line with silence, as real voices do, so a line cut in that silence lost no word.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import numpy as np
import pytest
from channels.testing import WebsocketCommunicator
from livekit import rtc
from livekit.agents.llm import ChatMessage
from livekit.agents.voice.events import AgentStateChangedEvent, ConversationItemAddedEvent

from app.voice.agent import event_bridge
from app.voice.agent.providers import ProviderSet, shared_vad, using_providers
from app.voice.models import TranscriptEntry
from app.voice.sessions.info import SessionInfo
from fakes.livekit import FRAME_SECONDS, FakeLiveKitGateway, PersonScript, read_wav
from fakes.llm import DEFAULT_GREETING, DEFAULT_REPLY, ScriptedLLM
from fakes.stt import SPEECH_LEVEL, ScriptedSTT
from fakes.tts import ToneTTS
from tests.unit.support import SPEECH_WAV

# What the person says: the words of hello-agent-16k.wav, then (the same recording) a second line.
SENTENCES = ("Hello agent, can you hear me?", "Please tell me a short story.")
SPEECH, RATE = read_wav(SPEECH_WAV)
# Seconds from the session's start to the end of the greeting's audio, whose last
# TRAILING_SILENCE seconds are silent (measured with this fake voice: its final line comes then).
GREETING_SECONDS = 3.6
TRAILING_SILENCE = 0.4
# Long enough for any of these conversations, with room to spare on a loaded machine.
CONVERSATION_SECONDS = 20.0


def _voiced_seconds(samples: np.ndarray) -> float:
    """Seconds of 20 ms frames the fake recogniser counts as speech (its level gate)."""
    frame = int(RATE * FRAME_SECONDS)
    frames = [samples[i : i + frame] for i in range(0, len(samples) - frame + 1, frame)]
    loud = [f for f in frames if np.sqrt(np.mean(np.square(f / 32768.0))) >= SPEECH_LEVEL]
    return len(loud) * FRAME_SECONDS


# Each word of a line takes an equal share of the recording's speech.
WORD_SECONDS = _voiced_seconds(SPEECH) / len(SENTENCES[0].split())


def providers(info: SessionInfo) -> ProviderSet:
    """The fake set, with a recogniser that hears only what reaches it and a voice whose
    lines end in silence."""
    return ProviderSet(
        vad=shared_vad(),
        stt=ScriptedSTT(utterances=SENTENCES, word_seconds=WORD_SECONDS),
        llm=ScriptedLLM(),
        tts=ToneTTS(trailing_silence=TRAILING_SILENCE),
    )


# A voice slow to start (a loaded speech server): the greeting's first audio comes this long
# after its text, so a person who talks at once has finished before it plays.
SLOW_VOICE_DELAY = 4.0


def slow_voice_providers(info: SessionInfo) -> ProviderSet:
    slow = providers(info)
    return ProviderSet(vad=slow.vad, stt=slow.stt, llm=slow.llm, tts=ToneTTS(
        first_audio_delay=SLOW_VOICE_DELAY, trailing_silence=TRAILING_SILENCE))


def says(*starts: float) -> PersonScript:
    """The person says the recording at each of `starts` (seconds after the session starts)."""
    audio = np.zeros(int(max(starts) * RATE) + len(SPEECH), dtype=np.int16)
    for start in starts:
        at = int(start * RATE)
        audio[at : at + len(SPEECH)] = SPEECH
    return PersonScript(speech=audio, sample_rate=RATE, speak_after=0.0)


def is_final(role: str, text: str | None = None) -> Callable[[dict], bool]:
    return lambda m: m.get("role") == role and m.get("final") is True and text in (None, m["text"])


async def listen(socket: WebsocketCommunicator, until: Callable[[list[dict]], bool], timeout: float) -> list[dict]:
    """The socket's messages until `until(messages so far)` holds, or `timeout` seconds: what
    the page would have shown by then (the assertions say what was missing)."""
    received: list[dict] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while not until(received):
                received.append(await socket.receive_json_from(timeout=timeout))
    return received


def answer_to(received: list[dict], line: str) -> dict | None:
    """The agent's answer to the user final `line`, if both came."""
    user = next((m for m in received if is_final("user", line)(m)), None)
    if user is None:
        return None
    reply = DEFAULT_REPLY.format(text=line)
    return next((m for m in received if is_final("agent", reply)(m) and m["seq"] > user["seq"]), None)


def answered(*lines: str) -> Callable[[list[dict]], bool]:
    """Every line is a user final, and the agent's answer to it came after it."""
    return lambda received: all(answer_to(received, line) is not None for line in lines)


def finals(received: list[dict]) -> list[tuple[str, str, bool]]:
    """(role, text, interrupted) of each final line, in order."""
    return [(m["role"], m["text"], m.get("interrupted", False)) for m in received if m.get("final") is True]


def assert_heard_whole_and_answered(received: list[dict], line: str) -> None:
    said = finals(received)
    assert ("user", line, False) in said, f"the line was not heard whole: {said}"
    assert answer_to(received, line) is not None, f"the line got no answer: {said}"


def greeting_line(received: list[dict]) -> tuple[str, bool]:
    """The greeting's final line: its text and whether it is marked interrupted."""
    line = next(m for m in received if m.get("role") == "agent" and m.get("final") is True)
    assert DEFAULT_GREETING.startswith(line["text"]), line
    return line["text"], line["interrupted"]


@pytest.fixture(autouse=True)
def _talking_providers() -> Iterator[None]:
    with using_providers(providers):
        yield


Talk = Callable[[PersonScript, Callable[[list[dict]], bool]], Awaitable[tuple[str, list[dict]]]]


@pytest.fixture
async def talk(api, open_socket, gateway: FakeLiveKitGateway) -> AsyncIterator[Talk]:
    """Start a session whose person follows `script`; return its id and the socket's messages
    until `until` holds (or the time a conversation takes). Sessions are stopped at teardown."""
    sessions: list[str] = []

    async def run(script: PersonScript, until: Callable[[list[dict]], bool]) -> tuple[str, list[dict]]:
        room = f"room-talk-{len(sessions)}"
        gateway.script_room(room, script)
        response = await api.post("/session", json={"room": room, "identity": "alice"})
        assert response.status_code == 201, response.content
        sessions.append(session_id := response.json()["session_id"])
        socket = await open_socket(f"/ws/transcript/{session_id}")
        return session_id, await listen(socket, until, timeout=CONVERSATION_SECONDS)

    yield run
    for session_id in sessions:
        assert (await api.delete(f"/session/{session_id}")).status_code == 204


async def stored(session_id: str) -> list[tuple[str, str, bool]]:
    entries = TranscriptEntry.objects.filter(session_id=session_id).order_by("seq")
    return [(e.role, e.text, e.interrupted) async for e in entries]


# ---- the real session ----------------------------------------------------------------------

db = pytest.mark.django_db(transaction=True)


@db
@pytest.mark.parametrize(
    "start",
    [
        pytest.param(0.5, id="early"),  # the whole line over the greeting's first words
        pytest.param(1.5, id="late"),  # the line starts over the greeting and outlasts it
    ],
)
async def test_a_line_said_over_the_greeting_is_heard_whole_and_answered(talk: Talk, start: float) -> None:
    """The line cuts the greeting: the greeting's final holds what of it was said, marked
    interrupted (before the fix: no line at all at 0.5 s, the greeting resumed; the start
    of the line lost at 1.5 s)."""
    line = SENTENCES[0]
    session_id, received = await talk(says(start), answered(line))
    assert_heard_whole_and_answered(received, line)
    text, interrupted = greeting_line(received)
    assert interrupted and text != DEFAULT_GREETING
    assert ("user", line, False) in await stored(session_id)


@db
@pytest.mark.parametrize(
    "before_end",
    [
        pytest.param(1.0, id="over-its-last-words"),
        pytest.param(0.3, id="in-its-last-silence"),
        pytest.param(0.0, id="just-after-it"),
    ],
)
async def test_a_line_said_as_the_greeting_ends_is_heard_whole_and_answered(talk: Talk, before_end: float) -> None:
    line = SENTENCES[0]
    _, received = await talk(says(GREETING_SECONDS - before_end), answered(line))
    assert_heard_whole_and_answered(received, line)
    greeting_line(received)


@db
async def test_a_line_said_before_the_greeting_plays_is_heard_whole_and_answered(talk: Talk) -> None:
    """The person has said the whole line before the greeting's audio starts (a slow voice,
    as under load): the line is kept and answered; the greeting, not yet heard, may go."""
    line = SENTENCES[0]
    with using_providers(slow_voice_providers):
        session_id, received = await talk(says(0.2), answered(line))
    assert_heard_whole_and_answered(received, line)
    assert ("user", line, False) in await stored(session_id)


@db
async def test_a_greeting_stopped_in_the_silence_after_its_last_word_is_whole_and_not_interrupted(talk: Talk) -> None:
    """The person's speech stops the greeting (0.5 s of it pauses the agent) in the silence
    after its last word: the library flags the greeting interrupted, but nothing of it was
    cut, so its line is not marked so (before the fix: whole text, marked interrupted)."""
    line = SENTENCES[0]
    session_id, received = await talk(says(GREETING_SECONDS - TRAILING_SILENCE - 0.2), answered(line))
    assert_heard_whole_and_answered(received, line)
    assert greeting_line(received) == (DEFAULT_GREETING, False)
    assert ("agent", DEFAULT_GREETING, False) in await stored(session_id)


@db
async def test_a_line_said_over_a_reply_is_heard_whole_and_answered(talk: Talk) -> None:
    first, second = SENTENCES
    # The first line after the greeting; the second ~0.7 s into the agent's answer to it
    # (which starts ~3.1 s after the first line does).
    first_at = GREETING_SECONDS + 1.5
    _, received = await talk(says(first_at, first_at + 3.8), answered(second))
    assert ("user", first, False) in finals(received)
    assert_heard_whole_and_answered(received, second)
    # The answer to the first line was stopped by the second: what of it was said, marked
    # interrupted when words of it went unsaid.
    whole = DEFAULT_REPLY.format(text=first)
    stopped = next(m for m in received if m.get("role") == "agent" and m.get("final") and m["text"].startswith("You"))
    assert whole.startswith(stopped["text"]) and stopped["interrupted"] == (stopped["text"] != whole), stopped


# ---- the bridge alone: interrupted means words went unsaid ----------------------------------


class _Session(rtc.EventEmitter):
    """The events of an AgentSession that the bridge listens to."""


async def _bridge_heard(*replies: str) -> tuple[_Session, list[dict]]:
    """A bridge whose TTS text transform saw each of `replies` whole."""
    session, sent = _Session(), []
    bridge = event_bridge.attach(session, sent.append)  # type: ignore[arg-type]
    transform = bridge.tts_text_transforms[0]
    assert callable(transform)

    async def chunks(text: str) -> AsyncIterator[str]:
        for word in text.split(" "):
            yield word + " "

    for reply in replies:
        assert "".join([chunk async for chunk in transform(chunks(reply))]).split() == reply.split()
    return session, sent


def _reply_final(session: _Session, text: str, *, interrupted: bool) -> None:
    session.emit("agent_state_changed", AgentStateChangedEvent(old_state="listening", new_state="thinking"))
    message = ChatMessage(role="assistant", content=[text], interrupted=interrupted)
    session.emit("conversation_item_added", ConversationItemAddedEvent(item=message))


async def test_a_reply_stopped_after_all_its_words_were_said_is_not_marked_interrupted() -> None:
    session, sent = await _bridge_heard(DEFAULT_GREETING)
    _reply_final(session, DEFAULT_GREETING, interrupted=True)
    assert sent[-1] == {"role": "agent", "text": DEFAULT_GREETING, "final": True, "interrupted": False, "latency": None}


async def test_a_reply_cut_before_its_last_word_is_marked_interrupted() -> None:
    session, sent = await _bridge_heard(DEFAULT_GREETING)
    _reply_final(session, "Hi! I am your voice", interrupted=True)
    assert sent[-1]["interrupted"] is True


async def test_a_reply_whose_text_was_not_all_written_when_cut_is_marked_interrupted() -> None:
    """Cut while its text was still coming: what was said is all there was so far, not the
    whole reply."""
    session, sent = _Session(), []
    bridge = event_bridge.attach(session, sent.append)  # type: ignore[arg-type]
    transform = bridge.tts_text_transforms[0]
    assert callable(transform)

    async def unfinished() -> AsyncIterator[str]:
        yield "Hi! I am"
        await asyncio.Event().wait()  # the rest never comes: the reply is cut

    chunks = transform(unfinished())
    assert await anext(aiter(chunks)) == "Hi! I am"
    await chunks.aclose()  # type: ignore[attr-defined]
    _reply_final(session, "Hi! I am", interrupted=True)
    assert sent[-1]["interrupted"] is True


async def test_the_whole_texts_heard_are_forgotten_once_a_reply_has_its_final_line() -> None:
    """Only the replies since the last final line count: a later reply cut to the words of
    an earlier whole one is still interrupted."""
    session, sent = await _bridge_heard("Sure.")
    _reply_final(session, "Sure.", interrupted=False)
    _reply_final(session, "Sure.", interrupted=True)
    assert [m["interrupted"] for m in sent if m.get("final")] == [False, True]
