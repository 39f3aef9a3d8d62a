"""The backend's ASGI app with timing probes, for benchmarks only.

`uvicorn bench.asgi:application` serves exactly app.asgi's application; the probe only
records, as JSON lines in $BENCH_PROBE_FILE, when each WS message was handed to the
event bridge (monotonic clock, shared by every process on the machine) and the
per-turn metrics the AgentSession attaches to its chat messages. Nothing is changed.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from app.asgi import application  # noqa: F401 - re-exported for uvicorn
from app.voice.agent import event_bridge

_out = open(os.environ["BENCH_PROBE_FILE"], "a", buffering=1)  # noqa: SIM115 - process lifetime


def _write(record: dict[str, Any]) -> None:
    _out.write(json.dumps(record, default=str) + "\n")


_publish = event_bridge.TranscriptPublisher.publish


def _stamped_publish(self: Any, message: dict) -> None:
    _write({"kind": "publish", "t": time.monotonic(), "session_id": self.session_id, "message": message})
    _publish(self, message)


_attach = event_bridge.SessionBridge.attach


def _attach_with_metrics(self: Any, session: Any) -> None:
    """The bridge's own subscription, plus one that records each message's metrics (the
    runner builds a SessionBridge and attaches it to its session)."""
    _attach(self, session)
    session_id = getattr(getattr(self._publish, "__self__", None), "session_id", "")

    def on_item(ev: Any) -> None:
        item = ev.item
        if getattr(item, "type", None) == "message" and item.role in ("user", "assistant"):
            _write(
                {
                    "kind": "metrics",
                    "session_id": session_id,
                    "role": item.role,
                    "metrics": dict(getattr(item, "metrics", None) or {}),
                }
            )

    session.on("conversation_item_added", on_item)


event_bridge.TranscriptPublisher.publish = _stamped_publish  # type: ignore[method-assign]
event_bridge.SessionBridge.attach = _attach_with_metrics  # type: ignore[method-assign]
