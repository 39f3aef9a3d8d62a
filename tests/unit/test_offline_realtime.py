"""`GET /v1/realtime?intent=transcription`: the product's own STT plugin against it, and the
protocol over a raw WebSocket (ordering, validation errors, limits, a dropped socket)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import av
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from livekit import rtc
from livekit.agents import stt as agents_stt
from livekit.agents.utils import http_context
from livekit.plugins import openai as openai_plugin

from offline_openai import realtime
from offline_openai.engines import Engines
from offline_openai.keys import ENGINES
from offline_openai.stt import SpeechRecognition
from offline_openai.wer import wer
from tests.unit.test_offline_stt import (
    TRANSCRIPTS,
    load_pcm16,
    not_speech,
    openai_errors,
    speech_recognition,  # noqa: F401  (the session's one loaded engine)
)

RATE = 24_000
CHUNK = RATE // 20  # 50 ms, as the plugin sends
MANUAL = {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {"turn_detection": None}}}}
FAST_VAD = {
    "type": "session.update",
    "session": {
        "type": "transcription",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": RATE},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 350,
                },
            }
        },
    },
}


def to_24k(samples: np.ndarray) -> np.ndarray:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 16000
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in [*resampler.resample(frame), *resampler.resample(None)]])


def appends(samples: np.ndarray) -> list[dict[str, str]]:
    return [
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(samples[i : i + CHUNK].tobytes()).decode()}
        for i in range(0, len(samples), CHUNK)
    ]


class Served(SimpleNamespace):
    """The test server, and an event set when a realtime handler has returned."""

    client: TestClient[Any, Any]
    handler_done: asyncio.Event


@pytest.fixture
async def served(speech_recognition: SpeechRecognition) -> AsyncIterator[Served]:
    done = asyncio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await realtime.handle(request)
        finally:
            done.set()

    app = web.Application(middlewares=[openai_errors])
    app[ENGINES] = cast(Engines, SimpleNamespace(stt=speech_recognition))
    app.router.add_get("/v1/realtime", handle)
    async with TestClient(TestServer(app)) as client:
        yield Served(client=client, handler_done=done)


async def connect(served: Served, update: dict[str, Any] | None = FAST_VAD) -> aiohttp.ClientWebSocketResponse:
    ws = await served.client.ws_connect("/v1/realtime?intent=transcription&model=gpt-4o-mini-transcribe")
    assert (await ws.receive_json())["type"] == "session.created"
    if update is not None:
        await ws.send_json(update)
        assert (await ws.receive_json())["type"] == "session.updated"
    return ws


async def next_event(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    event: dict[str, Any] = await asyncio.wait_for(ws.receive_json(), timeout=15)
    return event


async def events_until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> list[dict[str, Any]]:
    events = [await next_event(ws)]
    while events[-1]["type"] != kind:
        events.append(await next_event(ws))
    return events


async def expect_error(ws: aiohttp.ClientWebSocketResponse, message: Any) -> dict[str, Any]:
    await (ws.send_str(message) if isinstance(message, str) else ws.send_json(message))
    event = await next_event(ws)
    assert event["type"] == "error", event
    assert event["error"]["type"] == "invalid_request_error"
    error: dict[str, Any] = event["error"]
    return error


# ---- the product's plugin -------------------------------------------------------------------


async def test_livekit_plugin_gets_interims_then_the_final(served: Served) -> None:
    """STT(use_realtime=True), exactly as the agent builds it, streaming a real recording at
    real time, then a second of silence."""
    name = "librivox_0870.wav"
    samples = np.concatenate([load_pcm16(name), np.zeros(16000, dtype=np.int16)])
    async with http_context.open():
        stt = openai_plugin.STT(
            use_realtime=True,
            base_url=str(served.client.make_url("/v1")),
            api_key="x",
            language="en",
            model="gpt-4o-mini-transcribe",
        )
        stream = stt.stream()
        frame = 320  # 20 ms

        async def push() -> None:
            for i in range(0, len(samples), frame):
                chunk = samples[i : i + frame]
                stream.push_frame(rtc.AudioFrame(chunk.tobytes(), 16000, 1, len(chunk)))
                await asyncio.sleep(0.02)  # real time: interims need the worker idle

        pusher = asyncio.create_task(push())
        seen: list[agents_stt.SpeechEvent] = []
        try:
            async with asyncio.timeout(30):
                async for event in stream:
                    seen.append(event)
                    if event.type == agents_stt.SpeechEventType.FINAL_TRANSCRIPT:
                        break
        finally:
            await pusher
            await stream.aclose()
            await stt.aclose()
    kinds = [event.type for event in seen]
    interims = [e.alternatives[0].text for e in seen if e.type == agents_stt.SpeechEventType.INTERIM_TRANSCRIPT]
    assert kinds[0] == agents_stt.SpeechEventType.START_OF_SPEECH
    assert interims, kinds
    final = seen[-1].alternatives[0].text
    assert wer(TRANSCRIPTS[name], final) <= 0.15, final


# ---- the protocol over a raw socket ---------------------------------------------------------


async def test_server_vad_turn_events_in_order(served: Served) -> None:
    name = "librivox_0890.wav"  # 5.3 s: room for two interim decodes even on a busy machine
    speech = to_24k(load_pcm16(name))
    lead = np.zeros(RATE // 2, dtype=np.int16)
    ws = await connect(served)
    for message in appends(np.concatenate([lead, speech, np.zeros(RATE, dtype=np.int16)])):
        await ws.send_json(message)
        await asyncio.sleep(0.05)  # real time: interim decodes need the worker idle
    events = await events_until(ws, "conversation.item.input_audio_transcription.completed")
    kinds = [e["type"] for e in events]
    started, stopped, committed, completed = (
        events[kinds.index(kind)]
        for kind in (
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.input_audio_transcription.completed",
        )
    )
    assert kinds.index(started["type"]) < kinds.index(stopped["type"]) < kinds.index(committed["type"])
    assert started["item_id"] == stopped["item_id"] == committed["item_id"] == completed["item_id"]
    assert 0 < started["audio_start_ms"] <= 500  # speech begins after the 500 ms lead-in, minus padding
    speech_end_ms = 500 + len(speech) * 1000 // RATE
    assert speech_end_ms - 300 <= stopped["audio_end_ms"] <= speech_end_ms + 1000
    assert committed["previous_item_id"] is None
    deltas = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.delta"]
    assert deltas, kinds  # words while the person speaks, before the final
    assert all(d["item_id"] == completed["item_id"] and d["delta"].strip() for d in deltas)
    assert wer(TRANSCRIPTS[name], completed["transcript"]) <= 0.15
    await ws.close()


async def test_manual_commit_without_turn_detection(served: Served) -> None:
    ws = await connect(served, MANUAL)
    for message in appends(to_24k(load_pcm16("cards_001.wav"))):
        await ws.send_json(message)
    await ws.send_json({"type": "input_audio_buffer.commit"})
    committed = await next_event(ws)  # no speech_started/stopped: the client drives the turns
    assert committed["type"] == "input_audio_buffer.committed"
    completed = await next_event(ws)
    assert completed["type"] == "conversation.item.input_audio_transcription.completed"
    assert completed["item_id"] == committed["item_id"]
    assert wer(TRANSCRIPTS["cards_001.wav"], completed["transcript"]) == 0.0
    error = await expect_error(ws, {"type": "input_audio_buffer.commit", "event_id": "c1"})
    assert error["code"] == "input_audio_buffer_commit_empty" and error["event_id"] == "c1"
    await ws.close()


async def test_no_transcript_for_silence_noise_or_a_tone(served: Served) -> None:
    ws = await connect(served)
    for samples in not_speech().values():
        for message in appends(to_24k(samples)):
            await ws.send_json(message)
    await ws.send_json({"type": "input_audio_buffer.clear"})
    # Events keep their order: anything the audio caused would come before `cleared`.
    assert (await next_event(ws))["type"] == "input_audio_buffer.cleared"
    await ws.send_json(MANUAL)
    assert (await next_event(ws))["type"] == "session.updated"
    for message in appends(to_24k(not_speech()["white noise"])):
        await ws.send_json(message)
    await ws.send_json({"type": "input_audio_buffer.commit"})
    assert (await next_event(ws))["type"] == "input_audio_buffer.committed"
    await ws.send_json({"type": "input_audio_buffer.clear"})
    assert (await next_event(ws))["type"] == "input_audio_buffer.cleared"  # and no completed
    await ws.close()


async def test_clear_empties_the_buffer(served: Served) -> None:
    ws = await connect(served, MANUAL)
    for message in appends(to_24k(load_pcm16("cards_003.wav"))):
        await ws.send_json(message)
    await ws.send_json({"type": "input_audio_buffer.clear"})
    assert (await next_event(ws))["type"] == "input_audio_buffer.cleared"
    error = await expect_error(ws, {"type": "input_audio_buffer.commit"})
    assert error["code"] == "input_audio_buffer_commit_empty"
    await ws.close()


@pytest.mark.parametrize(
    ("message", "code", "param"),
    [
        ("{not json", "invalid_json", None),
        ("[1, 2]", "invalid_type", None),
        ({"audio": "AAAA"}, "missing_required_parameter", "type"),
        ({"type": "no.such.event"}, "invalid_value", "type"),
        ({"type": "response.create"}, "invalid_value", "type"),
        ({"type": "input_audio_buffer.append"}, "missing_required_parameter", "audio"),
        ({"type": "input_audio_buffer.append", "audio": "%%% not base64 %%%"}, "invalid_value", "audio"),
        ({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"abc").decode()}, "invalid_value", "audio"),
        ({"type": "input_audio_buffer.append", "audio": 42}, "invalid_type", "audio"),
        ({"type": "session.update"}, "missing_required_parameter", "session"),
        ({"type": "session.update", "session": {"type": "realtime"}}, "invalid_value", "session.type"),
        (
            {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}},  # noqa: E501
            "invalid_value",
            "session.audio.input.format.rate",
        ),
        (
            {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {"format": {"type": "audio/pcmu"}}}}},  # noqa: E501
            "invalid_value",
            "session.audio.input.format.type",
        ),
        (
            {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {"transcription": {"language": "fr"}}}}},  # noqa: E501
            "invalid_value",
            "session.audio.input.transcription.language",
        ),
        (
            {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": "high"}}}}},  # noqa: E501
            "invalid_type",
            "session.audio.input.turn_detection.threshold",
        ),
        (
            {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 3}}}}},  # noqa: E501
            "invalid_value",
            "session.audio.input.turn_detection.threshold",
        ),
    ],
)
async def test_bad_client_events_get_error_events(
    served: Served, message: Any, code: str, param: str | None
) -> None:
    ws = await connect(served)
    if isinstance(message, dict):
        message = {**message, "event_id": "evt_1"}
    error = await expect_error(ws, message if isinstance(message, str) else json.dumps(message))
    assert (error["code"], error["param"]) == (code, param), error
    if isinstance(message, dict) and "type" in message:
        assert error["event_id"] == "evt_1"
    # The session goes on, with its settings untouched.
    await ws.send_json({"type": "input_audio_buffer.clear"})
    assert (await next_event(ws))["type"] == "input_audio_buffer.cleared"
    await ws.close()


async def test_binary_and_oversized_frames(served: Served) -> None:
    ws = await connect(served)
    await ws.send_bytes(b"\x00\x01")
    assert (await next_event(ws))["error"]["code"] == "invalid_message"
    big = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (realtime.MAX_MESSAGE_CHARS + 4)})
    error = await expect_error(ws, big)
    assert error["code"] == "message_too_large"
    await ws.send_json({"type": "input_audio_buffer.clear"})
    assert (await next_event(ws))["type"] == "input_audio_buffer.cleared"
    await ws.send_str("x" * (realtime.HARD_MAX_MESSAGE_BYTES + 1))
    closing = await asyncio.wait_for(ws.receive(), timeout=15)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await asyncio.wait_for(served.handler_done.wait(), timeout=15)


async def test_other_intents_are_refused(served: Served) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
        await served.client.ws_connect("/v1/realtime?intent=conversation")
    assert raised.value.status == 400


async def test_socket_dropped_mid_utterance_frees_everything(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """Dropped with a turn open and a final decode queued: the handler returns, nothing is
    left running (the autouse fixture fails the test on a leaked task) or logged."""
    ws = await connect(served)
    speech = to_24k(load_pcm16("librivox_0880.wav"))
    for message in appends(np.concatenate([speech, np.zeros(RATE // 5, dtype=np.int16)])):
        await ws.send_json(message)
    await ws.send_json({"type": "input_audio_buffer.commit"})
    assert (await next_event(ws))["type"] == "input_audio_buffer.speech_started"
    await ws.close()
    await asyncio.wait_for(served.handler_done.wait(), timeout=15)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
