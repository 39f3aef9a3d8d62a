"""Scripted streaming STT whose timing comes from the session's VAD on the real audio.

It runs no VAD of its own: like the local provider set, it is a manual_flush STT, and the
session flushes it when its Silero VAD says the speech ended. While the person speaks (a
cheap level gate on the frames) it reveals the next scripted utterance word by word as
interim transcripts, and sends the whole utterance as the final transcript at the flush.
With ``final_delay`` set it acts as a streaming provider with its own endpointing does: the
final comes ``final_delay`` seconds after the last speech it heard, whether or not the
session has decided yet that the turn is over (and never sooner, even when flushed); speech
after that final, until the flush, is the rest of the same line. A flush with no speech
heard since the last one sends nothing.

With ``word_seconds`` set it only knows what reached it, as a real recogniser does: each
word of an utterance takes that many seconds of speech, and a final holds as many words as
the speech it heard covers, the utterance's last ones (audio the session replaced with
silence, as at the start of the agent's first speech, takes its words with it).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence

import numpy as np
from livekit import rtc
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr, stt, utils
from livekit.agents.language import LanguageCode

ENGLISH = LanguageCode("en")
DEFAULT_UTTERANCES = ("Hello, can you hear me?", "What can you do for me?", "Thank you, bye.")
# Frames louder than this (RMS, full scale 1.0; about -40 dBFS) count as speech for interims.
SPEECH_LEVEL = 0.01


class ScriptedSTT(stt.STT):
    def __init__(
        self,
        *,
        utterances: Sequence[str] = DEFAULT_UTTERANCES,
        interim_interval: float = 0.3,
        final_delay: float = 0.0,
        word_seconds: float | None = None,
    ) -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(streaming=True, interim_results=True, manual_flush=True)
        )
        if not utterances:
            raise ValueError("ScriptedSTT needs at least one utterance")
        self._utterances = itertools.cycle(utterances)
        self.interim_interval = interim_interval
        self.final_delay = final_delay
        self.word_seconds = word_seconds

    @property
    def provider(self) -> str:
        return "fake"

    def next_utterance(self) -> str:
        return next(self._utterances)

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        await asyncio.sleep(self.final_delay)
        return _final(self.next_utterance())

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        return ScriptedSpeechStream(stt=self, conn_options=conn_options)


def _final(text: str, speech_end_time: float | None = None) -> stt.SpeechEvent:
    return stt.SpeechEvent(
        type=stt.SpeechEventType.FINAL_TRANSCRIPT,
        alternatives=[stt.SpeechData(language=ENGLISH, text=text, confidence=1.0)],
        speech_end_time=speech_end_time,
    )


def frame_level(frame: rtc.AudioFrame) -> float:
    samples = np.frombuffer(frame.data, dtype=np.int16)
    if not len(samples):
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) / 32768.0


class ScriptedSpeechStream(stt.RecognizeStream):
    def __init__(self, *, stt: ScriptedSTT, conn_options: APIConnectOptions) -> None:
        super().__init__(stt=stt, conn_options=conn_options)
        self._scripted = stt
        self._words: list[str] = []
        self._revealed = 0
        self._voiced = 0.0  # seconds of speech heard in the current utterance
        self._last_voiced_at: float | None = None  # wall clock of the last loud frame
        self._said = False  # this turn's line went out before the flush (own endpointing)
        self._endpoint: asyncio.TimerHandle | None = None

    async def _run(self) -> None:
        async for item in self._input_ch:
            if isinstance(item, self._FlushSentinel):
                await self._finish_utterance()
            else:
                self._hear(item)

    def _hear(self, frame: rtc.AudioFrame) -> None:
        if frame_level(frame) < SPEECH_LEVEL or self._said:
            return
        if not self._words:
            self._words = self._scripted.next_utterance().split()
            self._revealed = 0
            self._voiced = 0.0
        self._voiced += frame.duration
        self._last_voiced_at = time.time()
        if self._scripted.final_delay:
            if self._endpoint is not None:
                self._endpoint.cancel()
            self._endpoint = asyncio.get_running_loop().call_later(self._scripted.final_delay, self._endpointed)
        # One more word per interval of speech, never the whole line before the end.
        count = min(len(self._words) - 1, int(self._voiced / self._scripted.interim_interval))
        if count > self._revealed:
            self._revealed = count
            self._event_ch.send_nowait(
                stt.SpeechEvent(
                    type=stt.SpeechEventType.INTERIM_TRANSCRIPT,
                    alternatives=[stt.SpeechData(language=ENGLISH, text=" ".join(self._words[:count]))],
                )
            )

    def _heard_words(self) -> str:
        """The utterance's words that the speech heard covers (all, unless word_seconds)."""
        words, self._words = self._words, []
        if (per_word := self._scripted.word_seconds) is not None:
            words = words[len(words) - min(len(words), round(self._voiced / per_word)) :]
        return " ".join(words)

    def _send_final(self, text: str) -> None:
        if text:
            self._event_ch.send_nowait(_final(text, self._last_voiced_at))

    def _endpointed(self) -> None:
        """final_delay of quiet since the last speech: the line is final."""
        self._endpoint = None
        if self._words:
            self._said = True
            self._send_final(self._heard_words())

    async def _finish_utterance(self) -> None:
        """The session's VAD says the person stopped: send the utterance as the final."""
        self._said = False
        if not self._words:
            return  # nothing was heard since the last flush (or it is already final)
        if self._endpoint is not None:
            self._endpoint.cancel()
            self._endpoint = None
        text = self._heard_words()
        ready_at = (self._last_voiced_at or 0.0) + self._scripted.final_delay
        if ready_at > time.time():
            await asyncio.sleep(ready_at - time.time())
        self._send_final(text)

    async def aclose(self) -> None:
        if self._endpoint is not None:
            self._endpoint.cancel()
        await super().aclose()
