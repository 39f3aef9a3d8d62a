"""Secrets never reach a log line, whatever field carries them."""

from __future__ import annotations

import json
import logging

import pytest

from app.voice.structured_logs import JsonFormatter, RedactSecretsFilter

OPENAI_KEY = "sk-" + "fake" * 10  # shaped like an OpenAI key, not one
LIVEKIT_SECRET = "lk-secret-value-0123456789"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"


@pytest.fixture(autouse=True)
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("LIVEKIT_API_SECRET", LIVEKIT_SECRET)


def render(record: logging.LogRecord) -> str:
    assert RedactSecretsFilter().filter(record)
    return JsonFormatter().format(record)


def make_record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("test", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_each_secret_is_redacted_in_message_args_and_extras() -> None:
    record = make_record(
        "key=%s secret=%s token=%s",
        OPENAI_KEY,
        LIVEKIT_SECRET,
        JWT,
        header=f"Authorization: Bearer {OPENAI_KEY}",
        session_id="abc",
    )
    line = render(record)
    for secret in (OPENAI_KEY, LIVEKIT_SECRET, JWT):
        assert secret not in line
    entry = json.loads(line)
    assert entry["event"] == "key=[redacted] secret=[redacted] token=[redacted]"
    assert entry["header"] == "Authorization: Bearer [redacted]"
    assert entry["session_id"] == "abc"


def test_secrets_in_tracebacks_are_redacted() -> None:
    try:
        raise RuntimeError(f"upstream rejected {OPENAI_KEY}")
    except RuntimeError:
        import sys

        record = logging.LogRecord("test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = render(record)
    assert OPENAI_KEY not in line
    assert "upstream rejected [redacted]" in json.loads(line)["exc"]
