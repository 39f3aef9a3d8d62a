"""Offline streaming speech recognition with PocketSphinx (its PyPI wheel ships an English
acoustic model, language model and dictionary: no download, no key).

How a turn is recognised:
- audio arrives at 16 kHz; a WebRTC-style endpointer (pocketsphinx.Endpointer, cheap)
  lets only speech, plus a short pre-roll before its onset (soft first sounds like the
  "wh" of "what" fall below it), reach the decoder, so silence costs nothing;
- while the person speaks, partial hypotheses become interim transcripts;
- the session flushes the stream when its own VAD says the speech ended (manual_flush):
  the utterance is closed and its text becomes the final transcript, unless nothing
  credible was heard (no words, only fillers like "ah", or words whose mean posterior is
  low: noise, mumbling),
  in which case nothing is sent: never an empty final line.

Measured here (flite voices through Opus): 0.92-0.98 word accuracy; ~0.3 s of CPU per
second of speech with ``maxhmmpf=3000`` (the default 30000 costs 0.43 for the same
accuracy); ~140 ms from the flush to the final. A decoder holds ~90 MB of models and
takes ~0.5 s to build, so decoders are pooled per process and held only while someone
speaks, not for a whole session.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from livekit import rtc
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr, stt, utils
from livekit.agents.language import LanguageCode
from pocketsphinx import Config, Decoder, Endpointer, Vad

log = logging.getLogger("app.voice.local_stt")
T = TypeVar("T")

SAMPLE_RATE = 16000
LANGUAGE = LanguageCode("en")
# Fewer active HMMs per frame: a third less CPU at the same accuracy. Dither: digital
# silence (a muted track) otherwise decodes as a word. cmninit: the cepstral mean of speech
# that came through a browser's WebRTC processing and Opus (pocketsphinx's own start value
# misheard a fresh decoder's first sentence, "what is what alike" for "what is the weather
# like"); the live mean adapts to each voice from there.
CMN_INIT = "44.1,4.6,-1.0,14.5,0.7,-0.3,1.9,-6.3,-3.4,-3.5,3.7,0.2,0.05"
DECODER_OPTIONS: tuple[tuple[str, object], ...] = (("maxhmmpf", 3000), ("dither", True), ("cmninit", CMN_INIT))
NON_WORDS = ("<s>", "</s>", "<sil>")
# What noise tends to decode as: a line of only these is not words.
FILLERS = frozenset({"ah", "oh", "uh", "um", "hm", "hmm", "mm", "huh", "eh", "er"})


@dataclass(frozen=True)
class RecognizerSettings:
    """Decoder and endpointer settings; the defaults were measured on synthetic and real speech."""

    interim_interval: float = 0.25  # seconds of speech between interim transcripts
    # The endpointer: webrtc VAD aggressiveness (0-3), and its decision window.
    vad_mode: int = Vad.LOOSE
    vad_window: float = 0.3
    preroll: float = 0.3  # seconds of audio before the endpointer's onset that are decoded too
    # The session flushes ~0.55 s after speech ends (its Silero VAD). Audio the endpointer
    # took for speech but that no flush followed within this time was not speech to the
    # session (a cough, a noise burst): it is dropped, so it cannot prefix the next line.
    unconfirmed_after: float = 1.5
    # The mean word posterior of a line: real speech scored 0.38-0.98 here, garbled speech
    # (reversed) 0.1-0.6; the threshold drops only the clearly garbled, it cannot do more.
    min_word_posterior: float = 0.3
    decoder_options: tuple[tuple[str, object], ...] = DECODER_OPTIONS


class DecoderPool:
    """Idle decoders of one configuration, shared by the streams of this process."""

    def __init__(self, options: tuple[tuple[str, object], ...] = ()) -> None:
        self._options = options
        self._idle: list[Decoder] = []
        self._lock = threading.Lock()

    def _new(self) -> Decoder:
        config = Config(loglevel="FATAL", **dict(self._options))
        return Decoder(config)

    def take(self) -> Decoder:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._new()

    def give_back(self, decoder: Decoder) -> None:
        with self._lock:
            self._idle.append(decoder)

    def prewarm(self, count: int = 1) -> None:
        for _ in range(count - len(self._idle)):
            self.give_back(self._new())

    @contextmanager
    def borrowed(self) -> Iterator[Decoder]:
        decoder = self.take()
        try:
            yield decoder
        finally:
            self.give_back(decoder)


_pools: dict[tuple[tuple[str, object], ...], DecoderPool] = {}


def decoder_pool(options: tuple[tuple[str, object], ...] = ()) -> DecoderPool:
    return _pools.setdefault(options, DecoderPool(options))


class PocketSphinxSTT(stt.STT):
    def __init__(self, settings: RecognizerSettings | None = None) -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(streaming=True, interim_results=True, manual_flush=True)
        )
        self.settings = settings or RecognizerSettings()
        self.pool = decoder_pool(self.settings.decoder_options)

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
        text = await asyncio.to_thread(self._decode_whole, pcm)
        return final_event(text or "")

    def _decode_whole(self, pcm: bytes) -> str:
        with self.pool.borrowed() as decoder:
            decoder.start_utt()
            decoder.process_raw(pcm, False, True)
            decoder.end_utt()
            return credible_text(decoder, self.settings)

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


def credible_text(decoder: Decoder, settings: RecognizerSettings) -> str:
    """The utterance's text, or "" when nothing credible was heard (silence, noise)."""
    hyp = decoder.hyp()
    if hyp is None or not hyp.hypstr.strip() or set(hyp.hypstr.split()) <= FILLERS:
        return ""
    posteriors = [
        segment.prob for segment in decoder.seg()
        if segment.word not in NON_WORDS and not segment.word.startswith(("[", "++"))
    ]
    confidence = sum(posteriors) / len(posteriors) if posteriors else 0.0
    if confidence < settings.min_word_posterior:
        log.info("local_stt.rejected", extra={"words": len(posteriors), "confidence": round(confidence, 2)})
        return ""
    text: str = hyp.hypstr.strip()
    return text


class PocketSphinxStream(stt.RecognizeStream):
    def __init__(self, *, stt: PocketSphinxSTT, conn_options: APIConnectOptions) -> None:
        super().__init__(stt=stt, conn_options=conn_options, sample_rate=SAMPLE_RATE)
        self._owner = stt
        self._settings = stt.settings
        self._endpointer = Endpointer(
            window=self._settings.vad_window, vad_mode=self._settings.vad_mode, sample_rate=SAMPLE_RATE
        )
        self._pending = b""  # audio not yet a whole endpointer frame
        self._recent = bytearray()  # the last second of audio, for the pre-roll
        self._recent_end = 0  # stream offset (bytes) just after self._recent
        self._decoder: Decoder | None = None  # held from the first speech until the flush
        self._decoded_seconds = 0.0
        self._last_interim = ""
        self._interim_at = 0.0
        self._speech_ended_at: float | None = None
        self._quiet_bytes = 0  # audio since the endpointer's speech ended, while an utterance is open
        self._working: asyncio.Future[Any] | None = None  # the decoder call running in a thread

    async def _in_thread(self, call: Callable[..., T], *args: Any) -> T:
        """Run a decoder call in a worker thread. A cancelled caller does not stop the thread,
        so the call is remembered: the decoder is only reused once it has returned."""
        working = asyncio.get_running_loop().run_in_executor(None, call, *args)
        self._working = working
        return await working

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

    async def _push(self, pcm: bytes) -> None:
        """Endpoint the audio; decode the speech in a worker thread (CPU-bound C code)."""
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
        if speech:
            await self._decode_more(bytes(speech))
        elif self._decoder is not None and self._quiet_bytes > self._settings.unconfirmed_after * SAMPLE_RATE * 2:
            await self._drop_utterance()

    async def _decode_more(self, speech: bytes) -> None:
        if self._decoder is None:
            self._decoder = await self._in_thread(self._start)
        text = await self._in_thread(self._decode, self._decoder, speech)
        self._decoded_seconds += len(speech) / 2 / SAMPLE_RATE
        if text and text != self._last_interim and self._decoded_seconds - self._interim_at >= self._interval:
            self._last_interim, self._interim_at = text, self._decoded_seconds
            self._event_ch.send_nowait(
                stt.SpeechEvent(
                    type=stt.SpeechEventType.INTERIM_TRANSCRIPT,
                    alternatives=[stt.SpeechData(language=LANGUAGE, text=text)],
                )
            )

    async def _drop_utterance(self) -> None:
        """No flush confirmed the endpointer's speech: forget it (and its interims)."""
        decoder = self._take_utterance()
        if decoder is not None:
            await self._in_thread(self._release, decoder)

    def _take_utterance(self) -> Decoder | None:
        decoder, self._decoder = self._decoder, None
        self._decoded_seconds = self._interim_at = 0.0
        self._last_interim = ""
        self._quiet_bytes = 0
        return decoder

    @property
    def _interval(self) -> float:
        return self._settings.interim_interval

    def _remember(self, frame: bytes) -> None:
        self._recent += frame
        self._recent_end += len(frame)
        del self._recent[: max(0, len(self._recent) - 2 * SAMPLE_RATE)]

    def _preroll(self) -> bytes:
        """The audio just before the onset the endpointer reports (in seconds of stream)."""
        onset = int(self._endpointer.speech_start * SAMPLE_RATE) * 2
        start = max(onset - int(self._settings.preroll * SAMPLE_RATE) * 2, self._recent_end - len(self._recent))
        begin = start - (self._recent_end - len(self._recent))
        end = onset - (self._recent_end - len(self._recent))
        return bytes(self._recent[max(0, begin) : max(0, end)])

    def _start(self) -> Decoder:
        decoder = self._owner.pool.take()
        decoder.start_utt()
        return decoder

    @staticmethod
    def _decode(decoder: Decoder, pcm: bytes) -> str:
        decoder.process_raw(pcm, False, False)
        hyp = decoder.hyp()
        text: str = hyp.hypstr.strip() if hyp is not None else ""
        return text

    def _end(self, decoder: Decoder) -> str:
        decoder.end_utt()
        text = credible_text(decoder, self._settings)
        self._owner.pool.give_back(decoder)
        return text

    def _release(self, decoder: Decoder) -> None:
        decoder.end_utt()
        self._owner.pool.give_back(decoder)

    async def _finish_utterance(self) -> None:
        """The session's VAD says the person stopped: close the utterance, send its final."""
        decoder = self._take_utterance()
        if decoder is None:
            return  # nothing was said: no final at all (never an empty line)
        text = await self._in_thread(self._end, decoder)
        if text:
            self._event_ch.send_nowait(final_event(text, self._speech_ended_at))
