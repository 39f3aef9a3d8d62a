"""A person who takes turns: waits until the agent is quiet, says the clip, waits for the
answer, and so on, for a bounded number of turns. Timing is taken on both sides of the
AgentSession's audio I/O (monotonic clock), and the session's own per-turn metrics
(ChatMessage.metrics) give the breakdown."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents.voice.io import AudioInput

from bench.common import Clip
from fakes.livekit import SpeakerRecorder

FRAME = 0.02


@dataclass
class TurnPlan:
    turns: int = 20
    quiet_before: float = 0.8  # agent silence (s) before the person speaks again
    reply_timeout: float = 12.0  # a turn without any agent audio by then is an error


@dataclass
class TurnLog:
    """What happened, in monotonic seconds; wall-clock offset to join the session metrics."""

    speech_starts: list[float] = field(default_factory=list)
    speech_ends: list[float] = field(default_factory=list)
    first_audio: list[float] = field(default_factory=list)  # agent audio starts (all segments)
    user_metrics: list[dict[str, Any]] = field(default_factory=list)
    agent_metrics: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    wall_minus_mono: float = field(default_factory=lambda: time.time() - time.monotonic())

    def latencies(self) -> list[float | None]:
        """Per turn: first agent audio after the end of speech (None: no answer)."""
        out: list[float | None] = []
        for end in self.speech_ends:
            after = [t for t in self.first_audio if t >= end]
            out.append(after[0] - end if after else None)
        return out

    def premature(self) -> int:
        """Agent audio that started while the person was still speaking (turn cut short)."""
        spoken = zip(self.speech_starts, self.speech_ends, strict=False)
        return sum(1 for s, e in spoken for t in self.first_audio if s < t < e)

    def breakdown(self) -> list[dict[str, float | None]]:
        """Per turn, the session's own stages (seconds), matched by time to each speech end."""
        rows = []
        for end in self.speech_ends:
            wall_end = end + self.wall_minus_mono
            user = next(
                (
                    m
                    for m in self.user_metrics
                    if m.get("stopped_speaking_at", 0) >= wall_end - 1.5
                    and m.get("stopped_speaking_at", 0) <= wall_end + 1.5
                ),
                {},
            )
            agent = next((m for m in self.agent_metrics if m.get("started_speaking_at", 0) > wall_end), {})
            rows.append(
                {
                    "vad_end_lag": (user["stopped_speaking_at"] - wall_end) if "stopped_speaking_at" in user else None,
                    "end_of_turn_delay": user.get("end_of_turn_delay"),
                    "transcription_delay": user.get("transcription_delay"),
                    "llm_ttft": agent.get("llm_node_ttft"),
                    "tts_ttfb": agent.get("tts_node_ttfb"),
                    "lib_e2e_latency": agent.get("e2e_latency"),
                }
            )
        return rows


def watch_metrics(session: Any, log: TurnLog) -> None:
    """Collect ChatMessage.metrics of user and assistant messages as the session adds them."""

    def on_item(ev: Any) -> None:
        item = ev.item
        if getattr(item, "type", None) != "message":
            return
        metrics = dict(getattr(item, "metrics", None) or {})
        if item.role == "user":
            log.user_metrics.append(metrics)
        elif item.role == "assistant":
            log.agent_metrics.append(metrics)

    session.on("conversation_item_added", on_item)


class TurnTakingMicrophone(AudioInput):
    """AudioInput for an in-process AgentSession: real-time 20 ms frames of silence or speech."""

    def __init__(self, clip: Clip, plan: TurnPlan, speaker: SpeakerRecorder, log: TurnLog) -> None:
        super().__init__(label="bench-microphone")
        self._clip, self._plan, self._speaker, self._log = clip, plan, speaker, log
        self._frame = int(clip.rate * FRAME)
        self._silence = np.zeros(self._frame, dtype=np.int16)
        self._pending: list[np.ndarray] = []
        log.first_audio = speaker.first_audio_at  # the same list: filled as the agent speaks
        self._clock: float | None = None
        self._script = asyncio.create_task(self._person())

    def _agent_quiet_for(self) -> float:
        if self._speaker._segment_seconds:  # noqa: SLF001 - playing right now
            return 0.0
        heard = self._speaker.first_audio_at
        if not heard:
            return float("inf")
        # The speaker's segment ends when its playout finishes; approximate by last frame time.
        return time.monotonic() - self._last_playing

    async def _person(self) -> None:
        plan, log = self._plan, self._log
        self._last_playing = time.monotonic()
        # The agent greets first: wait for that greeting to start and finish.
        await self._wait_for(lambda: bool(self._speaker.first_audio_at), plan.reply_timeout, "greeting")
        for turn in range(plan.turns):
            await self._wait_for(lambda: self._agent_quiet_for() >= plan.quiet_before, 30.0, f"quiet {turn}")
            heard = len(self._speaker.first_audio_at)
            n = len(self._clip.samples) // self._frame + 1
            padded = np.zeros(n * self._frame, dtype=np.int16)
            padded[: len(self._clip.samples)] = self._clip.samples
            self._pending = list(padded.reshape(n, self._frame))
            log.speech_starts.append(time.monotonic())
            await self._wait_for(lambda: not self._pending, 10.0, f"speech {turn}")
            if not await self._wait_for(
                lambda h=heard: len(self._speaker.first_audio_at) > h, plan.reply_timeout, f"reply {turn}"
            ):
                continue
        await self._wait_for(lambda: self._agent_quiet_for() >= plan.quiet_before, 30.0, "last reply")
        log.done.set()

    async def _wait_for(self, predicate: Any, timeout: float, what: str) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self._log.errors.append(f"timeout waiting for {what}")
                return False
            await asyncio.sleep(0.01)  # a simulated person polling what they hear
        return True

    async def __anext__(self) -> rtc.AudioFrame:
        if self._clock is None:
            self._clock = time.monotonic()
        self._clock += FRAME
        await asyncio.sleep(max(0.0, self._clock - time.monotonic()))
        if self._speaker._segment_seconds:  # noqa: SLF001
            self._last_playing = time.monotonic()
        if self._pending:
            chunk = self._pending.pop(0)
            if not self._pending:
                # The clip's last voiced sample is inside this frame: place it exactly.
                # A real mic hands a frame over when its 20 ms are captured, so that sample
                # was spoken (frame - tail) samples before now.
                tail = len(self._clip.samples) % self._frame
                self._log.speech_ends.append(time.monotonic() - (self._frame - tail) / self._clip.rate)
        else:
            chunk = self._silence
        return rtc.AudioFrame(chunk.tobytes(), self._clip.rate, 1, self._frame)

    async def aclose(self) -> None:
        self._script.cancel()
