"""Server-side voice-to-voice latency without a LiveKit server, two ways in one run:

* ours: POST /session through the real Django/DRF/Channels app in this process, the real
  AgentRun + event bridge + channel layer + WS consumer (a WebsocketCommunicator client
  listens), with a bench gateway whose room is a turn-taking person (fakes.livekit's
  FakeRoom with a multi-turn microphone);
* bare: a plain livekit-agents AgentSession with the same fakes, the same Silero VAD and
  the same turn_handling, and nothing else.

Both sides time the same thing: the last voiced sample of the clip in the microphone
frames → the first agent audio frame reaching the speaker output.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from typing import Any

from bench import common
from bench.turns import TurnLog, TurnPlan, TurnTakingMicrophone, watch_metrics


class _State:
    clip: common.Clip | None = None
    plan = TurnPlan()
    logs: dict[str, TurnLog] = {}
    published: dict[str, list[tuple[float, dict]]] = {}


def setup_django(endpointing: float, extra: dict[str, str] | None = None) -> None:
    """Django in this process: a throw-away SQLite DB, in-memory channel layer, fakes."""
    tmp = tempfile.mkdtemp(prefix="bench-db-")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "app.settings",
            "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            "VOICE_PROVIDERS": "fake",
            "VOICE_ENDPOINTING_DELAY": str(endpointing),
            "LOG_LEVEL": "WARNING",
            "VOICE_STOP_TIMEOUT": "3",
            **(extra or {}),
        }
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.LIVEKIT_GATEWAY = "bench.offline.BenchGateway"
    call_command("migrate", verbosity=0)
    _instrument_publisher()


def _instrument_publisher() -> None:
    """Stamp each bridge message when the session event hands it over (fan-out start)."""
    from app.voice.agent import event_bridge

    original = event_bridge.TranscriptPublisher.publish
    if getattr(original, "_bench", False):
        return

    def publish(self: Any, message: dict) -> None:
        _State.published.setdefault(self.session_id, []).append((time.monotonic(), dict(message)))
        original(self, message)

    publish._bench = True  # type: ignore[attr-defined]
    event_bridge.TranscriptPublisher.publish = publish  # type: ignore[method-assign]


def _gateway_classes() -> tuple[type, type]:
    from app.voice.sessions.media_rooms import room_of
    from fakes.livekit import FakeLiveKitGateway, FakeRoom

    class BenchRoom(FakeRoom):
        async def start_session(self, session: Any, agent: Any, **options: Any) -> None:
            watch_metrics(session, _State.logs.setdefault(self.name, TurnLog()))
            await super().start_session(session, agent, **options)

        def make_microphone(self) -> Any:
            log = _State.logs.setdefault(self.name, TurnLog())
            return TurnTakingMicrophone(_State.clip, _State.plan, self.speaker, log)

    class Gateway(FakeLiveKitGateway):
        async def join_room(self, *, room: str, identity: str) -> Any:
            fake = BenchRoom(name=room_of(room))  # the bench's own name for it, not LiveKit's
            self.rooms[room_of(room)] = fake
            return fake

    return BenchRoom, Gateway


def __getattr__(name: str) -> Any:  # BenchGateway resolves lazily: fakes need Django set up
    if name == "BenchGateway":
        return _gateway_classes()[1]
    raise AttributeError(name)


async def run_ours(room: str, timeout: float) -> dict[str, Any]:
    """One session through the whole app; returns the turn log and WS receive stamps."""
    from channels.testing import WebsocketCommunicator
    from django.test import AsyncClient

    from app.asgi import application

    client = AsyncClient()
    response = await client.post(
        "/session", {"room": room, "identity": f"user-{room}"}, content_type="application/json"
    )
    if response.status_code != 201:
        raise RuntimeError(f"POST /session -> {response.status_code} {response.content[:200]!r}")
    session_id = response.json()["session_id"]
    # The socket follows the session as its visitor: the cookie POST /session gave.
    cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items()).encode()
    headers = [(b"host", b"testserver"), (b"cookie", cookie)]
    socket = WebsocketCommunicator(application, f"/ws/transcript/{session_id}", headers=headers)
    connected, _ = await socket.connect()
    received: list[tuple[float, dict]] = []

    async def listen() -> None:
        while True:
            message = await socket.receive_json_from(timeout=3600)
            received.append((time.monotonic(), message))

    listener = asyncio.create_task(listen())
    log = _State.logs.setdefault(room, TurnLog())
    try:
        await asyncio.wait_for(log.done.wait(), timeout)
    except TimeoutError:
        log.errors.append("session timed out")
    await client.delete(f"/session/{session_id}")
    await asyncio.sleep(0.2)
    listener.cancel()
    await socket.disconnect()
    return {
        "log": log,
        "session_id": session_id,
        "received": received,
        "published": _State.published.get(session_id, []),
    }


async def run_bare(room: str, endpointing: float, timeout: float, turn_handling: dict | None = None) -> TurnLog:
    """The same turns through a bare AgentSession: no Django, no Channels, no bridge."""
    from livekit.agents import Agent, AgentSession
    from livekit.plugins import silero

    from fakes.livekit import SpeakerRecorder
    from fakes.llm import ScriptedLLM
    from fakes.stt import ScriptedSTT
    from fakes.tts import ToneTTS

    env = os.environ
    vad = _bare_vad(silero)
    session = AgentSession(
        vad=vad,
        stt=ScriptedSTT(utterances=[common.STT_UTTERANCE], final_delay=float(env["FAKE_STT_DELAY"])),
        llm=ScriptedLLM(
            first_token_delay=float(env["FAKE_LLM_FIRST_TOKEN_DELAY"]),
            token_interval=float(env["FAKE_LLM_TOKEN_INTERVAL"]),
        ),
        tts=ToneTTS(first_audio_delay=float(env["FAKE_TTS_FIRST_AUDIO_DELAY"])),
        turn_handling=turn_handling or common.production_turn_handling(),
    )
    log = TurnLog()
    speaker = SpeakerRecorder()
    watch_metrics(session, log)
    session.input.audio = TurnTakingMicrophone(_State.clip, _State.plan, speaker, log)
    session.output.audio = speaker
    await session.start(agent=Agent(instructions="bench"), record=False)
    session.generate_reply(instructions="greet")
    try:
        await asyncio.wait_for(log.done.wait(), timeout)
    except TimeoutError:
        log.errors.append("session timed out")
    await session.aclose()
    return log


_VAD: dict[str, Any] = {}


def _bare_vad(silero: Any) -> Any:
    key = os.environ.get("BENCH_VAD_MIN_SILENCE") or str(common.production_vad_min_silence())
    if key not in _VAD:
        _VAD[key] = silero.VAD.load(min_silence_duration=float(key))
    return _VAD[key]


def kind(message: dict) -> str:
    if "event" in message:
        return "speech_event"
    return "final" if message.get("final") else "interim"


def fanout_by_kind(received: list[tuple[float, dict]], published: list[tuple[float, dict]]) -> dict[str, list[float]]:
    """Like fanout(), split by message kind (finals are persisted before they are sent)."""
    out: dict[str, list[float]] = {}
    sent = list(published)
    j = 0
    for t_recv, m in ((t, {k: v for k, v in m.items() if k != "seq"}) for t, m in received if "seq" in m):
        while j < len(sent) and sent[j][1] != m:
            j += 1
        if j < len(sent):
            out.setdefault(kind(m), []).append(t_recv - sent[j][0])
            j += 1
    return out


def fanout(received: list[tuple[float, dict]], published: list[tuple[float, dict]]) -> list[float]:
    """Delivery latency per message: bridge hand-over → WS client, matched by order."""
    sent = [(t, m) for t, m in published]
    got = [(t, {k: v for k, v in m.items() if k != "seq"}) for t, m in received if "seq" in m]
    out, j = [], 0
    for t_recv, m in got:
        while j < len(sent) and sent[j][1] != m:
            j += 1
        if j < len(sent):
            out.append(t_recv - sent[j][0])
            j += 1
    return out
