"""A person who takes turns: waits until the agent is quiet, says the clip, waits for the
answer, and so on, for a bounded number of turns; and what happened, on one clock. The
in-process microphone (bench.offline) and the LiveKit bot (bench.bot) run the same script.

The stages of each turn come from the session's own per-turn metrics
(``ChatMessage.metrics``) where the bench sees the session (in process, the bare agent), else
from what the product reports on the transcript socket (each reply's ``latency``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents.voice.io import AudioInput

from bench import common
from bench.common import Clip

FRAME = 0.02
# Per turn (seconds): the session's stages, then what lies outside the session (v2v minus
# the session's own end of speech → first audio: the VAD's end lag, the uplink, the downlink).
STAGES = (
    "vad_end_lag",
    "end_of_turn_delay",
    "transcription_delay",
    "llm_ttft",
    "tts_ttfb",
    "lib_e2e_latency",
    "downlink_transport",
    "outside_session",
)
STAGE_NAMES = {
    "vad_end_lag": "vad-end",
    "end_of_turn_delay": "end-of-turn",
    "transcription_delay": "stt",
    "llm_ttft": "llm-ttft",
    "tts_ttfb": "tts-ttfb",
    "downlink_transport": "downlink",
    "outside_session": "outside",
}
# The socket's latency parts (ms) → the stages they are.
SOCKET_PARTS = {
    "end_of_turn_ms": "end_of_turn_delay",
    "stt_ms": "transcription_delay",
    "llm_ms": "llm_ttft",
    "tts_ms": "tts_ttfb",
    "total_ms": "lib_e2e_latency",
}


@dataclass
class TurnPlan:
    turns: int = 20
    quiet_before: float = 0.8  # agent silence (s) before the person speaks again
    reply_timeout: float = 12.0  # a turn without any agent audio by then is an error


@dataclass
class TurnLog:
    """What happened, in the log's clock (monotonic, or the page's audio clock); the
    wall-clock offset joins the session's metrics, whose times are wall-clock."""

    name: str = ""  # who, in error messages
    speech_starts: list[float] = field(default_factory=list)
    speech_ends: list[float] = field(default_factory=list)
    first_audio: list[float] = field(default_factory=list)  # agent audio starts (all segments)
    user_metrics: list[dict[str, Any]] = field(default_factory=list)
    agent_metrics: list[dict[str, Any]] = field(default_factory=list)
    replies: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (arrival, socket latency)
    errors: list[str] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    wall_minus_mono: float = field(default_factory=lambda: time.time() - time.monotonic())

    def add_metrics(self, role: str, metrics: dict[str, Any]) -> None:
        (self.user_metrics if role == "user" else self.agent_metrics).append(metrics)

    def add_socket(self, received: list[tuple[float, dict[str, Any]]]) -> None:
        """The agent's final lines with a latency, from the transcript socket's messages."""
        self.replies += [
            (t, m["latency"]) for t, m in received if m.get("role") == "agent" and m.get("final") and m.get("latency")
        ]

    async def wait(self, predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> bool:
        """Poll until `predicate`; after `timeout`, an error and False."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.errors.append(f"{self.name + ': ' if self.name else ''}timeout waiting for {what}")
                return False
            await asyncio.sleep(interval)  # a person polling what they hear
        return True

    async def finished(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.done.wait(), timeout)
        except TimeoutError:
            self.errors.append("session timed out")

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
        """Per turn, the session's stages (seconds), matched by time to each speech end."""
        rows = []
        replies = list(self.replies)
        for end, v2v in zip(self.speech_ends, self.latencies(), strict=True):
            row: dict[str, float | None] = dict.fromkeys(STAGES)
            if self.user_metrics or self.agent_metrics:
                row.update(self._from_metrics(end))
            elif v2v is not None:
                # The reply's final line comes once it has played: the first one after its audio.
                reply = next((r for r in replies if r[0] > end + v2v), None)
                if reply is not None:
                    replies.remove(reply)
                    parts = reply[1]
                    row.update({k: None if parts.get(p) is None else parts[p] / 1000 for p, k in SOCKET_PARTS.items()})
            if v2v is not None and row["lib_e2e_latency"] is not None:
                row["outside_session"] = v2v - row["lib_e2e_latency"]
            rows.append(row)
        return rows

    def _from_metrics(self, end: float) -> dict[str, float | None]:
        wall_end = end + self.wall_minus_mono
        user = next((m for m in self.user_metrics if abs(m.get("stopped_speaking_at", 0) - wall_end) <= 1.5), {})
        agent = next((m for m in self.agent_metrics if m.get("started_speaking_at", 0) > wall_end), {})
        downlink = None
        if started := agent.get("started_speaking_at"):
            mono = started - self.wall_minus_mono
            heard = [t for t in self.first_audio if t >= mono - 0.05]
            if heard and heard[0] - mono < 2.0:
                downlink = heard[0] - mono  # the agent's playout start → its first loud sample heard
        return {
            "vad_end_lag": (user["stopped_speaking_at"] - wall_end) if "stopped_speaking_at" in user else None,
            "end_of_turn_delay": user.get("end_of_turn_delay"),
            "transcription_delay": user.get("transcription_delay"),
            "llm_ttft": agent.get("llm_node_ttft"),
            "tts_ttfb": agent.get("tts_node_ttfb"),
            "lib_e2e_latency": agent.get("e2e_latency"),
            "downlink_transport": downlink,
        }


def describe(log: TurnLog) -> dict[str, Any]:
    lat = log.latencies()
    rows = log.breakdown()
    answered = [x for x in lat if x is not None]
    return {
        "voice_to_voice": common.summary(answered),
        "turns": len(lat),
        "unanswered": len(lat) - len(answered),
        "errors": log.errors,
        "premature_replies": log.premature(),
        "breakdown_p50": {k: common.pct([r[k] for r in rows if r[k] is not None], 50) for k in STAGES},
        "raw": {"voice_to_voice": lat, "breakdown": rows},
    }


def line(label: str, d: dict[str, Any]) -> str:
    """One run on one line: voice-to-voice and the p50 of each stage it has."""
    s, b = d["voice_to_voice"], d["breakdown_p50"]
    stages = ", ".join(f"{name} {common.fmt(b[k])}" for k, name in STAGE_NAMES.items() if b.get(k) is not None)
    return (
        f"  {label:<7} n={s['n']:>2}  p50 {common.fmt(s['p50']):>7}  p95 {common.fmt(s['p95']):>7}"
        f"  | p50: {stages}  errors={len(d['errors'])}"
    )


def ours_vs_bare(bare: TurnLog, ours: TurnLog, started: float, ws_fanout: list[float] | None = None) -> dict[str, Any]:
    """Both sides described and printed, with their ratio (and ours' WS fan-out, if measured)."""
    d_bare, d_ours = describe(bare), describe(ours)
    ratio = {
        q: d_ours["voice_to_voice"][q] / d_bare["voice_to_voice"][q]
        if d_ours["voice_to_voice"][q] and d_bare["voice_to_voice"][q]
        else None
        for q in ("p50", "p95")
    }
    print(line("bare", d_bare))
    print(line("ours", d_ours))
    fanout = ""
    if ws_fanout is not None:
        d_ours["ws_fanout"] = f = common.summary(ws_fanout)
        fanout = f"   WS fan-out (channel layer -> client) p50 {common.fmt(f['p50'])} p99 {common.fmt(f['p99'])}"
    r50, r95 = (f"{ratio[q]:.3f}" if ratio[q] else "–" for q in ("p50", "p95"))
    print(f"  ours/bare p50 {r50}  p95 {r95}{fanout}  [{time.monotonic() - started:.0f} s]", flush=True)
    return {"bare": d_bare, "ours": d_ours, "ratio_ours_over_bare": ratio}


def watch_metrics(session: Any, record: Callable[[str, dict[str, Any]], None]) -> None:
    """`record(role, metrics)` for each user and assistant message the session adds."""

    def on_item(ev: Any) -> None:
        item = ev.item
        if getattr(item, "type", None) == "message" and item.role in ("user", "assistant"):
            record(item.role, dict(getattr(item, "metrics", None) or {}))

    session.on("conversation_item_added", on_item)


async def take_turns(
    plan: TurnPlan, log: TurnLog, say: Callable[[], None], saying: Callable[[], bool], quiet_for: Callable[[], float]
) -> None:
    """The person's side: the agent greets first; then each turn waits until the agent has been
    quiet for `plan.quiet_before`, says the clip (`say`; `saying` until its last frame is out)
    and waits for an answer. Every wait is bounded; `log.done` is set at the end."""
    try:
        await log.wait(lambda: bool(log.first_audio), plan.reply_timeout + 10, "greeting")
        for turn in range(plan.turns):
            await log.wait(lambda: quiet_for() >= plan.quiet_before, 30.0, f"quiet {turn}")
            heard = len(log.first_audio)
            log.speech_starts.append(time.monotonic())
            say()
            await log.wait(lambda: not saying(), 15.0, f"speech {turn}")
            await log.wait(lambda h=heard: len(log.first_audio) > h, plan.reply_timeout, f"reply {turn}")
        await log.wait(lambda: quiet_for() >= plan.quiet_before, 30.0, "last reply")
    finally:
        log.done.set()


class TurnTakingMicrophone(AudioInput):
    """AudioInput for an in-process AgentSession: real-time 20 ms frames of silence or speech;
    `speaker` (fakes.livekit.SpeakerRecorder) is what the person hears."""

    def __init__(self, clip: Clip, plan: TurnPlan, speaker: Any, log: TurnLog) -> None:
        super().__init__(label="bench-microphone")
        self._clip, self._speaker, self._log = clip, speaker, log
        self._per = int(clip.rate * FRAME)
        self._silence = np.zeros(self._per, dtype=np.int16)
        self._pending: list[np.ndarray] = []
        log.first_audio = speaker.first_audio_at  # the same list: filled as the agent speaks
        self._clock: float | None = None
        self._last_playing = time.monotonic()
        self._script = asyncio.create_task(
            take_turns(plan, log, self._say, lambda: bool(self._pending), self._agent_quiet_for)
        )

    def _say(self) -> None:
        self._pending = self._clip.frames(self._per)

    def _agent_quiet_for(self) -> float:
        if self._speaker._segment_seconds:  # noqa: SLF001 - playing right now
            return 0.0
        if not self._speaker.first_audio_at:
            return float("inf")
        return time.monotonic() - self._last_playing

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
                # The clip's last voiced sample is inside this frame: a real mic hands a frame
                # over when its 20 ms are captured, so that sample was spoken a little before.
                self._log.speech_ends.append(time.monotonic() - self._clip.last_frame_lead(self._per))
        else:
            chunk = self._silence
        return rtc.AudioFrame(chunk.tobytes(), self._clip.rate, 1, self._per)

    async def aclose(self) -> None:
        self._script.cancel()
