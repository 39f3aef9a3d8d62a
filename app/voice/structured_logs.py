"""Structured JSON logs, with secrets redacted before any handler sees them."""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import UTC, datetime

REDACTED = "[redacted]"
SECRET_ENV_VARS = ("LIVEKIT_API_SECRET", "OPENAI_API_KEY", "DJANGO_SECRET_KEY", "LIVEKIT_API_KEY")
_SECRET_PATTERNS = (
    re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+"),  # JWTs (LiveKit access tokens)
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI keys
    re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"),
)
# Attributes every LogRecord has; anything else was passed with `extra=` and is ours to emit.
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


def redact(text: str) -> str:
    for value in _secret_values():
        text = text.replace(value, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


def _secret_values() -> list[str]:
    # Read at call time so a secret set after start-up is still covered. Short values
    # (like the dev key "devkey") are left alone: replacing them would mangle words.
    values = (os.environ.get(name, "") for name in SECRET_ENV_VARS)
    return [v for v in values if len(v) >= 8]


class RedactSecretsFilter(logging.Filter):
    """Rewrite the message, its arguments and extras with secrets replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_text:
            entry["exc"] = record.exc_text
        elif record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
