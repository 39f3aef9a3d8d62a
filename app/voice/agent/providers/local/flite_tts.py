"""Offline TTS with the ``flite`` speech synthesiser: real words, a few milliseconds of CPU per
sentence, and clear enough that the local speech recogniser hears them back.

flite runs as a short-lived process per sentence (the session's sentence splitter feeds it
one sentence at a time); its WAV comes back through stdout (a temporary file where the
system has no /dev/stdout, as on Windows).
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import tempfile
import wave
from pathlib import Path

from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions, tts, utils

SAMPLE_RATE = 16000
VOICES = ("rms", "kal16", "awb", "slt")  # flite's 16 kHz voices
FRAME_MS = 100
PIPE_OUTPUT = os.path.exists("/dev/stdout")  # else (Windows) flite writes a temporary file


class FliteMissing(RuntimeError):
    """flite is not installed: the local provider set cannot speak."""


def flite_path() -> str:
    path = shutil.which("flite")
    if path is None:
        raise FliteMissing(
            "flite is not installed: on Debian/Ubuntu `apt-get install flite` (./dev.sh setup does it), "
            "on macOS `brew install flite`; or choose another provider set with VOICE_PROVIDERS."
        )
    return path


async def synthesize(text: str, *, voice: str, duration_stretch: float = 1.0) -> tuple[bytes, int]:
    """16-bit mono PCM of `text` spoken by `voice`, and its sample rate."""
    folder = None if PIPE_OUTPUT else tempfile.TemporaryDirectory()
    target = "/dev/stdout" if folder is None else str(Path(folder.name) / "speech.wav")
    try:
        process = await asyncio.create_subprocess_exec(
            flite_path(), "-voice", voice, "--setf", f"duration_stretch={duration_stretch}",
            "-t", text, "-o", target,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"flite failed ({process.returncode}): {stderr.decode(errors='replace')[:200]}")
        data = stdout if folder is None else await asyncio.to_thread(Path(target).read_bytes)
    finally:
        if folder is not None:
            folder.cleanup()
    with wave.open(io.BytesIO(data)) as wav:
        return wav.readframes(wav.getnframes()), wav.getframerate()


class FliteTTS(tts.TTS):
    def __init__(self, *, voice: str = "rms", duration_stretch: float = 1.0) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False), sample_rate=SAMPLE_RATE, num_channels=1
        )
        if voice not in VOICES:
            raise ValueError(f"unknown flite voice {voice!r}; choose one of {', '.join(VOICES)}")
        flite_path()  # fail when the set is built, not at the first sentence
        self.voice = voice
        self.duration_stretch = duration_stretch

    @property
    def model(self) -> str:
        return f"flite-{self.voice}"

    @property
    def provider(self) -> str:
        return "local"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _FliteStream(tts=self, input_text=text, conn_options=conn_options)


class _FliteStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        owner = self._tts
        assert isinstance(owner, FliteTTS)
        pcm, rate = await synthesize(self.input_text, voice=owner.voice, duration_stretch=owner.duration_stretch)
        output_emitter.initialize(
            request_id=utils.shortuuid(), sample_rate=rate, num_channels=1, mime_type="audio/pcm",
            frame_size_ms=FRAME_MS,
        )
        output_emitter.push(pcm)
        output_emitter.flush()
