"""The offline `local` provider set: PocketSphinx hears words, the rule-based reply policy
answers them, flite speaks the answer, and a whole session does all three in a row.

Speech comes from tests/data/speech (flite voices, see its README). Word-level checks use
keywords, not exact transcripts: the recogniser is good, not perfect (0.92-0.98 of words).
"""

from __future__ import annotations

import re
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import stt

from app.voice.agent.providers.local.decoder_processes import DecoderPool, DecoderProcess
from app.voice.agent.providers.local.flite_tts import FliteTTS
from app.voice.agent.providers.local.pocketsphinx_stt import PocketSphinxSTT
from app.voice.agent.providers.local.rule_based_replies import GREETING, NOTHING_HEARD, reply_to
from app.voice.models import TranscriptEntry
from fakes.livekit import FakeLiveKitGateway, PersonScript
from tests.unit.support import DATA, receive_until

SPEECH = DATA / "speech"
# (file, words that must be heard): one file per voice and speaking rate.
SENTENCES = [
    ("weather-kal16.wav", {"weather", "paris", "today"}),
    ("color-rms-fast.wav", {"favorite", "color", "green"}),
    ("dragon-awb-slow.wav", {"story", "dragon"}),
]
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (./dev.sh setup)")


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16), wav.getframerate()


def frames_48k(samples: np.ndarray, rate: int, *, lead: float = 0.5, tail: float = 0.8) -> list[rtc.AudioFrame]:
    """20 ms frames at 48 kHz (what LiveKit delivers), with silence around the audio."""
    pcm = np.concatenate([np.zeros(int(lead * rate), np.int16), samples, np.zeros(int(tail * rate), np.int16)])
    resampler = rtc.AudioResampler(rate, 48000, num_channels=1)
    out = [*resampler.push(rtc.AudioFrame(pcm.tobytes(), rate, 1, len(pcm))), *resampler.flush()]
    data = np.concatenate([np.frombuffer(frame.data, dtype=np.int16) for frame in out])
    step = 960
    return [rtc.AudioFrame(data[i : i + step].tobytes(), 48000, 1, step) for i in range(0, len(data) - step + 1, step)]


async def transcribe(frames: list[rtc.AudioFrame]) -> list[stt.SpeechEvent]:
    """Stream the frames in, flush as the session does at the end of speech, collect events."""
    stream = PocketSphinxSTT().stream()
    for frame in frames:
        stream.push_frame(frame)
    stream.flush()
    stream.end_input()
    events = [event async for event in stream]
    await stream.aclose()
    return events


def finals(events: list[stt.SpeechEvent]) -> list[str]:
    return [e.alternatives[0].text for e in events if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT]


@pytest.mark.parametrize(("name", "expected"), SENTENCES)
async def test_speech_becomes_growing_interims_then_one_final_with_its_words(name: str, expected: set[str]) -> None:
    events = await transcribe(frames_48k(*read_wav(SPEECH / name)))
    interims = [e.alternatives[0].text for e in events if e.type == stt.SpeechEventType.INTERIM_TRANSCRIPT]
    assert finals(events) and len(finals(events)) == 1, events
    final = finals(events)[0]
    print(f"\n{name}: {final!r} after {len(interims)} interims")
    assert expected <= words(final), final
    assert events[-1].type == stt.SpeechEventType.FINAL_TRANSCRIPT
    # Interims come while the person speaks, and grow towards the final.
    assert len(interims) >= 3 and all(text.strip() for text in interims)
    assert len(interims[-1].split()) > len(interims[0].split())


NOISE = {
    "digital-silence": np.zeros(3 * 16000, np.int16),
    "white-noise": np.random.default_rng(1).normal(0, 1000, 3 * 16000).astype(np.int16),
    "loud-noise": np.random.default_rng(2).normal(0, 8000, 3 * 16000).astype(np.int16),
}


@pytest.mark.parametrize("name", list(NOISE))
async def test_audio_no_flush_confirms_is_dropped_and_never_prefixes_the_next_line(name: str) -> None:
    """The session flushes only when its VAD heard speech. Noise it did not call speech must
    not leak into the person's next line."""
    speech, rate = read_wav(SPEECH / "color-rms-fast.wav")
    audio = np.concatenate([NOISE[name], np.zeros(2 * 16000, np.int16)])  # then quiet: no flush came
    stream = PocketSphinxSTT().stream()
    for frame in [*frames_48k(audio, 16000, lead=0, tail=0), *frames_48k(speech, rate)]:
        stream.push_frame(frame)
    stream.flush()
    stream.end_input()
    texts = finals([event async for event in stream])
    await stream.aclose()
    assert texts == ["my favorite color is green"]


@pytest.mark.parametrize("name", list(NOISE))
async def test_a_flush_after_silence_or_noise_never_gives_an_empty_line(name: str) -> None:
    """Where the session did flush (its VAD took noise for speech), a line has words or is not sent."""
    texts = finals(await transcribe(frames_48k(NOISE[name], 16000)))
    assert all(text.strip() for text in texts), texts
    assert len(texts) <= 1
    if name == "digital-silence":
        assert texts == []


async def test_two_turns_on_one_stream_give_two_finals() -> None:
    first, rate = read_wav(SPEECH / "color-rms-fast.wav")
    second, _ = read_wav(SPEECH / "dragon-awb-slow.wav")
    stream = PocketSphinxSTT().stream()
    for samples in (first, second):
        for frame in frames_48k(samples, rate):
            stream.push_frame(frame)
        stream.flush()
    stream.end_input()
    texts = finals([event async for event in stream])
    await stream.aclose()
    assert len(texts) == 2, texts
    assert {"color", "green"} <= words(texts[0]) and "dragon" not in words(texts[0])
    assert {"story", "dragon"} <= words(texts[1]) and "green" not in words(texts[1])


class RecordingDecoder:
    """A real decoder process that records the calls that set its cepstral mean."""

    def __init__(self, calls: list[tuple[str, str]]) -> None:
        self.real = DecoderProcess()
        self.calls = calls

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)

    def start(self, cmn: str = "") -> None:
        self.calls.append(("start", cmn))
        self.real.start(cmn)

    def adapt(self) -> str:
        cmn = self.real.adapt()
        self.calls.append(("adapt", cmn))
        return cmn

    def cmn(self) -> str:
        cmn = self.real.cmn()
        self.calls.append(("cmn", cmn))
        return cmn


class RecordingPool(DecoderPool):
    """A fresh decoder for every utterance, so nothing carries over inside a decoder."""

    def __init__(self) -> None:
        super().__init__(keep_idle=0)
        self.calls: list[tuple[str, str]] = []

    def take(self) -> DecoderProcess:
        return RecordingDecoder(self.calls)  # type: ignore[return-value]

    def give_back(self, decoder: DecoderProcess) -> None:
        decoder.close()


async def test_a_stream_keeps_its_voice_mean_from_one_utterance_to_the_next_whatever_decoder() -> None:
    """The first utterance starts from the default mean and, 1.5 s in, sets the voice's own;
    the next utterance, on another decoder, starts from the mean the first one ended with."""
    pool = RecordingPool()
    stream = PocketSphinxSTT(decoders=pool).stream()
    for name in ("dragon-awb-slow.wav", "color-rms-fast.wav"):
        for frame in frames_48k(*read_wav(SPEECH / name)):
            stream.push_frame(frame)
        stream.flush()
    stream.end_input()
    texts = finals([event async for event in stream])
    await stream.aclose()
    assert {"story", "dragon"} <= words(texts[0]) and {"color", "green"} <= words(texts[1])
    kinds = [kind for kind, _ in pool.calls]
    assert kinds == ["start", "adapt", "cmn", "start", "cmn"], pool.calls
    (_, first_start), (_, adapted), (_, first_end), (_, second_start), _ = pool.calls
    assert first_start == ""  # nothing known of this voice: the default mean
    assert adapted and second_start == first_end  # the voice's mean, carried to the next decoder


@pytest.mark.parametrize(
    ("heard", "reply"),
    [
        ("what is the weather like in paris today",
         "You said: what is the weather like in paris today. I cannot look up the weather offline, "
         "but I hope it is nice."),
        ("my favorite color is green", "You said: my favorite color is green. Green is a lovely color."),
        ("tell me a story about a dragon",
         "You said: tell me a story about a dragon. Once upon a time a small dragon learned to fly."),
        ("thank you very much goodbye",
         "You said: thank you very much goodbye. Goodbye, and thank you for talking with me."),
        ("the train leaves at seven", "You said: the train leaves at seven."),
        ("can you recommend a good book", "You said: can you recommend a good book."),
        ("i need some help",
         "You said: i need some help. I can repeat what you say and answer a few simple questions."),
        ("", NOTHING_HEARD),
        ("  ...  ", NOTHING_HEARD),
    ],
)
def test_the_reply_policy_repeats_what_it_heard_and_answers_known_intents(heard: str, reply: str) -> None:
    assert reply_to(heard) == reply
    assert reply_to(heard) == reply_to(heard)  # deterministic


@needs_flite
@pytest.mark.parametrize("voice", ["kal16", "rms", "awb"])
async def test_flite_speaks_words_that_the_recogniser_hears(voice: str) -> None:
    line = "My favorite color is green."
    tts = FliteTTS(voice=voice)
    frames = [audio.frame async for audio in tts.synthesize(line)]
    await tts.aclose()
    speech = rtc.combine_audio_frames(frames)
    assert speech.sample_rate == 16000 and speech.duration > 1.0
    samples = np.frombuffer(speech.data, dtype=np.int16)
    assert np.sqrt(np.mean((samples / 32768.0) ** 2)) > 0.02  # audible, not silence
    heard = finals(await transcribe(frames_48k(samples, speech.sample_rate)))
    assert heard and {"favorite", "color", "green"} <= words(heard[0]), heard


@needs_flite
@pytest.mark.django_db(transaction=True)
async def test_a_local_session_hears_the_words_and_answers_in_words(
    api, open_socket, gateway: FakeLiveKitGateway, settings
) -> None:
    settings.VOICE_PROVIDERS = "local"
    samples, rate = read_wav(SPEECH / "weather-kal16.wav")
    gateway.script_room("room-1", PersonScript(speech=samples, sample_rate=rate, speak_after=7.0))

    response = await api.post("/session", json={"room": "room-1", "identity": "alice"})
    assert response.status_code == 201, response.content
    session_id = response.json()["session_id"]
    socket = await open_socket(f"/ws/transcript/{session_id}")
    received = await receive_until(
        socket, lambda m: m.get("role") == "agent" and m.get("final") and "weather" in m["text"].lower(), timeout=40
    )
    agent_lines = [m["text"] for m in received if m.get("role") == "agent" and m.get("final")]
    user_finals = [m["text"] for m in received if m.get("role") == "user" and m.get("final")]
    assert agent_lines[0] == GREETING
    assert len(user_finals) == 1 and {"weather", "paris", "today"} <= words(user_finals[0]), user_finals
    assert agent_lines[1] == reply_to(user_finals[0])

    # What the person's speaker played is those words: recognise the agent's own audio
    # (the agent's final line is sent once its audio has been played).
    room = gateway.rooms["room-1"]
    played = np.concatenate([np.frombuffer(f.data, dtype=np.int16) for f in room.speaker.frames])
    heard = " ".join(finals(await transcribe(frames_48k(played, room.speaker.frames[0].sample_rate))))
    reply_words = words(agent_lines[1]) - {"a", "i", "it", "is", "the", "but", "up", "in"}
    recognised = reply_words & words(heard)
    print(f"\nagent said {agent_lines[1]!r}; its audio was heard as {heard!r}")
    assert len(recognised) >= 0.7 * len(reply_words), (reply_words - recognised, heard)

    assert (await api.delete(f"/session/{session_id}")).status_code == 204
    stored = [e.text async for e in TranscriptEntry.objects.filter(session_id=session_id).order_by("seq")]
    assert stored[:3] == [GREETING, user_finals[0], agent_lines[1]]


@needs_flite
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "sound",
    [
        pytest.param(lambda: (np.zeros(4 * 16000, np.int16), 16000), id="silence"),
        pytest.param(lambda: (NOISE["loud-noise"], 16000), id="noise"),
        pytest.param(lambda: (read_wav(SPEECH / "weather-kal16.wav")[0][::-1].copy(), 16000), id="reversed-speech"),
    ],
)
async def test_a_microphone_of_silence_noise_or_gibberish_breaks_nothing(
    api, open_socket, gateway: FakeLiveKitGateway, settings, sound
) -> None:
    settings.VOICE_PROVIDERS = "local"
    samples, rate = sound()
    gateway.script_room("room-1", PersonScript(speech=samples, sample_rate=rate, speak_after=7.0))
    session_id = (await api.post("/session", json={"room": "room-1", "identity": "alice"})).json()["session_id"]
    try:
        socket = await open_socket(f"/ws/transcript/{session_id}")
        # Past the greeting and the sound, and any answer to it: the session carries on.
        received = await receive_until(socket, lambda m: m.get("role") == "agent" and m.get("event") == "speech_ended")
        with pytest.raises(TimeoutError):  # nothing more unless the sound was taken for words
            received += await receive_until(socket, lambda m: False, timeout=9)
    finally:
        assert (await api.delete(f"/session/{session_id}")).status_code == 204
    lines = [m for m in received if "role" in m and "text" in m]  # transcripts, not agent_partial
    final_lines = [(m["role"], m["text"]) for m in lines if m["final"]]
    print(f"\nfinal lines: {final_lines}")
    assert final_lines[0] == ("agent", GREETING)
    assert all(m["text"].strip() for m in lines), lines  # never an empty line
