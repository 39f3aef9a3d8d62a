"""The one thread that runs every Whisper decode of the process, finals first.

A decode keeps a core busy for ~0.2 s (a 15 s window) and cannot be interrupted,
so the order of the queue is the latency of the product: a final transcript (someone
stopped talking and the agent waits for the words) never waits behind an interim one.
Interim decodes are only offered, and accepted only when the thread is idle with no final
waiting; otherwise they are dropped on the spot and the caller tries again later.
CTranslate2 releases the GIL while it decodes, so the event loop keeps running."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Job:
    run: Callable[[], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled by its owner while it ran
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class DecodeWorker:
    def __init__(self) -> None:
        self._finals: deque[_Job] = deque()
        self._interim: _Job | None = None
        self._busy = False
        self._closed = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._serve, name="whisper-decode", daemon=True)
        self._thread.start()

    def submit(self, run: Callable[[], Any]) -> asyncio.Future[Any]:
        """Queue a final decode; it runs before any interim one. Cancel the future to drop
        it (a decode already running finishes, and its result is discarded)."""
        job = self._job(run)
        with self._wake:
            self._ensure_open()
            self._finals.append(job)
            self._wake.notify()
        return job.future

    def offer(self, run: Callable[[], Any]) -> asyncio.Future[Any] | None:
        """Start an interim decode now if the thread is idle and no final waits, else None."""
        with self._wake:
            self._ensure_open()
            if self._busy or self._finals or self._interim is not None:
                return None
            job = self._job(run)
            self._interim = job
            self._wake.notify()
        return job.future

    async def aclose(self) -> None:
        with self._wake:
            self._closed = True
            dropped = [*self._finals, *([self._interim] if self._interim else [])]
            self._finals.clear()
            self._interim = None
            self._wake.notify()
        for job in dropped:
            job.future.cancel()
        await asyncio.to_thread(self._thread.join)

    def _job(self, run: Callable[[], Any]) -> _Job:
        return _Job(run, asyncio.get_running_loop(), asyncio.get_running_loop().create_future())

    def _ensure_open(self) -> None:
        if self._closed:
            raise RuntimeError("the speech recognition worker is closed")

    def _next(self) -> _Job | None:
        """The next job to run, finals first; None once closed."""
        with self._wake:
            while True:
                if self._closed:
                    return None
                job = self._finals.popleft() if self._finals else self._interim
                if job is self._interim:
                    self._interim = None
                if job is not None and not job.future.cancelled():
                    self._busy = True
                    return job
                if job is None:
                    self._wake.wait()

    def _serve(self) -> None:
        while (job := self._next()) is not None:
            # CTranslate2 computes on threads of its own: only the process's CPU time sees it.
            started, cpu = time.perf_counter(), time.process_time()
            result: Any = None
            error: BaseException | None = None
            try:
                result = job.run()
            except Exception as exc:  # handed to the awaiting coroutine, which reports it
                error = exc
            logger.debug(
                "decode: %.3f s wall, %.3f s process CPU", time.perf_counter() - started, time.process_time() - cpu
            )
            with self._wake:
                self._busy = False
            try:
                job.loop.call_soon_threadsafe(_settle, job.future, result, error)
            except RuntimeError:  # the loop that asked has closed: nobody is waiting
                pass
