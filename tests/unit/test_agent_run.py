"""An ``AgentRun`` built straight from its parts, as livekit/agents' own tests build an
``AgentSession``: fake providers passed in, a fake room handed to ``start``; no API, no
gateway, no settings. What it hears and says is stored, and stopping it releases the room."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.voice.agent.providers import ProviderSet, shared_vad
from app.voice.agent.runner import AgentRun
from app.voice.models import EndReason, TranscriptEntry, VoiceSession
from app.voice.sessions.groups import channel_layer, transcript_group
from app.voice.sessions.info import SessionInfo
from fakes.livekit import FakeRoom, PersonScript
from fakes.llm import DEFAULT_GREETING, ScriptedLLM
from fakes.stt import ScriptedSTT
from fakes.tts import ToneTTS

pytestmark = pytest.mark.django_db(transaction=True)

SAID = "What time does the library open"


async def stored_lines(session_id: str) -> list[tuple[str, str]]:
    entries = TranscriptEntry.objects.filter(session_id=session_id).order_by("seq")
    return [(entry.role, entry.text) async for entry in entries]


def is_reply(event: dict, text: str) -> bool:
    message = event["message"]
    return (message.get("role"), message.get("final"), message.get("text")) == ("agent", True, text)


async def test_a_run_built_from_its_fakes_greets_hears_answers_and_releases_the_room(speech_wav: Path) -> None:
    row = await VoiceSession.objects.acreate(room="direct", livekit_room="direct~1", identity="alice")
    info = SessionInfo.of(row)
    room = FakeRoom(name=info.livekit_room, script=PersonScript.saying(speech_wav, speak_after=3.0))
    providers = ProviderSet(vad=shared_vad(), stt=ScriptedSTT(utterances=(SAID,)), llm=ScriptedLLM(), tts=ToneTTS())
    run = AgentRun(info, providers=providers)

    layer = channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(transcript_group(info.session_id), listener)
    await run.start(room)
    reply = f"You said: {SAID}"
    async with asyncio.timeout(30):  # a final line is stored before it is sent
        while not is_reply(await layer.receive(listener), reply):
            pass
    assert await stored_lines(info.session_id) == [("agent", DEFAULT_GREETING), ("user", SAID), ("agent", reply)]
    await run.request_stop(EndReason.DELETED)
    await asyncio.wait_for(run.ended.wait(), 10)

    row = await VoiceSession.objects.aget(pk=row.pk)
    assert (row.status, row.end_reason) == ("ended", "deleted")
    assert room.closed and room.session is not None
