"""Start and stop the whole local stack: LiveKit dev server, Django ASGI (with the
in-process agent) and the Flask UI, each on a free port, each ready before the next.

The run command and the end-to-end test fixtures share this one launcher.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
LIVEKIT_DEV_KEY, LIVEKIT_DEV_SECRET = "devkey", "secret"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, *, timeout: float, process: ManagedProcess | None = None) -> None:
    """Poll `url` until it answers 2xx; fail early if the process behind it died."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {process.poll()}; see {process.log_path}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if 200 <= response.status < 300:
                    return
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last_error = str(exc)
        time.sleep(0.1)  # poll interval of a readiness probe, not a wait for an event
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s ({last_error})")


@dataclass
class ManagedProcess:
    """A child process with its own log file and process group, stopped gracefully."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        kwargs: dict[str, object] = {}
        if os.name == "nt":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
        else:
            kwargs["start_new_session"] = True
        self.popen = subprocess.Popen(
            self.cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, **kwargs
        )
        log.close()
        return self

    def poll(self) -> int | None:
        return self.popen.poll() if self.popen else None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (CTRL_BREAK on Windows) so servers run their shutdown; kill if they hang."""
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if os.name == "nt":
                self.popen.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
            else:
                os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                if os.name == "nt":
                    self.popen.kill()
                else:
                    os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


@dataclass
class StackConfig:
    livekit_server: Path | None  # None: use the LIVEKIT_URL server already running
    log_dir: Path = ROOT / "artifacts" / "logs"
    database_url: str = ""
    backend_port: int = 0
    ui_port: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Stack:
    config: StackConfig
    livekit_url: str = ""
    backend_url: str = ""
    ui_url: str = ""
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    def _env(self, **overrides: str) -> dict[str, str]:
        env = {**os.environ, **self.config.extra_env, **overrides}
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> ManagedProcess:
        process = ManagedProcess(name, cmd, env, self.config.log_dir / f"{name}.log").start()
        self.processes[name] = process
        return process

    def start_livekit(self) -> None:
        if self.config.livekit_server is None:
            self.livekit_url = os.environ["LIVEKIT_URL"]
            return
        port, tcp_port, udp_port = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
        # Loopback only: the browser, the agent and the server all live on this machine.
        config = (
            f"port: {port}\n"
            "bind_addresses: [127.0.0.1]\n"
            "rtc:\n"
            f"  tcp_port: {tcp_port}\n"
            f"  udp_port: {udp_port}\n"
            "  node_ip: 127.0.0.1\n"
            "  use_external_ip: false\n"
            "  enable_loopback_candidate: true\n"
            f"keys:\n  {LIVEKIT_DEV_KEY}: {LIVEKIT_DEV_SECRET}\n"
        )
        cmd = [str(self.config.livekit_server), "--dev", "--config-body", config]
        process = self._spawn("livekit", cmd, self._env())
        self.livekit_url = f"ws://127.0.0.1:{port}"
        wait_for_http(f"http://127.0.0.1:{port}/", timeout=30, process=process)

    def backend_env(self) -> dict[str, str]:
        ui_origin = f"http://127.0.0.1:{self.config.ui_port}"
        overrides = {
            "LIVEKIT_URL": self.livekit_url,
            "CORS_ORIGINS": f"{ui_origin},http://localhost:{self.config.ui_port}",
        }
        if self.config.livekit_server is not None:
            overrides |= {"LIVEKIT_API_KEY": LIVEKIT_DEV_KEY, "LIVEKIT_API_SECRET": LIVEKIT_DEV_SECRET}
        if self.config.database_url:
            overrides["DATABASE_URL"] = self.config.database_url
        return self._env(**overrides)

    def start_backend(self) -> None:
        env = self.backend_env()
        migrate = subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env
        )
        if migrate.returncode != 0:
            raise RuntimeError("database migration failed")
        cmd = [
            PYTHON, "-m", "uvicorn", "app.asgi:application",
            "--host", "127.0.0.1", "--port", str(self.config.backend_port),
            "--lifespan", "on", "--ws", "websockets", "--no-access-log",
        ]
        process = self._spawn("backend", cmd, env)
        self.backend_url = f"http://127.0.0.1:{self.config.backend_port}"
        wait_for_http(f"{self.backend_url}/healthz", timeout=60, process=process)

    def start_ui(self) -> None:
        env = self._env(BACKEND_URL=self.backend_url)
        cmd = [PYTHON, "-m", "ui", "--host", "127.0.0.1", "--port", str(self.config.ui_port)]
        process = self._spawn("ui", cmd, env)
        self.ui_url = f"http://127.0.0.1:{self.config.ui_port}"
        wait_for_http(f"{self.ui_url}/healthz", timeout=30, process=process)

    def start(self) -> Stack:
        self.config.backend_port = self.config.backend_port or free_port()
        self.config.ui_port = self.config.ui_port or free_port()
        try:
            self.start_livekit()
            self.start_backend()
            self.start_ui()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        # Reverse order: the backend ends its sessions while LiveKit is still up.
        for name in reversed(list(self.processes)):
            self.processes[name].stop()
        self.processes.clear()


@contextlib.contextmanager
def running_stack(config: StackConfig) -> Iterator[Stack]:
    stack = Stack(config).start()
    try:
        yield stack
    finally:
        stack.stop()
