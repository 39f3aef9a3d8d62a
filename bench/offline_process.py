"""One offline OpenAI-compatible server (`python -m offline_openai`) of the bench's own, on a
free loopback port, for the measurements that talk to it without a whole stack (WER over
HTTP and the realtime socket, cold start). Always stopped on the way out."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from bench import common
from devtools.stack import PYTHON, ManagedProcess, free_port, wait_for_http

LOG = common.CACHE / "logs" / "offline-openai.log"


@dataclass
class Served:
    process: ManagedProcess
    url: str  # http://127.0.0.1:PORT, without /v1
    ready_seconds: float  # launch -> /healthz answering

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"


@contextlib.contextmanager
def offline_server(env: dict[str, str] | None = None, timeout: float = 120) -> Iterator[Served]:
    import os

    port = free_port()
    cmd = [PYTHON, "-m", "offline_openai", "--host", "127.0.0.1", "--port", str(port)]
    process = ManagedProcess("offline-openai", cmd, {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, LOG)
    started = time.monotonic()
    process.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/healthz", timeout=timeout, process=process)
        yield Served(process, url, time.monotonic() - started)
    finally:
        process.stop()
