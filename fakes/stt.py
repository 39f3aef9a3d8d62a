"""Scripted streaming STT whose timing comes from real VAD on the real audio.

While the person speaks it reveals the next scripted utterance word by word as
interim transcripts; at the end of speech it sends the whole utterance as the
final transcript, ``final_delay`` seconds later (to emulate a provider).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence

from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr, stt, utils
from livekit.agents.language import LanguageCode
from livekit.agents.vad import VAD, VADEvent, VADEventType

ENGLISH = LanguageCode("en")
DEFAULT_UTTERANCES = ("Hello, can you hear me?", "What can you do for me?", "Thank you, bye.")


class ScriptedSTT(stt.STT):
    def __init__(
        self,
        *,
        vad: VAD,
        utterances: Sequence[str] = DEFAULT_UTTERANCES,
        interim_interval: float = 0.3,
        final_delay: float = 0.0,
    ) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=True))
        if not utterances:
            raise ValueError("ScriptedSTT needs at least one utterance")
        self._vad = vad
        self._utterances = itertools.cycle(utterances)
        self.interim_interval = interim_interval
        self.final_delay = final_delay

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
        return ScriptedSpeechStream(stt=self, vad=self._vad, conn_options=conn_options)


def _final(text: str, speech_end_time: float | None = None) -> stt.SpeechEvent:
    return stt.SpeechEvent(
        type=stt.SpeechEventType.FINAL_TRANSCRIPT,
        alternatives=[stt.SpeechData(language=ENGLISH, text=text, confidence=1.0)],
        speech_end_time=speech_end_time,
    )


class ScriptedSpeechStream(stt.RecognizeStream):
    def __init__(self, *, stt: ScriptedSTT, vad: VAD, conn_options: APIConnectOptions) -> None:
        super().__init__(stt=stt, conn_options=conn_options)
        self._scripted = stt
        self._vad = vad
        self._words: list[str] = []
        self._revealed = 0

    async def _run(self) -> None:
        vad_stream = self._vad.stream()

        async def forward_input() -> None:
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    vad_stream.flush()
                else:
                    vad_stream.push_frame(item)
            vad_stream.end_input()

        async def recognize() -> None:
            async for event in vad_stream:
                await self._on_vad_event(event)

        tasks = [asyncio.create_task(forward_input()), asyncio.create_task(recognize())]
        try:
            await asyncio.gather(*tasks)
        finally:
            await utils.aio.cancel_and_wait(*tasks)
            await vad_stream.aclose()

    async def _on_vad_event(self, event: VADEvent) -> None:
        send = self._event_ch.send_nowait
        if event.type == VADEventType.START_OF_SPEECH:
            self._words = self._scripted.next_utterance().split()
            self._revealed = 0
            send(stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH))
        elif event.type == VADEventType.INFERENCE_DONE and event.speaking and self._words:
            # One more word per interval of speech, never the whole line before the end.
            count = min(len(self._words) - 1, int(event.speech_duration / self._scripted.interim_interval))
            if count > self._revealed:
                self._revealed = count
                send(
                    stt.SpeechEvent(
                        type=stt.SpeechEventType.INTERIM_TRANSCRIPT,
                        alternatives=[
                            stt.SpeechData(language=ENGLISH, text=" ".join(self._words[:count]))
                        ],
                    )
                )
        elif event.type == VADEventType.END_OF_SPEECH and self._words:
            speech_end = time.time() - event.silence_duration - event.inference_duration
            send(stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH, speech_end_time=speech_end))
            if self._scripted.final_delay:
                await asyncio.sleep(self._scripted.final_delay)
            send(_final(" ".join(self._words), speech_end))
            self._words = []
