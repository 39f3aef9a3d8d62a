"""Server-side voice-to-voice latency without a LiveKit server, two ways:

* ours: POST /session through the real Django/DRF/Channels app in this process, the real
  AgentRun + event bridge + channel layer + WS consumer (a WebsocketCommunicator client
  listens). Every LiveKit call goes to a bench gateway (``using_gateway``) whose rooms hold
  a turn-taking person (fakes.livekit's FakeRoom with the bench's microphone);
* bare: a plain livekit-agents AgentSession with the same fake providers and turn handling
  (``common.bare_session``), and nothing else.

Both sides time the same thing: the last voiced sample of the clip in the microphone
frames → the first agent audio frame reaching the speaker output. The WS fan-out is timed
from the publisher's hand-over to the channel layer (``group_send``, noted by the layer this
process is configured with) to the WS client.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from typing import Any

from channels.layers import InMemoryChannelLayer

from bench import common
from bench.turns import TurnLog, TurnPlan, TurnTakingMicrophone, watch_metrics


class StampedChannelLayer(InMemoryChannelLayer):
    """The in-memory channel layer, noting when each numbered message is sent to a group."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: dict[tuple[str, int], float] = {}  # (group, seq) → monotonic

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        seq = (message.get("message") or {}).get("seq")
        if seq is not None:
            self.sent[(group, seq)] = time.monotonic()
        await super().group_send(group, message)


def setup_django() -> None:
    """Django in this process: a throw-away SQLite DB, the fake providers, and the stamped
    in-memory channel layer (CHANNEL_LAYERS, as the unit tests set theirs)."""
    tmp = tempfile.mkdtemp(prefix="bench-db-")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "app.settings",
            "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            "VOICE_PROVIDERS": "fake",
            "LOG_LEVEL": "WARNING",
            "VOICE_STOP_TIMEOUT": "3",
        }
    )
    for name in ("REDIS_URL", "CHANNEL_LAYERS"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import override_settings

    override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "bench.offline.StampedChannelLayer"}}).enable()
    call_command("migrate", verbosity=0)


def bench_gateway(clip: common.Clip, plan: TurnPlan) -> Any:
    """A FakeLiveKitGateway whose rooms hold the turn-taking person; ``gateway.logs`` has each
    room's TurnLog by the visitor's room name. Built here: fakes need Django set up."""
    from app.voice.sessions.media_rooms import room_of
    from fakes.livekit import FakeLiveKitGateway, FakeRoom

    logs: dict[str, TurnLog] = {}

    class BenchRoom(FakeRoom):
        async def start_session(self, session: Any, agent: Any, **options: Any) -> None:
            watch_metrics(session, logs.setdefault(room_of(self.name), TurnLog()).add_metrics)
            await super().start_session(session, agent, **options)

        def make_microphone(self) -> Any:
            return TurnTakingMicrophone(clip, plan, self.speaker, logs.setdefault(room_of(self.name), TurnLog()))

    class BenchGateway(FakeLiveKitGateway):
        async def join_room(self, *, room: str, identity: str) -> Any:
            fake = self.rooms[room_of(room)] = BenchRoom(name=room)
            return fake

    gateway = BenchGateway(url="ws://127.0.0.1:7880", api_key="devkey", api_secret="secret")
    gateway.logs = logs
    return gateway


async def run_ours(clip: common.Clip, plan: TurnPlan, room: str, timeout: float) -> dict[str, Any]:
    """One session through the whole app: its turn log and its WS fan-out by message kind."""
    from channels.layers import get_channel_layer
    from channels.testing import WebsocketCommunicator
    from django.test import AsyncClient

    from app.asgi import application
    from app.voice.livekit_gateway import using_gateway
    from app.voice.sessions.groups import transcript_group

    gateway = bench_gateway(clip, plan)
    with using_gateway(gateway):
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
        await socket.connect()
        received: list[tuple[float, dict]] = []

        async def listen() -> None:
            while True:
                message = await socket.receive_json_from(timeout=3600)
                received.append((time.monotonic(), message))

        listener = asyncio.create_task(listen())
        log = gateway.logs[room]
        await log.finished(timeout)
        await client.delete(f"/session/{session_id}")
        await asyncio.sleep(0.2)
        listener.cancel()
        await socket.disconnect()
    group = transcript_group(session_id)
    sent = {seq: t for (g, seq), t in get_channel_layer().sent.items() if g == group}
    return {"log": log, "session_id": session_id, "fanout": fanout(received, sent)}


async def run_bare(
    clip: common.Clip,
    plan: TurnPlan,
    timeout: float,
    *,
    turn_handling: Any = None,
    vad_min_silence: float | None = None,
) -> TurnLog:
    """The same turns through a bare AgentSession: no Django app, no Channels, no bridge."""
    from livekit.agents import Agent

    from fakes.livekit import SpeakerRecorder

    session = common.bare_session(vad_min_silence=vad_min_silence, turn_handling=turn_handling)
    log, speaker = TurnLog(), SpeakerRecorder()
    watch_metrics(session, log.add_metrics)
    session.input.audio = TurnTakingMicrophone(clip, plan, speaker, log)
    session.output.audio = speaker
    await session.start(agent=Agent(instructions="bench"), record=False)
    session.generate_reply(instructions="greet")
    await log.finished(timeout)
    await session.aclose()
    return log


def kind(message: dict[str, Any]) -> str:
    if "type" in message:
        return str(message["type"])  # agent_state, agent_partial
    if "event" in message:
        return "speech_event"
    return "final" if message.get("final") else "interim"


def fanout(received: list[tuple[float, dict[str, Any]]], sent: dict[int, float]) -> dict[str, list[float]]:
    """Per message kind: hand-over to the channel layer → receipt by the WS client, by seq."""
    out: dict[str, list[float]] = {}
    for t, message in received:
        if (seq := message.get("seq")) in sent:
            out.setdefault(kind(message), []).append(t - sent[seq])
    return out
