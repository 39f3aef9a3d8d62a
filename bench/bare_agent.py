"""A bare livekit-agents agent for the live baseline (started by bench.live, not by hand):
joins a LiveKit room and runs `common.bare_session` (the fake providers, Silero VAD and
turn handling ours get, nothing else), writing each message's metrics to METRICS_FILE as
JSON lines. `python -m bench.bare_agent URL TOKEN IDENTITY METRICS_FILE`."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from livekit import rtc
from livekit.agents import Agent, room_io

from bench import common
from bench.turns import watch_metrics


async def main(url: str, token: str, identity: str, metrics_file: str) -> None:
    room = rtc.Room()
    await room.connect(url, token)
    session = common.bare_session()
    out = open(metrics_file, "a", buffering=1)  # noqa: ASYNC230, SIM115 - once, before the session starts
    watch_metrics(session, lambda role, metrics: out.write(json.dumps({"role": role, "metrics": metrics}) + "\n"))
    closed = asyncio.Event()
    session.on("close", lambda _ev: closed.set())
    await session.start(
        agent=Agent(instructions="bench"),
        room=room,
        # As app/voice/livekit_gateway.py starts ours.
        room_options=room_io.RoomOptions(
            participant_identity=identity,
            audio_input=room_io.AudioInputOptions(sample_rate=16000, auto_gain_control=False),
        ),
        record=False,
        session_host=False,
    )
    session.generate_reply(instructions="greet")
    print("bare-agent: ready", flush=True)
    try:
        await asyncio.wait_for(closed.wait(), float(os.environ.get("BENCH_BARE_TIMEOUT", "600")))
    except TimeoutError:
        pass
    await session.aclose()
    await room.disconnect()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
