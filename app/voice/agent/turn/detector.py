"""smart-turn as a livekit-agents streaming turn detector (`turn_handling.turn_detection`).

The session pushes every input frame; once the person has been quiet for 0.2 s it asks for
a prediction, and when its VAD calls the speech over it waits `min_delay` if the model says
the sentence is complete, `max_delay` if not. A pause inside a sentence then waits longer
while a finished sentence ends quickly, which a silence window alone cannot do.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import logging
import time

import numpy as np
from livekit import rtc
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from livekit.agents.language import LanguageCode
from livekit.agents.voice.turn import TurnDetectionEvent

from app.voice.agent.turn.features import SAMPLE_RATE, WINDOW_SAMPLES
from app.voice.agent.turn.model import SmartTurnModel

log = logging.getLogger("app.voice.agent")
# The languages of smart-turn v3's own benchmark.
LANGUAGES = frozenset(
    "ar bn da de en es fi fr hi id it ja ko mr nl no pl pt ru tr uk vi zh".split()
)
MODEL = "smart-turn-v3.2"
PROVIDER = "pipecat-ai"
# Past this a session stops waiting and ends the turn on its silence window alone.
PREDICTION_TIMEOUT = 0.5


@functools.cache
def _executor() -> concurrent.futures.ThreadPoolExecutor:
    # One inference thread per process: the model is single-threaded, and the event loops
    # of the sessions must never wait for it.
    return concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="smart-turn")


class SmartTurnDetector:
    def __init__(self, model: SmartTurnModel, *, threshold: float = 0.5) -> None:
        self._model = model
        self.threshold = threshold

    model = MODEL
    provider = PROVIDER

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> SmartTurnStream:
        return SmartTurnStream(self._model, self.threshold)


class SmartTurnStream:
    """The last 8 s of one person's audio, and the prediction in flight."""

    def __init__(self, model: SmartTurnModel, threshold: float) -> None:
        self._model = model
        self._threshold = threshold
        self._frames: collections.deque[np.ndarray] = collections.deque()
        self._samples = 0
        self._last_audio_at = 0.0
        self._resampler: rtc.AudioResampler | None = None
        self._resampled_from: tuple[int, int] | None = None  # (rate, channels) it was made for
        self._pending: asyncio.Future[TurnDetectionEvent] | None = None
        self._closed = False

    model = MODEL
    provider = PROVIDER

    @property
    def is_fallback(self) -> bool:
        return False

    @property
    def prediction_timeout(self) -> float:
        return PREDICTION_TIMEOUT

    async def unlikely_threshold(self, language: LanguageCode | None) -> float | None:
        return self._threshold

    async def backchannel_threshold(self, language: LanguageCode | None) -> float | None:
        return None  # the model does not judge backchannels

    async def supports_language(self, language: LanguageCode | None) -> bool:
        return language is None or str(language).lower().split("-")[0] in LANGUAGES

    def push_audio(self, frame: rtc.AudioFrame) -> None:
        if self._closed:
            return
        for f in self._at_model_rate(frame):
            samples = np.frombuffer(f.data, dtype=np.int16)
            if f.num_channels > 1:
                samples = samples.reshape(-1, f.num_channels).mean(axis=1).astype(np.int16)
            self._frames.append(samples)
            self._samples += len(samples)
        while self._frames and self._samples - len(self._frames[0]) >= WINDOW_SAMPLES:
            self._samples -= len(self._frames.popleft())
        self._last_audio_at = time.time()

    def _at_model_rate(self, frame: rtc.AudioFrame) -> list[rtc.AudioFrame]:
        if frame.sample_rate == SAMPLE_RATE:
            return [frame]
        if self._resampler is None or self._resampled_from != (frame.sample_rate, frame.num_channels):
            self._resampler = rtc.AudioResampler(frame.sample_rate, SAMPLE_RATE, num_channels=frame.num_channels)
            self._resampled_from = (frame.sample_rate, frame.num_channels)
        return self._resampler.push(frame)

    def predict(self) -> asyncio.Future[TurnDetectionEvent]:
        """Judge the audio so far, on the inference thread; the session awaits the future."""
        if self._pending is not None and not self._pending.done():
            return self._pending
        audio = np.concatenate(self._frames) if self._frames else np.zeros(0, np.int16)
        last_audio_at = self._last_audio_at
        loop = asyncio.get_running_loop()
        self._pending = loop.run_in_executor(_executor(), self._judge, audio, last_audio_at)
        return self._pending

    def _judge(self, audio: np.ndarray, last_audio_at: float) -> TurnDetectionEvent:
        started = time.time()
        try:
            probability = self._model.probability(audio)
        except Exception:
            # Without a verdict the turn ends as with the silence window alone.
            log.exception("turn_model.failed")
            probability = 1.0
        done = time.time()
        return TurnDetectionEvent(
            type="eot_prediction",
            end_of_turn_probability=probability,
            last_speaking_time=last_audio_at,
            detection_delay=done - last_audio_at if last_audio_at else None,
            inference_duration=done - started,
        )

    def cancel_inference(self, *, timed_out: bool = False) -> None:
        if self._pending is not None:
            self._pending.cancel()
        self._pending = None

    def flush(self, reason: str | None = None) -> None:
        """The turn was committed: the next one starts from a clean buffer."""
        self._frames.clear()
        self._samples = 0
        self.cancel_inference()

    def end_input(self) -> None:
        self._closed = True

    async def aclose(self) -> None:
        self.end_input()
        self.flush()
