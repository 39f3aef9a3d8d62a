"""The fake STT runs no VAD of its own: the session's VAD flushes it (manual_flush)."""

from __future__ import annotations

import asyncio

import numpy as np
from livekit import rtc
from livekit.agents import stt

from fakes.stt import ScriptedSTT

RATE = 16000
FRAME = 320  # 20 ms


def _frames(seconds: float, level: float) -> list[rtc.AudioFrame]:
    """20 ms frames of a 220 Hz tone at `level` (peak, full scale 1.0); 0 is silence."""
    t = np.arange(int(seconds * RATE)) / RATE
    samples = (level * 32767 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    return [rtc.AudioFrame(samples[i : i + FRAME].tobytes(), RATE, 1, FRAME) for i in range(0, len(samples), FRAME)]


async def _events(stream: stt.RecognizeStream, until: int) -> list[stt.SpeechEvent]:
    out: list[stt.SpeechEvent] = []
    async with asyncio.timeout(5):
        async for event in stream:
            out.append(event)
            if sum(e.type == stt.SpeechEventType.FINAL_TRANSCRIPT for e in out) >= until:
                break
    return out


async def test_the_fake_stt_finalises_what_was_said_only_when_the_session_flushes_it() -> None:
    fake = ScriptedSTT(utterances=["one two three four", "five six"], interim_interval=0.3)
    assert fake.capabilities.manual_flush and fake.capabilities.streaming
    stream = fake.stream()
    for frame in _frames(0.3, 0.0) + _frames(1.2, 0.3) + _frames(0.6, 0.0):
        stream.push_frame(frame)
    stream.flush()  # what the session does at its VAD's end of speech
    for frame in _frames(0.5, 0.0):
        stream.push_frame(frame)
    stream.flush()  # a flush with nothing said since: no final, no empty line
    for frame in _frames(0.7, 0.3):
        stream.push_frame(frame)
    stream.flush()

    events = await _events(stream, until=2)
    await stream.aclose()

    finals = [e.alternatives[0].text for e in events if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT]
    interims = [e.alternatives[0].text for e in events if e.type == stt.SpeechEventType.INTERIM_TRANSCRIPT]
    assert finals == ["one two three four", "five six"]
    # One word per 0.3 s of speech, never the whole line before the flush: 1.2 s -> 3 words.
    assert interims[:3] == ["one", "one two", "one two three"]
    assert "one two three four" not in interims
    assert interims[3:] == ["five"]


async def test_silence_alone_never_makes_a_final() -> None:
    stream = ScriptedSTT(utterances=["hello"]).stream()
    for frame in _frames(1.0, 0.001):  # a faint hiss, below the speech level
        stream.push_frame(frame)
    stream.flush()
    for frame in _frames(0.5, 0.3):
        stream.push_frame(frame)
    stream.flush()

    events = await _events(stream, until=1)
    await stream.aclose()
    assert [e.alternatives[0].text for e in events if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT] == ["hello"]
