"""A headless person in a LiveKit room (`livekit` rtc): publishes the speech clip in real
time, turn by turn, listens to the agent's track, and times end of speech → first
non-silent agent frame on the same clock. Also listens to the session's WebSocket."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import websockets
from livekit import rtc

from bench.common import Clip
from bench.turns import TurnLog, TurnPlan, take_turns

FRAME = 0.02
LOUD_PEAK = 1000  # int16; the ToneTTS buzz peaks near 16000, WebRTC silence is ~0
SEGMENT_GAP = 0.3  # agent audio after this much quiet starts a new "first audio"


@dataclass
class BotResult:
    name: str
    log: TurnLog
    session_id: str = ""
    ws_received: list[tuple[float, dict]] = field(default_factory=list)
    setup_seconds: float = 0.0


class Bot:
    def __init__(
        self,
        name: str,
        room: str,
        livekit_url: str,
        backend_url: str | None,
        clip: Clip,
        plan: TurnPlan,
        *,
        listen_ms: int | None = None,
        speak_ms: int = 20,
    ) -> None:
        """listen_ms/speak_ms: frame sizes; larger frames mean fewer Python FFI events per
        second (a cheaper bot, for capacity runs) at the same sample-accurate timing."""
        self.listen_ms, self.frame = listen_ms, speak_ms / 1000
        self.name, self.room_name, self.livekit_url, self.backend_url = name, room, livekit_url, backend_url
        self.clip, self.plan = clip, plan
        self.log = TurnLog(name=name)
        self.result = BotResult(name, self.log)
        self._last_loud = 0.0
        self._loud_since: float | None = None
        self._tasks: list[asyncio.Task] = []

    # -- the agent's audio -------------------------------------------------------------
    async def _listen(self, track: rtc.Track) -> None:
        # 48 kHz, WebRTC's own rate: no resampling; a peak test is enough to tell the
        # ToneTTS buzz from silence and keeps a bot cheap (100 frames/s each).
        stream = rtc.AudioStream(track, sample_rate=48000, num_channels=1, frame_size_ms=self.listen_ms)
        async for event in stream:
            frame = event.frame
            samples = np.frombuffer(frame.data, dtype=np.int16)
            loud = np.flatnonzero(np.abs(samples) > LOUD_PEAK) if samples.size else ()
            if len(loud):
                now = time.monotonic()
                # The frame's last sample arrived now; its first loud sample that much earlier.
                start = now - (len(samples) - loud[0]) / frame.sample_rate
                if now - self._last_loud > SEGMENT_GAP:
                    self.log.first_audio.append(start)
                self._last_loud = now

    def _agent_quiet_for(self) -> float:
        return time.monotonic() - self._last_loud if self.log.first_audio else float("inf")

    # -- the person's microphone ---------------------------------------------------------
    async def _speak(self, source: rtc.AudioSource) -> None:
        clip = self.clip
        per = int(clip.rate * self.frame)
        silence = np.zeros(per, dtype=np.int16)
        pending: list[np.ndarray] = []
        clock = time.monotonic()

        async def pump() -> None:
            nonlocal clock
            while True:  # bounded by the turn script, which cancels this task
                clock += self.frame
                await asyncio.sleep(max(0.0, clock - time.monotonic()))
                chunk = pending.pop(0) if pending else silence
                await source.capture_frame(rtc.AudioFrame(chunk.tobytes(), clip.rate, 1, per))
                if chunk is last[0]:
                    # Spoken that long before this frame was complete; plus what the source
                    # still holds before sending.
                    self.log.speech_ends.append(time.monotonic() - clip.last_frame_lead(per) + source.queued_duration)
                    last[0] = None

        def say() -> None:
            pending.extend(frames := clip.frames(per))
            last[0] = frames[-1]

        last: list[Any] = [None]
        pumping = asyncio.create_task(pump())
        try:
            await take_turns(self.plan, self.log, say, lambda: last[0] is not None, self._agent_quiet_for)
        finally:
            pumping.cancel()

    # -- the session's WebSocket ---------------------------------------------------------
    async def _watch_socket(self, session_id: str, cookies: httpx.Cookies) -> None:
        """Follow the session as its visitor: the socket wants the visitor's cookie (and, as
        a non-browser client, sends no Origin)."""
        assert self.backend_url
        url = self.backend_url.replace("http://", "ws://") + f"/ws/transcript/{session_id}"
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        async with websockets.connect(url, additional_headers={"Cookie": cookie}, open_timeout=20) as ws:
            async for raw in ws:
                self.result.ws_received.append((time.monotonic(), json.loads(raw)))

    async def run(self, token: str, http: httpx.AsyncClient | None, timeout: float) -> BotResult:
        started = time.monotonic()
        room = rtc.Room()
        room.on(
            "track_subscribed",
            lambda track, *_: (
                self._tasks.append(asyncio.create_task(self._listen(track)))
                if track.kind == rtc.TrackKind.KIND_AUDIO
                else None
            ),
        )
        source = rtc.AudioSource(self.clip.rate, 1, queue_size_ms=200)
        try:
            await room.connect(self.livekit_url, token, rtc.RoomOptions(auto_subscribe=True))
            track = rtc.LocalAudioTrack.create_audio_track("mic", source)
            await room.local_participant.publish_track(
                track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            )
            if http is not None:
                response = await http.post("/session", json={"room": self.room_name, "identity": self.name})
                if response.status_code != 201:
                    raise RuntimeError(f"POST /session {response.status_code}: {response.text[:200]}")
                self.result.session_id = response.json()["session_id"]
                self._tasks.append(asyncio.create_task(self._watch_socket(self.result.session_id, http.cookies)))
            self.result.setup_seconds = time.monotonic() - started
            await asyncio.wait_for(self._speak(source), timeout)
        except Exception as exc:  # noqa: BLE001 - an error is a result here
            self.log.errors.append(f"{self.name}: {type(exc).__name__}: {exc}")
        finally:
            if http is not None and self.result.session_id:
                try:
                    await http.delete(f"/session/{self.result.session_id}")
                except Exception as exc:  # noqa: BLE001
                    self.log.errors.append(f"{self.name}: DELETE {exc}")
            await asyncio.sleep(0.3)
            for task in self._tasks:
                task.cancel()
            await room.disconnect()
            await source.aclose()
        self.log.add_socket(self.result.ws_received)
        return self.result
