"""Offline streaming speech recognition with PocketSphinx (its PyPI wheel ships an English
acoustic model, language model and dictionary: no download, no key).

How a turn is recognised:
- audio arrives at 16 kHz; a WebRTC-style endpointer (pocketsphinx.Endpointer, cheap)
  lets only speech, plus a short pre-roll before its onset (soft first sounds like the
  "wh" of "what" fall below it), reach a decoder, so silence costs no decoding;
- each stream (one person) keeps its own cepstral mean, the decoder's estimate of the voice
  and the microphone, from one utterance to the next, whichever pooled decoder decodes it;
  the first utterance, once 1.5 s of it have set that mean, is decoded again from its start;
- while the person speaks, partial hypotheses become interim transcripts;
- the session flushes the stream when its own VAD says the speech ended (manual_flush):
  the utterance is closed and its text becomes the final transcript, unless nothing
  credible was heard (no words, only fillers like "ah", clearly garbled words), in which
  case nothing is sent: never an empty final line;
- speech the endpointer heard but the session never confirmed with a flush (a cough, a
  noise burst) is dropped, so it cannot prefix the person's next line.

Decoders run in child processes (decoder_processes), taken from a pool per utterance.
Measured here (flite voices through Opus): 0.92-0.98 word accuracy, ~0.3 s of CPU per
second of speech, ~140 ms from the flush to the final.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from livekit import rtc
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr, stt, utils
from livekit.agents.language import LanguageCode
from pocketsphinx import Endpointer, Vad

from app.voice.agent.providers.local.decoder_processes import DecoderDied, DecoderPool, DecoderProcess, pool
from app.voice.agent.providers.local.sphinx import MIN_WORD_POSTERIOR

log = logging.getLogger("app.voice.local_stt")
T = TypeVar("T")

SAMPLE_RATE = 16000
LANGUAGE = LanguageCode("en")


@dataclass(frozen=True)
class RecognizerSettings:
    """Stream settings; the defaults were measured on synthetic speech through a browser."""

    interim_interval: float = 0.25  # seconds of speech between interim transcripts
    # The endpointer: webrtc VAD aggressiveness (0-3), and its decision window.
    vad_mode: int = Vad.LOOSE
    vad_window: float = 0.3
    preroll: float = 0.3  # seconds of audio before the endpointer's onset that are decoded too
    # The session flushes ~0.55 s after speech ends (its Silero VAD). Audio the endpointer
    # took for speech but that no flush followed within this time was not speech to the
    # session: it is dropped.
    unconfirmed_after: float = 1.5
    # Seconds of a stream's first speech that set its cepstral mean (then decoded again).
    adapt_after: float = 1.5
    min_word_posterior: float = MIN_WORD_POSTERIOR


class PocketSphinxSTT(stt.STT):
    def __init__(self, settings: RecognizerSettings | None = None, decoders: DecoderPool = pool) -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(streaming=True, interim_results=True, manual_flush=True)
        )
        self.settings = settings or RecognizerSettings()
        self.decoders = decoders

    @property
    def model(self) -> str:
        return "pocketsphinx-en-us"

    @property
    def provider(self) -> str:
        return "local"

    async def _recognize_impl(
        self,
        buffer: utils.AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        frame = rtc.combine_audio_frames(buffer)
        resampler = rtc.AudioResampler(frame.sample_rate, SAMPLE_RATE, num_channels=frame.num_channels)
        pcm = b"".join(bytes(f.data) for f in [*resampler.push(frame), *resampler.flush()])
        return final_event(await asyncio.to_thread(self._decode_whole, pcm))

    def _decode_whole(self, pcm: bytes) -> str:
        decoder = self.decoders.take()
        try:
            decoder.start()
            decoder.feed(pcm)
            return decoder.end(self.settings.min_word_posterior)
        finally:
            self.decoders.give_back(decoder)

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        return PocketSphinxStream(stt=self, conn_options=conn_options)


def final_event(text: str, speech_end_time: float | None = None) -> stt.SpeechEvent:
    return stt.SpeechEvent(
        type=stt.SpeechEventType.FINAL_TRANSCRIPT,
        alternatives=[stt.SpeechData(language=LANGUAGE, text=text, confidence=1.0 if text else 0.0)],
        speech_end_time=speech_end_time,
    )


class PocketSphinxStream(stt.RecognizeStream):
    def __init__(self, *, stt: PocketSphinxSTT, conn_options: APIConnectOptions) -> None:
        super().__init__(stt=stt, conn_options=conn_options, sample_rate=SAMPLE_RATE)
        self._owner = stt
        self._settings = stt.settings
        self._endpointer = Endpointer(
            window=self._settings.vad_window, vad_mode=self._settings.vad_mode, sample_rate=SAMPLE_RATE
        )
        self._pending = b""  # audio not yet a whole endpointer frame
        self._recent = bytearray()  # the last seconds of audio, for the pre-roll
        self._recent_end = 0  # stream offset (bytes) just after self._recent
        self._decoder: DecoderProcess | None = None  # held from the first speech until the flush
        self._cmn = ""  # this person's cepstral mean ("": none yet, CMN_INIT is used)
        self._first_speech = bytearray()  # the first utterance's speech, until it sets the mean
        self._decoded_seconds = 0.0
        self._last_interim = ""
        self._interim_at = 0.0
        self._speech_ended_at: float | None = None
        self._quiet_bytes = 0  # audio since the endpointer's speech ended, while an utterance is open
        self._working: asyncio.Future[Any] | None = None  # the decoder call running in a thread

    async def _run(self) -> None:
        try:
            async for item in self._input_ch:
                if isinstance(item, self._FlushSentinel):
                    await self._finish_utterance()
                else:
                    await self._push(bytes(item.data))
        finally:
            if self._working is not None and not self._working.done():
                await asyncio.wait([self._working])
            await self._drop_utterance()

    async def _in_thread(self, call: Callable[..., T], *args: Any) -> T:
        """Run a decoder call in a worker thread (it waits on the decoder's pipe). A cancelled
        caller does not stop the thread, so the call is remembered: the decoder is only used
        again once it has answered."""
        working = asyncio.get_running_loop().run_in_executor(None, call, *args)
        self._working = working
        return await working

    async def _push(self, pcm: bytes) -> None:
        """Endpoint the audio; decode what is speech."""
        self._pending += pcm
        size = self._endpointer.frame_bytes
        speech = bytearray()
        while len(self._pending) >= size:
            frame, self._pending = self._pending[:size], self._pending[size:]
            self._remember(frame)
            was_speaking = self._endpointer.in_speech
            if (out := self._endpointer.process(frame)) is not None:
                if self._decoder is None and not speech:
                    speech += self._preroll()
                speech += out
                self._quiet_bytes = 0
            elif self._decoder is not None:
                self._quiet_bytes += size
            if was_speaking and not self._endpointer.in_speech:
                self._speech_ended_at = time.time()
        try:
            if speech:
                await self._decode_more(bytes(speech))
            elif self._decoder is not None and self._quiet_bytes > self._settings.unconfirmed_after * SAMPLE_RATE * 2:
                await self._drop_utterance()
        except DecoderDied:
            log.exception("local_stt.decoder_died")
            self._take_utterance()  # a dead decoder is not given back; the next speech gets another

    async def _decode_more(self, speech: bytes) -> None:
        if self._decoder is None:
            self._decoder = await self._in_thread(self._start)
        text = await self._in_thread(self._decoder.feed, speech)
        if not self._cmn:
            # No mean of this voice yet: once enough speech has set one, decode it all again.
            self._first_speech += speech
            if len(self._first_speech) >= self._settings.adapt_after * SAMPLE_RATE * 2:
                self._cmn = await self._in_thread(self._decoder.adapt)
                text = await self._in_thread(self._decoder.feed, bytes(self._first_speech))
                self._first_speech = bytearray()
        self._decoded_seconds += len(speech) / 2 / SAMPLE_RATE
        if text and text != self._last_interim and self._decoded_seconds - self._interim_at >= self._interval:
            self._last_interim, self._interim_at = text, self._decoded_seconds
            self._event_ch.send_nowait(
                stt.SpeechEvent(
                    type=stt.SpeechEventType.INTERIM_TRANSCRIPT,
                    alternatives=[stt.SpeechData(language=LANGUAGE, text=text)],
                )
            )

    @property
    def _interval(self) -> float:
        return self._settings.interim_interval

    def _remember(self, frame: bytes) -> None:
        self._recent += frame
        self._recent_end += len(frame)
        del self._recent[: max(0, len(self._recent) - 2 * SAMPLE_RATE)]

    def _preroll(self) -> bytes:
        """The audio just before the onset the endpointer reports (in seconds of stream)."""
        first = self._recent_end - len(self._recent)  # stream offset of self._recent[0]
        onset = int(self._endpointer.speech_start * SAMPLE_RATE) * 2
        start = max(onset - int(self._settings.preroll * SAMPLE_RATE) * 2, first)
        return bytes(self._recent[max(0, start - first) : max(0, onset - first)])

    def _start(self) -> DecoderProcess:
        decoder = self._owner.decoders.take()
        decoder.start(self._cmn)
        return decoder

    def _take_utterance(self) -> DecoderProcess | None:
        decoder, self._decoder = self._decoder, None
        self._decoded_seconds = self._interim_at = 0.0
        self._last_interim = ""
        self._quiet_bytes = 0
        self._first_speech = bytearray()
        return decoder

    async def _drop_utterance(self) -> None:
        """No flush confirmed the endpointer's speech: forget it (and its interims)."""
        if (decoder := self._take_utterance()) is not None:
            try:
                await self._in_thread(self._give_back, decoder, None)
            except DecoderDied:
                log.warning("local_stt.decoder_died")

    async def _finish_utterance(self) -> None:
        """The session's VAD says the person stopped: close the utterance, send its final."""
        decoder = self._take_utterance()
        if decoder is None:
            return  # nothing was said: no final at all (never an empty line)
        try:
            text = await self._in_thread(self._give_back, decoder, self._settings.min_word_posterior)
        except DecoderDied:
            log.exception("local_stt.decoder_died")
            return
        if text:
            self._event_ch.send_nowait(final_event(text, self._speech_ended_at))

    def _give_back(self, decoder: DecoderProcess, min_word_posterior: float | None) -> str:
        """Close the utterance (keeping its text if a threshold is given) and return the decoder."""
        try:
            if min_word_posterior is None:
                decoder.discard()
                return ""
            text = decoder.end(min_word_posterior)
            self._cmn = decoder.cmn()  # what this utterance taught it about the voice
            return text
        finally:
            self._owner.decoders.give_back(decoder)
