"""WS /ws/transcript/{id}: refusal codes, late-subscriber replay without duplicates,
bad client frames (small ones answered, binary and oversized ones closing the socket),
ping/pong, and the close after session_ended. The abuse bounds: test_ws_limits.py.

Sessions here are rows in the created → running state machine with no agent: the
socket's behaviour depends only on the stored state and the channel-layer group.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from app.asgi import application
from app.voice.contract import close_codes, messages
from app.voice.models import EndReason, VoiceSession
from app.voice.sessions import store as session_store
from app.voice.sessions.ending import end_session
from app.voice.sessions.groups import transcript_group
from app.voice.sessions.info import SessionInfo
from tests.unit.support import HOST, visitor_of

pytestmark = pytest.mark.django_db(transaction=True)

# An agent reply's latency, as the bridge measures it (contract.messages.Latency).
LATENCY: messages.Latency = {"total_ms": 840, "end_of_turn_ms": 310, "stt_ms": 120, "llm_ms": 290, "tts_ms": 150}

UNSUPPORTED_FRAME = {
    "error": {
        "code": "unsupported_frame",
        "message": 'This socket only sends; the only accepted frame is {"type": "ping"}.',
    }
}


async def live_session(owner: httpx.AsyncClient, room: str = "room-1") -> VoiceSession:
    """A running session (no agent) owned by the visitor `owner`."""
    session = await session_store.create_session(room, "alice", visitor=await visitor_of(owner))
    await session_store.mark_running(session.id)
    return session


async def publish(session_id: object, message: messages.Message) -> None:
    """What the event bridge does for every message of a session."""
    await get_channel_layer().group_send(
        transcript_group(str(session_id)), {"type": "transcript.message", "message": message}
    )


async def closed_with(socket: WebsocketCommunicator) -> int:
    output = await socket.receive_output(timeout=5)
    assert output["type"] == "websocket.close", output
    return output["code"]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/ws/transcript/not-a-uuid", close_codes.MALFORMED_ID),
        ("/ws/transcript/12345", close_codes.MALFORMED_ID),
        ("/ws/transcript/0b6d8f6e-3c1a-4a57-9e0f-6f1d2a7b9c44", close_codes.UNKNOWN_SESSION),
        ("/ws/transcript/0b6d8f6e-3c1a-4a57-9e0f-6f1d2a7b9c44/", close_codes.UNKNOWN_SESSION),
        # Paths no route matches: refused, where URLRouter alone would raise.
        ("/ws/nope", close_codes.UNKNOWN_SESSION),
        ("/ws/transcript/a/b", close_codes.UNKNOWN_SESSION),
        ("/", close_codes.UNKNOWN_SESSION),
    ],
)
async def test_bad_ids_and_paths_are_closed_with_4xxx(open_socket, path: str, code: int) -> None:
    socket = await open_socket(path)
    assert await closed_with(socket) == code


async def test_an_ended_session_is_closed_with_4410(api, open_socket) -> None:
    session = await live_session(api)
    await session_store.mark_ended(session.id, EndReason.DELETED)
    socket = await open_socket(f"/ws/transcript/{session.id}")
    assert await closed_with(socket) == close_codes.SESSION_ENDED


async def test_late_subscriber_gets_earlier_finals_with_seq_then_live_ones_without_duplicates(
    api, open_socket,
) -> None:
    session = await live_session(api)
    # What the bridge stores and publishes: the greeting, which the person cut off; their
    # typed answer; the agent's reply to it, with its latency.
    greeting = messages.transcript("agent", "Hello!", final=True, interrupted=True)
    typed = messages.transcript("user", "hi there", final=True, typed=True)
    reply = messages.transcript("agent", "How can I help?", final=True, latency=LATENCY)
    # Finals 1 and 3 happened before this client connected (2 was an interim, not stored).
    await session_store.save_final_transcript(session.id, 3, "user", "hi there", typed=True)
    await session_store.save_final_transcript(session.id, 1, "agent", "Hello!", interrupted=True)

    socket = await open_socket(f"/ws/transcript/{session.id}")
    replayed = [await socket.receive_json_from(timeout=5) for _ in range(2)]
    assert replayed == [messages.with_seq(greeting, 1), messages.with_seq(typed, 3)]

    # Live messages the replay already covered (or older ones) are not sent again.
    await publish(session.id, messages.with_seq(typed, 3))
    await publish(session.id, messages.with_seq(messages.transcript("user", "hi", final=False), 2))
    await publish(session.id, messages.with_seq(messages.speech("agent", "speech_started"), 4))
    await publish(session.id, messages.with_seq(messages.speech("agent", "speech_started"), 4))
    await session_store.save_final_transcript(session.id, 5, "agent", "How can I help?", latency=LATENCY)
    await publish(session.id, messages.with_seq(reply, 5))
    assert await socket.receive_json_from(timeout=5) == {"role": "agent", "event": "speech_started", "seq": 4}
    assert await socket.receive_json_from(timeout=5) == messages.with_seq(reply, 5)

    # A second, later subscriber gets the stored finals again, in order and whole (the added
    # keys too); the first gets none twice.
    late = await open_socket(f"/ws/transcript/{session.id}")
    assert [await late.receive_json_from(timeout=5) for _ in range(3)] == [
        messages.with_seq(greeting, 1), messages.with_seq(typed, 3), messages.with_seq(reply, 5)
    ]
    await end_session(SessionInfo.of(session), EndReason.DELETED)
    for client in (socket, late):
        assert await client.receive_json_from(timeout=5) == {"event": "session_ended", "reason": "deleted"}
        assert await closed_with(client) == 1000


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "",
        "[]",
        "null",
        "{}",
        '{"type": "pong"}',
        '{"type": 5}',
        '{"type": ["ping"]}',
        "[" * 1024,  # the longest frame the consumer parses, deeper than the JSON parser's recursion limit
        '{"type": "ping"}' + " " * 1024,  # a ping, but longer than any ping: not parsed
        "x" * 4096,  # VOICE_WS_MAX_FRAME_BYTES exactly: not too large
        "é" * 2048,  # 4096 bytes in UTF-8
    ],
)
async def test_bad_client_frames_get_an_error_frame_and_the_socket_lives_on(api, open_socket, text: str) -> None:
    assert len(text.encode()) <= settings.VOICE_WS_MAX_FRAME_BYTES == 4096
    session = await live_session(api)
    socket = await open_socket(f"/ws/transcript/{session.id}")
    await socket.send_input({"type": "websocket.receive", "text": text})
    assert await socket.receive_json_from(timeout=5) == UNSUPPORTED_FRAME
    # Still serving: ping answers, and live messages still arrive.
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}
    await publish(session.id, messages.with_seq(messages.transcript("user", "still here", final=True), 1))
    assert (await socket.receive_json_from(timeout=5))["text"] == "still here"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"bytes": b"\x00\xff\xfe binary"}, close_codes.BINARY_FRAME),
        ({"bytes": b""}, close_codes.BINARY_FRAME),
        ({"bytes": b'{"type": "ping"}'}, close_codes.BINARY_FRAME),  # a ping, but binary
        ({"text": "x" * 4097}, close_codes.FRAME_TOO_LARGE),  # one byte over VOICE_WS_MAX_FRAME_BYTES
        ({"text": "é" * 2049}, close_codes.FRAME_TOO_LARGE),  # 2049 characters, 4098 bytes
        ({"text": "[" * 100_000}, close_codes.FRAME_TOO_LARGE),
        ({"text": "x" * 200_000}, close_codes.FRAME_TOO_LARGE),
    ],
)
async def test_binary_and_oversized_frames_close_the_socket_with_their_code(
    api, open_socket, frame: dict, code: int
) -> None:
    assert settings.VOICE_WS_MAX_FRAME_BYTES == 4096
    session = await live_session(api)
    socket = await open_socket(f"/ws/transcript/{session.id}")
    await socket.send_input({"type": "websocket.receive", **frame})
    # Closed at once: no error frame first.
    assert await closed_with(socket) == code


async def test_the_socket_closes_after_session_ended_and_cannot_reopen(api, open_socket) -> None:
    session = await live_session(api)
    socket = await open_socket(f"/ws/transcript/{session.id}")
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == {"type": "pong"}

    await end_session(
        SessionInfo.of(session), EndReason.PARTICIPANT_LEFT
    )
    assert await socket.receive_json_from(timeout=5) == {"event": "session_ended", "reason": "participant_left"}
    assert await closed_with(socket) == 1000

    again = await open_socket(f"/ws/transcript/{session.id}")
    assert await closed_with(again) == close_codes.SESSION_ENDED


@pytest.mark.parametrize("path", ["/ws/nope", "/ws/transcript/{session_id}"])
async def test_a_foreign_origin_is_refused_at_the_handshake(api, open_socket, path: str) -> None:
    session = await live_session(api)
    path = path.format(session_id=session.id)
    foreign = WebsocketCommunicator(application, path, headers=[HOST, (b"origin", b"http://evil.example")])
    connected, _ = await foreign.connect()
    assert not connected
    await foreign.disconnect()
    # The same path from the UI's origin gets past the handshake.
    socket = await open_socket(path)
    await socket.send_json_to({"type": "ping"})
    if path == "/ws/nope":
        assert await closed_with(socket) == close_codes.UNKNOWN_SESSION
    else:
        assert await socket.receive_json_from(timeout=5) == {"type": "pong"}


async def test_a_channel_layer_that_fails_under_the_socket_closes_it_1012_without_a_traceback(
    api, open_socket, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis restarting under a live socket: the client is told to open it again (1012), the
    failure is one warning line, and nothing escapes the consumer (before: "Exception in ASGI
    application" and an unhandled redis ConnectionError, found by the soak's redis_restart)."""
    session = await live_session(api)
    layer = get_channel_layer()
    redis_gone = asyncio.Event()
    receive = layer.receive

    async def receive_until_redis_goes(channel: str) -> dict:
        if channel.startswith("specific."):  # sockets' own channels (not the control groups')
            await redis_gone.wait()
            raise RedisConnectionError("Connection closed by server.")
        return await receive(channel)

    monkeypatch.setattr(layer, "receive", receive_until_redis_goes)
    socket = await open_socket(f"/ws/transcript/{session.id}")
    await socket.send_json_to({"type": "ping"})
    assert await socket.receive_json_from(timeout=5) == messages.pong()  # live
    with caplog.at_level("WARNING", logger="app.voice.ws"):
        redis_gone.set()
        assert await closed_with(socket) == close_codes.SERVICE_RESTART
        await socket.wait(timeout=5)  # raises if the application raised
    assert [r.message for r in caplog.records if r.name == "app.voice.ws"] == ["ws.channel_layer_lost"]


async def test_a_database_gone_while_the_socket_replays_closes_it_1012_without_a_traceback(
    api, open_socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL unreachable as a socket opens (its replay reads the finals): 1012, not an
    "Exception in ASGI application"."""
    session = await live_session(api)

    async def database_gone(*args: object, **kwargs: object) -> None:
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(session_store, "final_transcripts", database_gone)
    socket = await open_socket(f"/ws/transcript/{session.id}")
    assert await closed_with(socket) == close_codes.SERVICE_RESTART
    await socket.wait(timeout=5)  # raises if the application raised
