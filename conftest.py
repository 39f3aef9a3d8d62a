"""Test-wide rules: one marker per suite, set by folder; a developer's .env never leaks in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SUITES = {"unit": Path("tests/unit"), "e2e": Path("tests/e2e")}

# Tests run with their own configuration, never with a developer's real keys.
for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_STT_BASE_URL", "OPENAI_LLM_BASE_URL", "OPENAI_TTS_BASE_URL",
             "OPENAI_LLM_MODEL", "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "DATABASE_URL",
             "REDIS_URL", "CHANNEL_LAYERS", "VOICE_PROVIDERS", "DJANGO_ENV", "SYSTEM_PROMPT"):
    os.environ.pop(name, None)
os.environ["DJANGO_ENV"] = "test"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(config.rootpath)
    for item in items:
        path = Path(item.path).relative_to(root)
        suite = next((name for name, folder in SUITES.items() if folder in path.parents), None)
        if suite is None:
            raise pytest.UsageError(f"{path}: tests live under tests/unit or tests/e2e")
        item.add_marker(getattr(pytest.mark, suite))
