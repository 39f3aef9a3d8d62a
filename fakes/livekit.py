"""A LiveKit stand-in for unit tests: real JWTs, no server, rooms with a scripted person.

Tests route the gateway to ``FakeLiveKitGateway`` with ``using_gateway``. Each room it
"joins" holds one person, scripted in time like ``FakeUserSpeech`` in livekit/agents'
tests: present or not, saying real audio (so real Silero VAD hears real speech)
after a pause, then silence; the test can make them leave or cut the connection.
The agent's audio is captured, played out in real time, and kept for assertions.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents import Agent, AgentSession
from livekit.agents.voice.io import AudioInput, AudioOutput, AudioOutputCapabilities, TextOutput
from livekit.agents.voice.room_io import TextInputEvent
from livekit.agents.voice.room_io.types import TextInputCallback
from livekit.agents.voice.transcription import TranscriptSynchronizer

from app.voice.livekit_gateway import LiveKitGateway, RpcHandler
from app.voice.sessions.media_rooms import room_of

FRAME_SECONDS = 0.02


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono 16-bit PCM samples and their rate."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise ValueError(f"{path}: expected mono 16-bit PCM")
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        return samples, wav.getframerate()


@dataclass
class PersonScript:
    """What the person in a fake room does, in time."""

    present: bool = True
    speech: np.ndarray | None = None  # int16 mono; None: the person stays silent
    sample_rate: int = 16000
    speak_after: float = 0.5  # seconds of silence before the speech starts

    @classmethod
    def saying(cls, wav: Path, *, speak_after: float = 0.5) -> PersonScript:
        samples, rate = read_wav(wav)
        return cls(speech=samples, sample_rate=rate, speak_after=speak_after)


class ScriptedMicrophone(AudioInput):
    """The person's microphone: silence, the scripted speech, then silence, in real time.

    As RoomIO's input does, it drops its frames while the session has its audio input off
    (``session.input.set_audio_enabled(False)``): the microphone goes on, nobody hears it. A
    test can also make the person say something now (``say``) and wait until it is said."""

    def __init__(self, script: PersonScript) -> None:
        super().__init__(label="fake-microphone")
        rate = script.sample_rate
        lead = np.zeros(int(script.speak_after * rate), dtype=np.int16)
        speech = script.speech if script.speech is not None else np.zeros(0, dtype=np.int16)
        self._audio = np.concatenate([lead, speech])
        self._rate = rate
        self._frame = int(rate * FRAME_SECONDS)
        self._position = 0
        self._clock: float | None = None
        self._attached = True
        self._said: asyncio.Event | None = None

    def on_attached(self) -> None:
        self._attached = True

    def on_detached(self) -> None:
        self._attached = False

    def say(self, samples: np.ndarray) -> None:
        """From the next frame on, the person says `samples` (int16 at the script's rate),
        instead of whatever the script had left; then silence."""
        played = self._audio[: self._position]
        silence = np.zeros(self._position - len(played), dtype=np.int16)  # played past the script's end
        self._audio = np.concatenate([played, silence, samples])
        self._said = asyncio.Event()

    async def said(self) -> None:
        """Return once the last `say` has been played (heard or not)."""
        if self._said is not None:
            await self._said.wait()

    async def __anext__(self) -> rtc.AudioFrame:
        while True:
            if self._clock is None:
                self._clock = time.monotonic()
            # Pace like a real microphone: frame n is available at clock + n * 20 ms.
            self._clock += FRAME_SECONDS
            await asyncio.sleep(max(0.0, self._clock - time.monotonic()))
            chunk = self._audio[self._position : self._position + self._frame]
            self._position += self._frame
            if self._said is not None and self._position >= len(self._audio):
                self._said.set()
            if len(chunk) < self._frame:
                chunk = np.concatenate([chunk, np.zeros(self._frame - len(chunk), dtype=np.int16)])
            if self._attached:
                return rtc.AudioFrame(chunk.tobytes(), self._rate, 1, self._frame)


class SpeakerRecorder(AudioOutput):
    """The person's speaker: plays the agent's audio in real time and keeps it.

    It can pause, as the room's audio output (RoomIO) does: while paused the playhead
    stands still, so a segment ends that much later (livekit-agents pauses the agent when
    the person starts speaking over it, and resumes it if no turn follows)."""

    def __init__(self) -> None:
        super().__init__(label="fake-speaker", capabilities=AudioOutputCapabilities(pause=True))
        self.frames: list[rtc.AudioFrame] = []
        self.first_audio_at: list[float] = []  # monotonic start time of each played segment
        self._segment_seconds = 0.0
        self._flushed = False
        self._played = 0.0  # seconds of the segment played before the last pause
        self._playing_since: float | None = None  # monotonic; None while paused or idle
        self._paused = False
        self._finish: asyncio.TimerHandle | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._segment_seconds:
            self.first_audio_at.append(time.monotonic())
            self._played, self._flushed = 0.0, False
            self._playing_since = None if self._paused else time.monotonic()
            self.on_playback_started(created_at=time.time())
        self._segment_seconds += frame.duration
        self.frames.append(frame)

    def _position(self) -> float:
        since = self._playing_since
        return self._played + (time.monotonic() - since if since is not None else 0.0)

    def _arm_finish(self) -> None:
        if self._finish:
            self._finish.cancel()
            self._finish = None
        if self._flushed and self._playing_since is not None:
            remaining = self._segment_seconds - self._position()
            self._finish = asyncio.get_running_loop().call_later(
                max(0.0, remaining), self._finished, self._segment_seconds, False
            )

    def flush(self) -> None:
        super().flush()
        if not self._segment_seconds:
            return
        self._flushed = True
        self._arm_finish()

    def pause(self) -> None:
        super().pause()
        self._paused = True
        if self._playing_since is not None:
            self._played = min(self._segment_seconds, self._position())
            self._playing_since = None
            self._arm_finish()

    def resume(self) -> None:
        super().resume()
        self._paused = False
        if self._segment_seconds and self._playing_since is None:
            self._playing_since = time.monotonic()
            self._arm_finish()

    def clear_buffer(self) -> None:
        if not self._segment_seconds:
            return
        if self._finish:
            self._finish.cancel()
        self._finished(min(self._segment_seconds, self._position()), True)

    def _finished(self, position: float, interrupted: bool) -> None:
        self._finish = None
        self._segment_seconds = 0.0
        self._playing_since = None
        self.on_playback_finished(playback_position=position, interrupted=interrupted)

    def rms(self) -> float:
        """Loudness of everything the agent said (0 for silence)."""
        if not self.frames:
            return 0.0
        samples = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in self.frames])
        return float(np.sqrt(np.mean((samples / 32768.0) ** 2)))


@dataclass
class FakeRoom:
    """AgentRoom with one scripted person; tests drive departures and connection loss."""

    name: str
    person_identity: str | None = None
    script: PersonScript = field(default_factory=PersonScript)
    microphone: AudioInput | None = None
    speaker: SpeakerRecorder = field(default_factory=SpeakerRecorder)
    closed: bool = False
    reconnecting: bool = False  # the agent's own link is being re-established (a node lost)
    session: AgentSession | None = None
    text_input: TextInputCallback | None = None
    synchronizer: TranscriptSynchronizer | None = None
    rpc_methods: dict[str, RpcHandler] = field(default_factory=dict)
    _joined: list[Callable[[str], None]] = field(default_factory=list)
    _left: list[Callable[[str], None]] = field(default_factory=list)
    _lost: list[Callable[[], None]] = field(default_factory=list)

    def has_participant(self, identity: str) -> bool:
        return self.script.present and identity == self.person_identity

    def on_participant_joined(self, callback: Callable[[str], None]) -> None:
        self._joined.append(callback)

    def on_participant_left(self, callback: Callable[[str], None]) -> None:
        self._left.append(callback)

    def on_connection_lost(self, callback: Callable[[], None]) -> None:
        self._lost.append(callback)

    async def start_session(
        self,
        session: AgentSession,
        agent: Agent,
        *,
        participant_identity: str,
        transcription: TextOutput | None = None,
        text_input: TextInputCallback | None = None,
    ) -> None:
        self.person_identity = participant_identity
        self.microphone = self.make_microphone()
        session.input.audio = self.microphone
        session.output.audio = self.speaker
        if transcription is not None:
            # As RoomIO does: the transcript is released in step with the speaker's playout.
            self.synchronizer = TranscriptSynchronizer(
                next_in_chain_audio=self.speaker, next_in_chain_text=transcription
            )
            session.output.audio = self.synchronizer.audio_output
            session.output.transcription = self.synchronizer.text_output
        self.session, self.text_input = session, text_input
        await session.start(agent=agent, record=False)

    def make_microphone(self) -> AudioInput:
        """The person's microphone: the room's script (benchmarks bring their own)."""
        return ScriptedMicrophone(self.script)

    def register_rpc_method(self, method: str, handler: RpcHandler) -> None:
        self.rpc_methods[method] = handler

    async def person_calls(self, method: str, payload: str = "", *, caller: str | None = None) -> str:
        """The person (or `caller`) calls the agent's RPC `method`: its answer, or the
        ``rtc.RpcError`` it raised (a method nobody registered: UNSUPPORTED_METHOD, as LiveKit says)."""
        handler = self.rpc_methods.get(method)
        if handler is None:
            raise rtc.RpcError(rtc.RpcError.ErrorCode.UNSUPPORTED_METHOD, "Method not supported at destination")
        data = rtc.RpcInvocationData(
            request_id=f"rpc-{len(payload)}-{time.monotonic_ns()}",
            caller_identity=(self.person_identity or "") if caller is None else caller,
            payload=payload,
            response_timeout=10.0,
            method=method,
        )
        return await handler(data)

    async def person_types(self, text: str) -> None:
        """The person sends a typed line (LiveKit's text input for agents)."""
        assert self.session is not None and self.text_input is not None, "no text input"
        result = self.text_input(self.session, TextInputEvent(text=text))
        if inspect.isawaitable(result):
            await result

    # What the test makes the person (or the network) do.
    def person_joins(self) -> None:
        self.script.present = True
        for callback in self._joined:
            callback(self.person_identity or "")

    def person_leaves(self) -> None:
        self.script.present = False
        for callback in self._left:
            callback(self.person_identity or "")

    def reconnected_lately(self) -> bool:
        return self.reconnecting

    def lose_node(self) -> None:
        """The LiveKit node hosting the room dies: the agent reconnects, the person is gone."""
        self.reconnecting = True
        self.person_leaves()

    def lose_connection(self) -> None:
        for callback in self._lost:
            callback()

    async def aclose(self) -> None:
        self.closed = True
        if self.synchronizer is not None:
            await self.synchronizer.aclose()


class FakeLiveKitGateway(LiveKitGateway):
    """Real token minting (inherited); rooms are FakeRooms scripted by the test.

    Room administration is recorded: ``created`` and ``deleted`` list each call's LiveKit
    room in order, ``open_rooms`` holds the rooms that exist on the "server" (as with
    ``auto_create: false``, a room exists from create_room until delete_room). Tests script
    and find rooms by the name they chose: ``scripts`` and ``rooms`` are keyed by the room
    name a LiveKit room was made for (sessions.media_rooms)."""

    def __init__(self, **kwargs: str) -> None:
        super().__init__(**kwargs)
        self.rooms: dict[str, FakeRoom] = {}
        self.scripts: dict[str, PersonScript] = {}
        self.reachable = True
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.open_rooms: set[str] = set()

    def script_room(self, room: str, script: PersonScript) -> None:
        self.scripts[room] = script

    async def join_room(self, *, room: str, identity: str) -> FakeRoom:
        if not self.reachable:
            raise ConnectionError("fake LiveKit server is unreachable")
        fake = FakeRoom(name=room, script=self.scripts.pop(room_of(room), PersonScript()))
        self.rooms[room_of(room)] = fake
        return fake

    async def create_room(self, room: str) -> None:
        if not self.reachable:
            raise ConnectionError("fake LiveKit server is unreachable")
        self.created.append(room)
        self.open_rooms.add(room)

    async def delete_room(self, room: str) -> bool:
        if not self.reachable:
            raise ConnectionError("fake LiveKit server is unreachable")
        self.deleted.append(room)
        if room not in self.open_rooms:
            return False
        self.open_rooms.discard(room)
        if (fake := self.rooms.get(room_of(room))) is not None and fake.name == room:
            fake.closed = True  # the server disconnects everyone, the agent included
        return True

    async def ping(self, timeout: float = 2.0) -> None:
        if not self.reachable:
            raise ConnectionError("fake LiveKit server is unreachable")
