"""The fake STT runs no VAD of its own: the session's VAD flushes it (manual_flush), and
its final comes no sooner than `final_delay` after the last speech it heard."""

from __future__ import annotations

import asyncio
import time

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


async def test_the_final_comes_final_delay_after_the_last_speech_however_late_the_flush() -> None:
    stream = ScriptedSTT(utterances=["one two", "three four"], final_delay=0.3).stream()
    # Each final with the time it arrived, read as it comes (not when the test looks).
    finals: asyncio.Queue[tuple[stt.SpeechEvent, float]] = asyncio.Queue()

    async def read() -> None:
        async for event in stream:
            if event.type == stt.SpeechEventType.FINAL_TRANSCRIPT:
                finals.put_nowait((event, time.time()))

    reader = asyncio.create_task(read())

    # Flushed right after the speech: the final waits out the delay from the last loud frame.
    for frame in _frames(0.6, 0.3):
        stream.push_frame(frame)
    flushed_at = time.time()
    stream.flush()
    final, arrived = await asyncio.wait_for(finals.get(), 5)
    assert final.alternatives[0].text == "one two"
    assert final.speech_end_time is not None and final.speech_end_time >= flushed_at
    assert 0.25 <= arrived - final.speech_end_time < 0.6
    assert arrived - flushed_at >= 0.25

    # Flushed 0.5 s after the speech (silence heard in real time): the delay has passed, so
    # the final does not wait another final_delay.
    for frame in _frames(0.6, 0.3):
        stream.push_frame(frame)
    for frame in _frames(0.5, 0.0):
        await asyncio.sleep(frame.duration)
        stream.push_frame(frame)
    flushed_at = time.time()
    stream.flush()
    final, arrived = await asyncio.wait_for(finals.get(), 5)
    assert final.alternatives[0].text == "three four"
    assert arrived - flushed_at < 0.2
    assert final.speech_end_time is not None
    assert arrived - final.speech_end_time >= 0.25  # never before final_delay
    assert flushed_at - final.speech_end_time >= 0.45  # the silence did not count as speech

    await stream.aclose()
    await asyncio.wait_for(reader, 5)  # the events end with the stream
