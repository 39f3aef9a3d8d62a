"""PocketSphinx decoders in child processes, pooled per agent process.

A decoder holds the GIL while it decodes, so it runs in a process of its own (``sphinx.py``)
and the agent's event loop only waits on a pipe. A stream takes a decoder when the person
starts speaking and gives it back at the end of the utterance, so a few decoders serve
many sessions. Each child costs ~100 MB and ~0.5 s to start; the pool keeps some idle.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

from app.voice.agent.providers.local.sphinx import HEADER, LENGTH

log = logging.getLogger("app.voice.local_stt")

SERVER = Path(__file__).with_name("sphinx.py")  # run as a script: it imports only pocketsphinx


class DecoderDied(RuntimeError):
    """The decoder's process is gone (killed, out of memory): the utterance is lost."""


class DecoderProcess:
    """One decoder child, driven by blocking calls (run them in a thread: they wait on a pipe)."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        if self._answer() != "ready":
            raise DecoderDied("the decoder process did not start")

    def start(self, cmn: str = "") -> None:
        self._call(b"S", cmn.encode())

    def adapt(self) -> str:
        return self._call(b"A")

    def cmn(self) -> str:
        return self._call(b"C")

    def feed(self, pcm: bytes) -> str:
        return self._call(b"F", pcm)

    def end(self, min_word_posterior: float) -> str:
        return self._call(b"E", str(min_word_posterior).encode())

    def discard(self) -> None:
        self._call(b"D")

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()  # the child sees end of input and exits
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)

    def _call(self, op: bytes, payload: bytes = b"") -> str:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(HEADER.pack(op, len(payload)) + payload)
            stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise DecoderDied(f"the decoder process is gone ({exc})") from exc
        return self._answer()

    def _answer(self) -> str:
        stdout = self._process.stdout
        assert stdout is not None
        header = stdout.read(LENGTH.size)
        if len(header) < LENGTH.size:
            raise DecoderDied(f"the decoder process is gone (exit {self._process.poll()})")
        (size,) = LENGTH.unpack(header)
        return stdout.read(size).decode()


class DecoderPool:
    """Idle decoder processes, shared by the streams of this process."""

    def __init__(self, keep_idle: int = 4) -> None:
        self.keep_idle = keep_idle
        self._idle: list[DecoderProcess] = []
        self._lock = threading.Lock()

    def take(self) -> DecoderProcess:
        with self._lock:
            while self._idle:
                decoder = self._idle.pop()
                if decoder.alive:
                    return decoder
        return DecoderProcess()

    def give_back(self, decoder: DecoderProcess) -> None:
        if not decoder.alive:
            return
        with self._lock:
            if len(self._idle) < self.keep_idle:
                self._idle.append(decoder)
                return
        decoder.close()

    def prewarm(self, count: int = 1) -> None:
        for _ in range(count - len(self._idle)):
            self.give_back(DecoderProcess())

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for decoder in idle:
            decoder.close()


pool = DecoderPool()
