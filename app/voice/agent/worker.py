"""The production agent host: a livekit-agents worker that LiveKit dispatches sessions to.

    python -m app.voice.agent.worker start     # as many as you like, on any machines

POST /session (with VOICE_AGENT_HOST=dispatch) creates an explicit dispatch for agent
VOICE_AGENT_NAME whose metadata carries the session id and a reply channel; the job
reads the session's row and runs the same AgentRun as the in-process host, then reports "started" (or the error)
on the channel layer. Workers need the web processes' database and Redis channel
layer (DATABASE_URL, REDIS_URL) and the LiveKit credentials. SIGTERM drains: live
sessions end (reason shutdown) before the worker exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.settings")
django.setup()

from django.conf import settings  # noqa: E402
from livekit.agents import AgentServer, AutoSubscribe, JobContext, JobExecutorType, JobProcess, cli  # noqa: E402

from app.voice.agent.providers import prewarm_providers  # noqa: E402
from app.voice.agent.runner import AgentRun  # noqa: E402
from app.voice.livekit_gateway import LiveKitRoom  # noqa: E402
from app.voice.models import EndReason  # noqa: E402
from app.voice.sessions import store  # noqa: E402
from app.voice.sessions.ending import end_session  # noqa: E402
from app.voice.sessions.groups import channel_layer, close_thread_channel_layer  # noqa: E402
from app.voice.sessions.info import SessionInfo  # noqa: E402

log = logging.getLogger("app.voice.worker")
# A worker's own lifecycle (registration, jobs, draining) is its main output.
logging.getLogger("livekit.agents").setLevel(logging.INFO)


# LiveKit stops routing jobs to a worker whose reported load reaches its target (0.7).
LIVEKIT_TARGET_LOAD = 0.7
# A job process has this long to start and run prewarm (Silero). The library's 10 s is too
# short where a worker starts its idle processes (one per core) while the machine is busy:
# the soak saw them killed at 10 s and logged as errors, and started again.
PROCESS_INIT_TIMEOUT = 30.0


JOB_EXECUTORS = {"thread": JobExecutorType.THREAD, "process": JobExecutorType.PROCESS}


def session_load(server: AgentServer) -> float:
    """Load as a share of VOICE_WORKER_MAX_SESSIONS, scaled to LiveKit's target load.

    The library's default (machine CPU use) makes dispatch depend on whatever else the
    machine runs; counting sessions makes a worker's capacity explicit and predictable.
    """
    return LIVEKIT_TARGET_LOAD * len(server.active_jobs) / settings.VOICE_WORKER_MAX_SESSIONS


def prewarm(process: JobProcess) -> None:
    prewarm_providers()  # load the models once per job process, before a session needs them


async def entrypoint(ctx: JobContext) -> None:
    request = json.loads(ctx.job.metadata or "{}")
    reply_to = request.get("reply_to")
    session_id = str(request.get("session_id", ""))
    layer = channel_layer()
    # Claim the session (created → running) so that a repeated dispatch, or one for a
    # session that already ended, starts no second agent.
    claimed = store.parse_session_id(session_id) is not None and await store.mark_running(session_id)
    session = await store.get_session(session_id) if claimed else None
    if session is None:
        log.info("worker.dispatch_ignored", extra={"session_id": session_id, "room": ctx.room.name})
        return
    info = SessionInfo.of(session)
    run = AgentRun(info)
    try:
        await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
        await run.start(room=LiveKitRoom(ctx.room))
    except Exception as exc:
        log.exception("worker.start_failed", extra={"session_id": info.session_id, "room": info.room})
        await end_session(info, EndReason.ERROR)
        if reply_to:
            await layer.send(reply_to, {"type": "session.failed", "error": type(exc).__name__})
        return
    ctx.add_shutdown_callback(lambda: run.stop(EndReason.SHUTDOWN))
    log.info("worker.session_started", extra={"session_id": info.session_id, "room": info.room})
    if reply_to:
        await layer.send(reply_to, {"type": "session.started"})
    # Return now (the library waits for the entrypoint before any shutdown); the job
    # lives until the session ends and then shuts itself down.
    watcher = asyncio.create_task(_shutdown_when_ended(ctx, run))
    _watchers.add(watcher)
    watcher.add_done_callback(_watchers.discard)


_watchers: set[asyncio.Task[None]] = set()


async def _shutdown_when_ended(ctx: JobContext, run: AgentRun) -> None:
    await run.ended.wait()
    await run.stop(EndReason.SHUTDOWN)  # the stop under way (its replies too), whatever its reason
    await close_thread_channel_layer()
    ctx.shutdown(reason="session ended")


def build_server() -> AgentServer:
    server = AgentServer(
        ws_url=settings.LIVEKIT_URL,
        api_key=settings.LIVEKIT_API_KEY,
        api_secret=settings.LIVEKIT_API_SECRET,
        port=settings.VOICE_WORKER_PORT,
        drain_timeout=settings.VOICE_WORKER_DRAIN_TIMEOUT,
        load_fnc=session_load,
        load_threshold=LIVEKIT_TARGET_LOAD,
        setup_fnc=prewarm,
        initialize_process_timeout=PROCESS_INIT_TIMEOUT,
        job_executor_type=JOB_EXECUTORS[settings.VOICE_WORKER_JOB_EXECUTOR],
    )
    server.rtc_session(entrypoint, agent_name=settings.VOICE_AGENT_NAME)
    return server


if __name__ == "__main__":
    cli.run_app(build_server())
