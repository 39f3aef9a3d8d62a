"""The engines behind the endpoints, loaded once per process and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from offline_openai.model_files import ModelFiles
from offline_openai.stt import SpeechRecognition
from offline_openai.tts import SpeechSynthesis


@dataclass
class Engines:
    stt: SpeechRecognition
    tts: SpeechSynthesis

    @classmethod
    def load(cls, files: ModelFiles) -> Engines:
        return cls(stt=SpeechRecognition.load(files.whisper_dir), tts=SpeechSynthesis.load(files.piper_model))

    async def aclose(self) -> None:
        await self.stt.aclose()
        await self.tts.aclose()
