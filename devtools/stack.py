"""Start and stop the whole local stack: LiveKit dev server, the offline OpenAI-compatible
server when there is no key, Django ASGI (with the in-process agent) and the Flask UI, each
on a free port, each ready before the next.

The run command and the end-to-end test fixtures share this one launcher.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
LIVEKIT_DEV_KEY, LIVEKIT_DEV_SECRET = "devkey", "secret"
# The database of the stack's Redis that LiveKit nodes share (the channel layer uses db 0).
LIVEKIT_REDIS_DB = 1
# The transcript socket's transport bounds (app.voice.ws.limits has the app's own): a frame
# over 64 KiB is refused (1009) before it is read; a peer that leaves a ping unanswered for
# 20 s, pinged every 20 s, is dropped. Production runs uvicorn with the same flags.
UVICORN_WS_FLAGS = ["--ws-max-size", "65536", "--ws-ping-interval", "20", "--ws-ping-timeout", "20"]
# The app alone decides who the client is (app.voice.http.throttling.client_ip: the TCP peer,
# or with VOICE_TRUSTED_PROXIES the entry its proxies appended to X-Forwarded-For). uvicorn
# must not decide first: by default it rewrites the client address from X-Forwarded-For on
# every request from 127.0.0.1, so anyone on the host, or any header a local proxy passes
# on, picks the address that rate limits and per-IP session bounds count. Every uvicorn we
# start or document runs with this flag.
UVICORN_PROXY_FLAGS = ["--no-proxy-headers"]
if sys.platform == "win32":
    NEW_PROCESS_GROUP = subprocess.CREATE_NEW_PROCESS_GROUP  # so CTRL_BREAK reaches the tree
else:
    NEW_PROCESS_GROUP = 0


def backend_command(port: int) -> list[str]:
    """The backend's uvicorn command line: the stack's, and that of the tests that start one."""
    return [
        PYTHON, "-m", "uvicorn", "app.asgi:application",
        "--host", "127.0.0.1", "--port", str(port),
        "--lifespan", "on", "--ws", "websockets-sansio", "--no-access-log",
        *UVICORN_PROXY_FLAGS, *UVICORN_WS_FLAGS,
    ]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PortReservations:
    """Free ports held (bound, not listening) until the server that will use them starts:
    a port chosen early (the UI's, which the backend's CORS setting names) could otherwise
    be taken meanwhile, e.g. as the source port of one of the stack's own connections."""

    def __init__(self) -> None:
        self._held: dict[int, socket.socket] = {}

    def reserve(self) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        self._held[port] = sock
        return port

    def release(self, port: int) -> None:
        """Just before the server binds it."""
        if (sock := self._held.pop(port, None)) is not None:
            sock.close()

    def release_all(self) -> None:
        for port in list(self._held):
            self.release(port)


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


def descendants(root: int) -> list[int]:
    """`root` and every process below it (Linux, from /proc): what a test freezes or a soak
    measures as one program."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


class _UserArgs(TypedDict, total=False):
    user: int
    group: int
    extra_groups: list[int]


def _as_user(run_as: tuple[int, int] | None) -> _UserArgs:
    """Popen arguments that run a child as another user (no supplementary groups)."""
    if run_as is None:
        return {}
    return {"user": run_as[0], "group": run_as[1], "extra_groups": []}


def unprivileged_user() -> tuple[int, int] | None:
    """Who runs PostgreSQL when we are root (initdb and postgres refuse root): Debian's
    package's `postgres` user, else `nobody`. None when we are not root."""
    if sys.platform == "win32" or os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root, and neither a postgres nor a nobody user exists to run PostgreSQL")


@dataclass
class ManagedProcess:
    """A child process with its own log file and process group, stopped gracefully."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    log_start: int = 0  # where this run's output begins in the (appended) log file
    run_as: tuple[int, int] | None = None  # (uid, gid) on POSIX: PostgreSQL refuses to run as root
    stop_signal: int = signal.SIGTERM  # PostgreSQL: SIGINT, its fast shutdown

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.log_start = log.tell()
        # A process group of its own (a new session on POSIX), so that stop() reaches the tree.
        self.popen = subprocess.Popen(
            self.cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=sys.platform != "win32",
            creationflags=NEW_PROCESS_GROUP,
            **_as_user(self.run_as),
        )
        log.close()
        return self

    def output(self, since: int | None = None) -> str:
        """What this run of the process has logged so far (from offset `since` of its log)."""
        with self.log_path.open("rb") as log:
            log.seek(self.log_start if since is None else since)
            return log.read().decode(errors="replace")

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
            if sys.platform == "win32":
                self.popen.send_signal(signal.CTRL_BREAK_EVENT)
            else:
                os.killpg(self.popen.pid, self.stop_signal)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                if sys.platform == "win32":
                    self.popen.kill()
                else:
                    os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


def wait_for_log(process: ManagedProcess, text: str, *, timeout: float) -> None:
    """Wait until the process has written `text` to its log (e.g. "registered worker")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {process.poll()}; see {process.log_path}")
        if text in process.output():
            return
        time.sleep(0.1)  # poll interval of the condition
    raise TimeoutError(f"{process.name} did not log {text!r} within {timeout:.0f} s")


@dataclass
class StackConfig:
    livekit_server: Path | None  # None: use the LIVEKIT_URL server already running
    log_dir: Path = ROOT / "artifacts" / "logs"
    database_url: str = ""
    backend_port: int = 0
    ui_port: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    # Production shape: a Redis channel layer, several web processes, dispatched agents.
    redis_server: Path | None = None
    backends: int = 1
    agent_workers: int = 0
    # Whether LiveKit creates a room when a token joins it (its default). Off, as in
    # production; on only for tools that join rooms with tokens of their own making.
    livekit_auto_create: bool = False
    # livekit-server nodes. More than one: they share the stack's Redis (which must then be
    # on), LiveKit's own multi-node routing; each has its own ports. The product keeps one
    # LIVEKIT_URL, the first node's: a room can be hosted on any node, and the first node
    # relays the signal of its participants to it (see Stack.start_livekit).
    livekit_nodes: int = 1
    # A PostgreSQL server of the stack's own (the folder of initdb/postgres), instead of database_url.
    postgres_bin: Path | None = None
    # The offline OpenAI-compatible server (offline_openai), which the agent's openai
    # providers are then pointed at: what runs when there is no OpenAI key.
    offline_openai: bool = False


@dataclass
class Stack:
    config: StackConfig
    livekit_url: str = ""  # the first node's: the one the product is configured with
    livekit_urls: list[str] = field(default_factory=list)  # one per node
    backend_url: str = ""  # the first backend: the one the UI talks to
    backend_urls: list[str] = field(default_factory=list)
    ui_url: str = ""
    redis_url: str = ""
    openai_url: str = ""  # the offline OpenAI-compatible server's base URL, when the stack runs one
    database_url: str = ""  # the config's, or the stack's own PostgreSQL server's
    postgres_dir: Path | None = None
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    ports: PortReservations = field(default_factory=PortReservations)

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
            self.livekit_urls = [self.livekit_url]
            return
        nodes = self.config.livekit_nodes
        if nodes > 1 and not self.redis_url:
            raise ValueError("livekit_nodes > 1 needs the stack's Redis (redis_server)")
        for index in range(nodes):
            port, tcp_port, udp_port = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
            # Loopback only: the browser, the agent and the server all live on this machine.
            # Nodes on one host need only ports of their own: node_ip is the address their
            # ICE candidates name, the same loopback one for all.
            config = (
                f"port: {port}\n"
                "bind_addresses: [127.0.0.1]\n"
                "rtc:\n"
                f"  tcp_port: {tcp_port}\n"
                f"  udp_port: {udp_port}\n"
                "  node_ip: 127.0.0.1\n"
                "  use_external_ip: false\n"
                "  enable_loopback_candidate: true\n"
                # As in production: a room exists only from the backend's create_room (a token
                # minted for it, its session starting) until its session ends and it is deleted,
                # so a token cannot bring a closed room back.
                f"room:\n  auto_create: {'true' if self.config.livekit_auto_create else 'false'}\n"
                f"keys:\n  {LIVEKIT_DEV_KEY}: {LIVEKIT_DEV_SECRET}\n"
                # --dev logs every signal message at debug level: ~200 MB and a share of a
                # core per suite run on this small machine.
                "logging:\n  level: info\n"
            )
            if nodes > 1:
                # The nodes find each other, and each room's node, in Redis (a database of
                # their own); signal and API calls for a room hosted elsewhere are relayed
                # over Redis (psrpc). A new room goes to the live node hosting the fewest
                # rooms (as each node last reported them, every 2 s), not a random one, so
                # that tests can place rooms on every node.
                config += (
                    f"redis:\n  address: {self.redis_url.split('//', 1)[1].split('/', 1)[0]}\n"
                    f"  db: {LIVEKIT_REDIS_DB}\n"
                    "node_selector:\n  kind: any\n  sort_by: rooms\n"
                )
            cmd = [str(self.config.livekit_server), "--dev", "--config-body", config]
            process = self._spawn(self.livekit_node_name(index), cmd, self._env())
            self.livekit_urls.append(f"ws://127.0.0.1:{port}")
            wait_for_http(f"http://127.0.0.1:{port}/", timeout=30, process=process)
        self.livekit_url = self.livekit_urls[0]

    @staticmethod
    def livekit_node_name(index: int) -> str:
        return "livekit" if index == 0 else f"livekit-{index + 1}"

    @property
    def livekit_redis_url(self) -> str:
        """Where LiveKit nodes keep their shared state (nodes, room → node), with several."""
        return f"{self.redis_url.rsplit('/', 1)[0]}/{LIVEKIT_REDIS_DB}"

    def kill_livekit_node(self, index: int) -> None:
        """SIGKILL one livekit-server node, as in a crash: no goodbye to its participants,
        its entries in Redis left as they were."""
        process = self.processes[self.livekit_node_name(index)]
        os.killpg(process.pid, signal.SIGKILL)
        process.popen.wait(10)  # type: ignore[union-attr]

    def restart_livekit_node(self, index: int) -> None:
        """Start a stopped node again: same command (ports, config), log and Redis."""
        process = self.processes[self.livekit_node_name(index)]
        if process.poll() is None:
            return
        process.start()
        wait_for_http(self.livekit_urls[index].replace("ws://", "http://", 1) + "/", timeout=30, process=process)

    def restart_livekit(self) -> None:
        """The (first) livekit-server killed (SIGKILL, as in a crash) and started again on the
        same ports with the same config; returns once it answers HTTP."""
        self.kill_livekit_node(0)
        self.restart_livekit_node(0)

    def restart_redis(self) -> None:
        """The stack's redis-server stopped (SIGTERM: it exits at once, its data gone, as it
        keeps none on disk) and started again on the same port; returns once it is ready."""
        process = self.processes["redis"]
        process.stop()
        process.start()
        wait_for_log(process, "Ready to accept connections", timeout=20)

    def pause_redis(self, seconds: float) -> None:
        """redis-server frozen (SIGSTOP) for `seconds`, then resumed: unreachable (connections
        and commands hang, as across a network partition) without losing its data."""
        self._pause(self.processes["redis"], seconds)

    def restart_postgres(self) -> None:
        """PostgreSQL's fast shutdown (SIGINT to the postmaster: clients disconnected, open
        transactions rolled back), then started again on the same port and data folder."""
        process = self.processes["postgres"]
        process.stop()
        process.start()
        wait_for_log(process, "ready to accept connections", timeout=30)

    def pause_postgres(self, seconds: float) -> None:
        """The postmaster and all its children frozen (SIGSTOP to the process group) for
        `seconds`, then resumed: unreachable, nothing lost."""
        self._pause(self.processes["postgres"], seconds)

    @staticmethod
    def _pause(process: ManagedProcess, seconds: float) -> None:
        os.killpg(process.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)  # the outage's length
        finally:
            os.killpg(process.pid, signal.SIGCONT)

    def start_redis(self) -> None:
        if self.config.redis_server is None:
            return
        port = free_port()
        cmd = [str(self.config.redis_server), "--port", str(port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no"]
        process = self._spawn("redis", cmd, self._env())
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        wait_for_log(process, "Ready to accept connections", timeout=20)

    def start_offline_openai(self) -> None:
        """Launch it first: it loads and checks its models (~3 s) while the other servers
        start; `wait_for_offline_openai` waits for it once they are up."""
        if not self.config.offline_openai:
            return
        port = free_port()
        cmd = [PYTHON, "-m", "offline_openai", "--host", "127.0.0.1", "--port", str(port)]
        self._spawn("offline-openai", cmd, self._env())
        self.openai_url = f"http://127.0.0.1:{port}/v1"

    def wait_for_offline_openai(self) -> None:
        if self.openai_url:
            process = self.processes["offline-openai"]
            wait_for_http(self.openai_url.removesuffix("/v1") + "/healthz", timeout=90, process=process)

    def start_postgres(self) -> None:
        """A throw-away PostgreSQL server: initdb into a temporary folder, postgres on a free
        loopback port (as an unprivileged user when we are root), one database `voice`.
        Durability is off (fsync, synchronous_commit): the data lives as long as the stack."""
        self.database_url = self.config.database_url
        if self.config.postgres_bin is None:
            return
        bin_dir, run_as = self.config.postgres_bin, unprivileged_user()
        self.postgres_dir = Path(tempfile.mkdtemp(prefix="voice-pg-"))
        data = self.postgres_dir / "data"
        if run_as is not None:
            os.chown(self.postgres_dir, *run_as)
        log = self.config.log_dir / "postgres-initdb.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            initdb = subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "voice", "--auth=trust", "-E", "UTF8",
                 "--no-locale", "--no-sync"],
                stdout=out, stderr=subprocess.STDOUT, env=self._env(), cwd=self.postgres_dir, **_as_user(run_as),
            )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed; see {log}")
        port = free_port()
        cmd = [
            str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.postgres_dir}",
            "-c", "max_connections=200", "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
        ]
        process = ManagedProcess("postgres", cmd, self._env(), self.config.log_dir / "postgres.log", run_as=run_as,
                                  stop_signal=signal.SIGINT)
        self.processes["postgres"] = process.start()
        wait_for_log(process, "ready to accept connections", timeout=30)
        createdb = subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "voice", "voice"],
            env=self._env(), cwd=self.postgres_dir, **_as_user(run_as),
        )
        if createdb.returncode != 0:
            raise RuntimeError("createdb failed")
        self.database_url = f"postgres://voice@127.0.0.1:{port}/voice"

    def backend_env(self) -> dict[str, str]:
        ui_origin = f"http://127.0.0.1:{self.config.ui_port}"
        overrides = {
            "LIVEKIT_URL": self.livekit_url,
            "CORS_ORIGINS": f"{ui_origin},http://localhost:{self.config.ui_port}",
        }
        if self.config.livekit_server is not None:
            overrides |= {"LIVEKIT_API_KEY": LIVEKIT_DEV_KEY, "LIVEKIT_API_SECRET": LIVEKIT_DEV_SECRET}
        if self.database_url:
            overrides["DATABASE_URL"] = self.database_url
        if self.redis_url:
            overrides["REDIS_URL"] = self.redis_url
        if self.openai_url:
            overrides["OPENAI_BASE_URL"] = self.openai_url
            # Speech started on the final transcript, before the turn is sure to be over: off
            # with OpenAI (a paid call thrown away whenever the person goes on), on offline,
            # where it costs a little CPU and hides the synthesis (bench/README.md).
            if "VOICE_PREEMPTIVE_TTS" not in {**os.environ, **self.config.extra_env}:
                overrides["VOICE_PREEMPTIVE_TTS"] = "1"
        if self.config.agent_workers:
            overrides["VOICE_AGENT_HOST"] = "dispatch"
        return self._env(**overrides)

    def start_backends(self) -> None:
        for ready in self._spawn_backends():
            ready()

    def _spawn_backends(self) -> list[Callable[[], None]]:
        """Migrate, then start every web process; returns a wait for each to be ready."""
        env = self.backend_env()
        migrate = subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env
        )
        if migrate.returncode != 0:
            raise RuntimeError("database migration failed")
        started: list[Callable[[], None]] = []
        for index in range(self.config.backends):
            port = self.config.backend_port if index == 0 else self.ports.reserve()
            self.ports.release(port)
            name = "backend" if index == 0 else f"backend-{index + 1}"
            url = f"http://127.0.0.1:{port}"
            process = self._spawn(name, backend_command(port), env)
            started.append(functools.partial(wait_for_http, f"{url}/healthz", timeout=60, process=process))
            self.backend_urls.append(url)
        self.backend_url = self.backend_urls[0]
        return started

    def restart_backend(self, *, kill: bool = False) -> None:
        """Stop the first web process (gracefully, or SIGKILL as in a crash) and start it
        again on the same port with the same environment."""
        old = self.processes["backend"]
        if kill and sys.platform != "win32":
            os.killpg(old.pid, signal.SIGKILL)
            old.popen.wait(10)  # type: ignore[union-attr]
        else:
            old.stop()
        process = self._spawn("backend", old.cmd, old.env)
        wait_for_http(f"{self.backend_url}/healthz", timeout=60, process=process)

    def start_agent_workers(self) -> None:
        for ready in self._spawn_agent_workers():
            ready()

    def _spawn_agent_workers(self) -> list[Callable[[], None]]:
        env = self.backend_env() | {"VOICE_WORKER_PORT": "0"}  # health port: any free one
        cmd = [PYTHON, "-m", "app.voice.agent.worker", "start"]
        return [
            functools.partial(wait_for_log, self._spawn(f"agent-worker-{n + 1}", cmd, env), "registered worker",
                              timeout=60)
            for n in range(self.config.agent_workers)
        ]

    def start_ui(self) -> None:
        self._spawn_ui()()

    def _spawn_ui(self) -> Callable[[], None]:
        env = self._env(BACKEND_URL=self.backend_url)
        cmd = [PYTHON, "-m", "ui", "--host", "127.0.0.1", "--port", str(self.config.ui_port)]
        self.ports.release(self.config.ui_port)
        self.ui_url = f"http://127.0.0.1:{self.config.ui_port}"
        process = self._spawn("ui", cmd, env)
        return functools.partial(wait_for_http, f"{self.ui_url}/healthz", timeout=30, process=process)

    def start(self) -> Stack:
        self.config.backend_port = self.config.backend_port or self.ports.reserve()
        self.config.ui_port = self.config.ui_port or self.ports.reserve()
        try:
            self.start_offline_openai()
            self.start_redis()  # first: LiveKit nodes may share it
            self.start_livekit()
            self.start_postgres()
            # The Python processes start together: their imports share the cores instead of
            # queueing behind each other's readiness.
            waits = [*self._spawn_backends(), *self._spawn_agent_workers(), self._spawn_ui()]
            for ready in waits:
                ready()
            self.wait_for_offline_openai()
        except BaseException:
            self.stop()
            raise
        finally:
            self.ports.release_all()
        return self

    def stop(self) -> None:
        # Reverse order: the backend ends its sessions while LiveKit is still up.
        for name in reversed(list(self.processes)):
            self.processes[name].stop()
        self.processes.clear()
        if self.postgres_dir is not None:
            shutil.rmtree(self.postgres_dir, ignore_errors=True)
            self.postgres_dir = None


@contextlib.contextmanager
def running_stack(config: StackConfig) -> Iterator[Stack]:
    stack = Stack(config).start()
    try:
        yield stack
    finally:
        stack.stop()
