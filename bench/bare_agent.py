"""A bare livekit-agents agent for the live baseline: joins a LiveKit room and runs an
AgentSession with the same fakes, Silero VAD and turn_handling as ours — no Django, no
Channels, no bridge. `python -m bench.bare_agent URL ROOM IDENTITY METRICS_FILE`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import timedelta

from livekit import api, rtc
from livekit.agents import Agent, AgentSession, room_io
from livekit.plugins import silero

from bench import common
from fakes.llm import ScriptedLLM
from fakes.stt import ScriptedSTT
from fakes.tts import ToneTTS


async def main(url: str, room_name: str, identity: str, metrics_file: str) -> None:
    token = (
        api.AccessToken(os.environ.get("LIVEKIT_API_KEY", "devkey"), os.environ.get("LIVEKIT_API_SECRET", "secret"))
        .with_identity("bare-agent")
        .with_grants(api.VideoGrants(room_join=True, room=room_name))
        .with_ttl(timedelta(minutes=30))
        .to_jwt()
    )
    room = rtc.Room()
    await room.connect(url, token)
    env = os.environ
    vad = silero.VAD.load(min_silence_duration=common.production_vad_min_silence())
    session = AgentSession(
        vad=vad,
        stt=ScriptedSTT(utterances=[env["FAKE_STT_UTTERANCES"]], final_delay=float(env["FAKE_STT_DELAY"])),
        llm=ScriptedLLM(
            first_token_delay=float(env["FAKE_LLM_FIRST_TOKEN_DELAY"]),
            token_interval=float(env["FAKE_LLM_TOKEN_INTERVAL"]),
        ),
        tts=ToneTTS(first_audio_delay=float(env["FAKE_TTS_FIRST_AUDIO_DELAY"])),
        turn_handling=common.production_turn_handling(),
    )
    out = open(metrics_file, "a", buffering=1)  # noqa: ASYNC230, SIM115 - once, before the session starts

    def on_item(ev: object) -> None:
        item = ev.item  # type: ignore[attr-defined]
        if getattr(item, "type", None) == "message" and item.role in ("user", "assistant"):
            out.write(
                json.dumps(
                    {"kind": "metrics", "session_id": "bare", "role": item.role, "metrics": dict(item.metrics or {})}
                )
                + "\n"
            )

    session.on("conversation_item_added", on_item)
    closed = asyncio.Event()
    session.on("close", lambda _ev: closed.set())
    await session.start(
        agent=Agent(instructions="bench"),
        room=room,
        # As app/voice/agent/livekit_gateway.py starts ours.
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
        await asyncio.wait_for(closed.wait(), float(env.get("BENCH_BARE_TIMEOUT", "600")))
    except TimeoutError:
        pass
    await session.aclose()
    await room.disconnect()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
