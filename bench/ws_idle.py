"""Idle transcript sockets: `python -m bench ws-idle BACKEND_URL [-n 2000] [--pid PID]`.

Opens N transcript sockets that then send nothing, on live sessions of one visitor (the
cookie GET /healthz gives), VOICE_WS_MAX_SOCKETS_PER_SESSION to a session, and reports the
backend's RSS before, with them open and after they closed, and how one more socket is
answered (closed with 1013 once N has reached VOICE_WS_MAX_SOCKETS).

The sessions are rows written straight into the backend's database, kept alive by heartbeats
and ended afterwards; no agent runs. So run this with the backend's environment (the same
database and DJANGO_SECRET_KEY). The backend's pid is found by its `--port` in /proc, or given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import websockets

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.settings")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def backend_pid(port: int) -> int:
    """The uvicorn process started with `--port PORT`."""
    wanted = f"--port\0{port}\0".encode()
    found = [
        int(proc.name)
        for proc in Path("/proc").iterdir()
        if proc.name.isdigit() and b"uvicorn" in (cmd := _cmdline(proc)) and wanted in cmd
    ]
    if len(found) != 1:
        raise SystemExit(f"{len(found)} uvicorn processes with --port {port}: give --pid")
    return found[0]


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


async def outcome(socket: Any) -> str:
    """ "open" if the socket answers a ping, else the code the server closed it with."""
    try:
        await socket.send(json.dumps({"type": "ping"}))
        async with asyncio.timeout(10):
            return "open" if json.loads(await socket.recv()) == {"type": "pong"} else "no pong"
    except websockets.ConnectionClosed:
        return str(socket.close_code)


async def run(base: str, count: int, pid: int | None) -> dict[str, Any]:
    import django

    django.setup()
    from asgiref.sync import sync_to_async
    from django.conf import settings
    from django.contrib.sessions.backends.signed_cookies import SessionStore
    from django.utils import timezone

    from app.voice.models import EndReason, SessionStatus, VoiceSession
    from app.voice.sessions import store
    from app.voice.sessions.visitors import SESSION_KEY

    pid = pid or backend_pid(urlsplit(base).port or 80)
    async with httpx.AsyncClient(base_url=base) as http:
        (await http.get("/healthz")).raise_for_status()
        cookie = http.cookies[settings.SESSION_COOKIE_NAME]
    visitor = SessionStore(session_key=cookie).get(SESSION_KEY)
    if not visitor:
        raise SystemExit("the backend's cookie does not read here: run with its DJANGO_SECRET_KEY")

    per_session, bound = settings.VOICE_WS_MAX_SOCKETS_PER_SESSION, settings.VOICE_WS_MAX_SOCKETS
    run_id = uuid.uuid4().hex[:8]
    ids = []
    for i in range(-(-count // per_session) + 1):  # and one with free slots, for socket N+1
        name = f"ws-idle-{run_id}-{i}"
        session = await store.create_session(name, name, visitor=visitor)
        await store.mark_running(session.id)
        ids.append(session.id)
    live = VoiceSession.objects.filter(pk__in=ids).exclude(status=SessionStatus.ENDED)

    async def heartbeats() -> None:  # else the backend's sweeper ends the sessions
        while True:
            await sync_to_async(live.update)(heartbeat_at=timezone.now())
            await asyncio.sleep(settings.VOICE_HEARTBEAT_INTERVAL)

    ws_base = "ws" + base.removeprefix("http")
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"}
    gate = asyncio.Semaphore(50)

    async def connect(session_id: uuid.UUID) -> Any:
        async with gate:  # the client sends no pings of its own: idle, but answers the server's
            return await websockets.connect(
                f"{ws_base}/ws/transcript/{session_id}", origin=base, additional_headers=headers, ping_interval=None
            )

    result: dict[str, Any] = {"backend_pid": pid, "sockets": count, "sessions": len(ids) - 1}
    beating = asyncio.create_task(heartbeats())
    try:
        result["rss_before_mb"] = round(rss_mb(pid), 1)
        started = time.monotonic()
        sockets = await asyncio.gather(*(connect(ids[i // per_session]) for i in range(count)))
        result["open_seconds"] = round(time.monotonic() - started, 2)
        result["outcomes"] = dict(Counter(await asyncio.gather(*map(outcome, sockets))))
        result["rss_open_mb"] = round(rss_mb(pid), 1)
        result["kb_per_socket"] = round((result["rss_open_mb"] - result["rss_before_mb"]) * 1024 / count, 1)
        extra = await connect(ids[-1])
        result[f"socket_{count + 1}"] = await outcome(extra)
        result[f"socket_{count + 1}_expected"] = "1013" if count >= bound else "open"
        await asyncio.gather(extra.close(), *(socket.close() for socket in sockets))
        result["rss_closed_mb"] = round(rss_mb(pid), 1)
    finally:
        beating.cancel()
        ended = {"status": SessionStatus.ENDED, "end_reason": EndReason.DELETED, "ended_at": timezone.now()}
        await sync_to_async(live.update)(**ended)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench ws-idle", description=__doc__.splitlines()[0])
    parser.add_argument("backend", help="e.g. http://127.0.0.1:8000")
    parser.add_argument("-n", "--sockets", type=int, default=2000)
    parser.add_argument("--pid", type=int, default=None, help="the backend's pid (default: found by its port)")
    args = parser.parse_args(argv)
    # One file descriptor a socket.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.sockets + 256)), hard))
    print(json.dumps(asyncio.run(run(args.backend.rstrip("/"), args.sockets, args.pid)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
