"""The smart-turn end-of-turn detector: the real model tells a finished sentence from a
cut-off one when asked through the detector's stream, the detector is one the session
recognises as a streaming turn detector, the stream keeps the last 8 s of the turn at
16 kHz and manages its prediction as the session expects, a missing model says how to get
it, and VOICE_TURN_DETECTION chooses between the model and the VAD alone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.test import override_settings
from livekit import rtc
from livekit.agents.language import LanguageCode
from livekit.agents.voice.turn import _StreamingTurnDetector, _StreamingTurnDetectorStream

from app.voice.agent.turn import turn_detection
from app.voice.agent.turn.detector import SmartTurnDetector, SmartTurnStream
from app.voice.agent.turn.features import WINDOW_SAMPLES
from app.voice.agent.turn.model import SmartTurnModel, TurnModelMissing
from devtools.speech import synthesize

RATE = 16000
FRAME_SECONDS = 0.02
FRAME = int(RATE * FRAME_SECONDS)  # 320 samples


def _frames(samples: np.ndarray, rate: int = RATE, channels: int = 1) -> list[rtc.AudioFrame]:
    """20 ms frames of interleaved int16 samples (the last one may be shorter)."""
    step = int(rate * FRAME_SECONDS) * channels
    return [
        rtc.AudioFrame(samples[i : i + step].tobytes(), rate, channels, len(samples[i : i + step]) // channels)
        for i in range(0, len(samples), step)
    ]


def _tone(seconds: float, rate: int = RATE, channels: int = 1, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    return np.repeat(mono, channels)  # interleaved: every channel the same


def _trimmed(samples: np.ndarray, threshold_dbfs: float = -45.0) -> np.ndarray:
    """The samples from the first to the last 10 ms window louder than the threshold."""
    win = RATE // 100
    n = len(samples) // win
    windows = samples[: n * win].astype(np.float64).reshape(n, win) / 32768.0
    levels = 20 * np.log10(np.sqrt((windows**2).mean(axis=1)) + 1e-9)
    loud = np.flatnonzero(levels > threshold_dbfs)
    return samples[loud[0] * win : (loud[-1] + 1) * win]


class RecordingModel(SmartTurnModel):
    """Stands in for the onnx model: records the audio each prediction was asked about."""

    def __init__(self, probability: float = 0.7) -> None:
        self.heard: list[np.ndarray] = []
        self._probability = probability

    def probability(self, audio: np.ndarray) -> float:
        self.heard.append(audio)
        return self._probability


@pytest.fixture(scope="module")
def real_detector() -> SmartTurnDetector:
    return SmartTurnDetector(SmartTurnModel(settings.VOICE_TURN_MODEL_PATH))


@pytest.fixture
def model() -> RecordingModel:
    return RecordingModel()


@pytest.fixture
async def stream(model: RecordingModel) -> AsyncIterator[SmartTurnStream]:
    stream = SmartTurnDetector(model, threshold=0.3).stream()
    yield stream
    await stream.aclose()


async def _heard_after(stream: SmartTurnStream, model: RecordingModel) -> np.ndarray:
    """The audio the model is given when the session asks now."""
    await stream.predict()
    return model.heard[-1]


# ---- the real model, through the stream -------------------------------------------------


async def _end_of_turn_probability(detector: SmartTurnDetector, text: str) -> float:
    speech = _trimmed(synthesize(text, voice="rms", rate=RATE))
    # What the session has when it asks: the speech, then 0.2 s of silence.
    audio = np.concatenate([np.zeros(int(0.3 * RATE), np.int16), speech, np.zeros(int(0.2 * RATE), np.int16)])
    stream = detector.stream()
    try:
        for frame in _frames(audio):
            stream.push_audio(frame)
        event = await stream.predict()
    finally:
        await stream.aclose()
    assert event.type == "eot_prediction"
    assert 0.0 <= event.end_of_turn_probability <= 1.0
    assert event.inference_duration is not None and event.inference_duration > 0
    assert event.last_speaking_time > 0 and event.detection_delay is not None and event.detection_delay >= 0
    return event.end_of_turn_probability


async def test_the_model_tells_a_finished_sentence_from_a_cut_off_one(real_detector: SmartTurnDetector) -> None:
    full = await _end_of_turn_probability(real_detector, "I need to change my flight to Paris.")
    fragment = await _end_of_turn_probability(real_detector, "I need to change my")
    assert full > 0.5 > fragment, (full, fragment)


async def test_the_session_recognises_the_detector_and_its_stream_as_streaming(
    real_detector: SmartTurnDetector,
) -> None:
    # Otherwise the session silently takes another path (a text turn detector, or none).
    assert isinstance(real_detector, _StreamingTurnDetector)
    stream = real_detector.stream()
    assert isinstance(stream, _StreamingTurnDetectorStream)
    await stream.aclose()


# ---- buffering ---------------------------------------------------------------------------


async def test_the_stream_keeps_only_the_last_8_seconds(stream: SmartTurnStream, model: RecordingModel) -> None:
    # 10 s of a ramp, so which samples were kept can be told apart.
    samples = (np.arange(10 * RATE) % 30000).astype(np.int16)
    for frame in _frames(samples):
        stream.push_audio(frame)
    heard = await _heard_after(stream, model)
    assert WINDOW_SAMPLES == 8 * RATE
    assert abs(len(heard) - WINDOW_SAMPLES) < FRAME
    np.testing.assert_array_equal(heard, samples[-len(heard) :])  # the newest, in order


@pytest.mark.parametrize(("rate", "channels"), [(48000, 1), (24000, 1), (48000, 2), (16000, 2)])
async def test_the_stream_hears_other_rates_and_stereo_as_16khz_mono(
    stream: SmartTurnStream, model: RecordingModel, rate: int, channels: int
) -> None:
    for frame in _frames(_tone(1.0, rate, channels), rate, channels):
        stream.push_audio(frame)
    heard = await _heard_after(stream, model)
    # The resampler holds back a few milliseconds; it is silence at the end of a turn.
    assert abs(len(heard) - RATE) < FRAME
    spectrum = np.abs(np.fft.rfft(heard.astype(np.float64)))
    assert np.fft.rfftfreq(len(heard), 1 / RATE)[spectrum.argmax()] == pytest.approx(440, abs=2)
    assert np.abs(heard).max() == pytest.approx(0.3 * 32767, rel=0.1)  # same loudness


# ---- the prediction in flight ------------------------------------------------------------


async def test_a_prediction_asked_twice_while_in_flight_is_the_same_one(
    stream: SmartTurnStream, model: RecordingModel
) -> None:
    for frame in _frames(_tone(0.5)):
        stream.push_audio(frame)
    first = stream.predict()
    assert stream.predict() is first
    event = await first
    assert event.end_of_turn_probability == 0.7
    assert len(model.heard) == 1  # one inference for both askings
    # Once answered, asking again judges the audio anew.
    second = stream.predict()
    assert second is not first
    await second
    assert len(model.heard) == 2


async def test_flush_empties_the_buffer_and_cancels_the_pending_prediction(
    stream: SmartTurnStream, model: RecordingModel
) -> None:
    for frame in _frames(_tone(1.0)):
        stream.push_audio(frame)
    pending = stream.predict()
    stream.flush(reason="turn committed")
    assert pending.cancelled()
    # The next turn starts from nothing (the one inference thread also runs the
    # cancelled job first, if it had started, so this one being done means it is too).
    heard = await _heard_after(stream, model)
    assert len(heard) == 0
    for frame in _frames(_tone(0.2)):
        stream.push_audio(frame)
    assert len(await _heard_after(stream, model)) == int(0.2 * RATE)


async def test_cancel_inference_lets_the_next_predict_start_a_new_one(
    stream: SmartTurnStream, model: RecordingModel
) -> None:
    for frame in _frames(_tone(0.5)):
        stream.push_audio(frame)
    pending = stream.predict()
    stream.cancel_inference()
    assert pending.cancelled()
    fresh = stream.predict()
    assert fresh is not pending
    await fresh
    assert len(model.heard[-1]) == int(0.5 * RATE)  # unlike flush, cancelling keeps the audio


@pytest.mark.parametrize("close", ["end_input", "aclose"])
async def test_audio_after_the_input_ended_is_ignored(model: RecordingModel, close: str) -> None:
    stream = SmartTurnDetector(model).stream()
    for frame in _frames(_tone(0.5)):
        stream.push_audio(frame)
    if close == "end_input":
        stream.end_input()
        expected = int(0.5 * RATE)  # what came before is still judged
    else:
        await stream.aclose()
        expected = 0  # closing also flushes
    for frame in _frames(_tone(1.0)):
        stream.push_audio(frame)
    assert len(await _heard_after(stream, model)) == expected
    await stream.aclose()


# ---- what the session asks the stream ----------------------------------------------------


async def test_the_stream_supports_english_and_not_unknown_languages(stream: SmartTurnStream) -> None:
    for language in (LanguageCode("en"), LanguageCode("en-US"), None):
        assert await stream.supports_language(language), language
    assert not await stream.supports_language(LanguageCode("xx"))
    assert await stream.unlikely_threshold(LanguageCode("en")) == 0.3  # the detector's threshold
    assert await stream.backchannel_threshold(LanguageCode("en")) is None
    assert not stream.is_fallback and stream.prediction_timeout > 0


# ---- the model file and the setting ------------------------------------------------------


def test_a_missing_model_says_how_to_get_it_or_do_without(tmp_path: Path) -> None:
    missing = tmp_path / "smart-turn.onnx"
    with pytest.raises(TurnModelMissing) as raised:
        SmartTurnModel(missing)
    message = str(raised.value)
    for hint in (str(missing), "./dev.sh setup", "VOICE_TURN_MODEL_PATH", "VOICE_TURN_DETECTION=vad"):
        assert hint in message
    # The same when the sessions of the process ask for their detector.
    with (
        override_settings(VOICE_TURN_DETECTION="smart-turn", VOICE_TURN_MODEL_PATH=missing),
        pytest.raises(TurnModelMissing),
    ):
        turn_detection()


@pytest.fixture
def fresh_turn_detection() -> Iterator[None]:
    turn_detection.cache_clear()
    yield
    turn_detection.cache_clear()


@pytest.mark.usefixtures("fresh_turn_detection")
def test_the_setting_chooses_smart_turn_or_the_vad_alone_and_a_change_is_seen() -> None:
    with override_settings(VOICE_TURN_DETECTION="smart-turn"):
        detector = turn_detection()
        assert isinstance(detector, SmartTurnDetector)
        assert turn_detection() is detector  # the model is loaded once per process
        # Changing the setting resets the cached choice, both ways.
        with override_settings(VOICE_TURN_DETECTION="vad"):
            assert turn_detection() == "vad"
        assert isinstance(turn_detection(), SmartTurnDetector)
    # And back to whatever the environment chose.
    assert (turn_detection() == "vad") == (settings.VOICE_TURN_DETECTION == "vad")
