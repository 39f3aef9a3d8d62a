"""One visitor of the fault soak, as a process of its own (so that the soak can freeze it with
SIGSTOP, as a network cut would): `python -m bench.soak_client ROOM IDENTITY OUT ORIGIN BACKEND...`.

It is started ahead of its turn (imports loaded, clip made) and waits for `go` on stdin.
Then it takes a token, joins the LiveKit room with a microphone (silence until told to
talk), starts a session and follows its WebSocket, switching to another web process when
one goes away. Every final transcript line it receives is appended to OUT as one JSON line,
flushed at once, so that what it received survives its being killed; the seqs of a
`transcript_lines_lost` error frame (lines declared lost) go to OUT with the suffix
`.declared`. It prints `session <id>` once the session runs. Commands on stdin: `talk`
(say the clip once), `stop` (DELETE the session, then leave), `close` (leave without a
word, as a closed tab does). It also leaves, by itself, once the session has ended (whoever
ended it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import websockets
from livekit import rtc

from bench.common import Clip, speech_clip

FRAME_SECONDS = 0.02
POLL_SECONDS = 1.0
# The error frame that declares final lines the database never got (their seqs).
LINES_LOST = "transcript_lines_lost"


class Visitor:
    def __init__(self, room: str, identity: str, out: Path, origin: str, backends: list[str]) -> None:
        self.room_name, self.identity, self.out, self.backends = room, identity, out, backends
        self.origin = origin  # the page's origin, which the socket checks
        self.http = httpx.AsyncClient(timeout=10)  # one cookie jar, whatever the web process
        self.session_id = ""
        self.ended = asyncio.Event()
        self.speech: list[np.ndarray] = []

    async def call(self, method: str, path: str, **kw: object) -> httpx.Response:
        """The request on the first web process that answers (one may be restarting)."""
        last: Exception | None = None
        for attempt in range(20):
            backend = self.backends[attempt % len(self.backends)]
            try:
                response = await self.http.request(method, backend + path, **kw)  # type: ignore[arg-type]
                if response.status_code < 500:
                    return response
                last = RuntimeError(f"{method} {path}: {response.status_code}")
            except httpx.HTTPError as exc:
                last = exc
            await asyncio.sleep(0.25)
        raise RuntimeError(f"{method} {path}: no web process answered ({last})")

    # -- microphone -------------------------------------------------------------------
    async def pump(self, source: rtc.AudioSource, rate: int) -> None:
        per = int(rate * FRAME_SECONDS)
        silence = np.zeros(per, dtype=np.int16)
        clock = time.monotonic()
        while True:
            clock += FRAME_SECONDS
            await asyncio.sleep(max(0.0, clock - time.monotonic()))
            chunk = self.speech.pop(0) if self.speech else silence
            await source.capture_frame(rtc.AudioFrame(chunk.tobytes(), rate, 1, per))

    def talk(self, clip: Clip) -> None:
        self.speech.extend(clip.frames(int(clip.rate * FRAME_SECONDS)))

    # -- the session's WebSocket --------------------------------------------------------
    async def follow(self) -> None:
        attempt = 0
        declared_path = self.out.with_suffix(".declared")
        with self.out.open("a", encoding="utf-8") as out, declared_path.open("a", encoding="utf-8") as declared:
            while not self.ended.is_set():
                backend = self.backends[attempt % len(self.backends)]
                attempt += 1
                url = backend.replace("http://", "ws://") + f"/ws/transcript/{self.session_id}"
                cookie = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies.jar)
                headers = {"Cookie": cookie} if cookie else None
                try:
                    origin = websockets.Origin(self.origin)
                    async with websockets.connect(
                        url, origin=origin, additional_headers=headers, open_timeout=5, proxy=None
                    ) as socket:
                        async for raw in socket:
                            message = json.loads(raw)
                            if message.get("final") and "seq" in message:
                                line = {"session_id": self.session_id, **message}
                                out.write(json.dumps(line) + "\n")
                                out.flush()
                            error = message.get("error")
                            if isinstance(error, dict) and error.get("code") == LINES_LOST:
                                entry = {"session_id": self.session_id, "seqs": error.get("seqs", [])}
                                declared.write(json.dumps(entry) + "\n")
                                declared.flush()
                            if message.get("event") == "session_ended":
                                self.ended.set()
                except (TimeoutError, OSError, websockets.WebSocketException):
                    pass
                if not self.ended.is_set():
                    await asyncio.sleep(0.5)  # that web process went away: try the next

    async def watch_status(self) -> None:
        """Leave once the session has ended, even if no socket said so."""
        while not self.ended.is_set():
            await asyncio.sleep(POLL_SECONDS)
            with contextlib.suppress(Exception):
                response = await self.call("GET", f"/session/{self.session_id}")
                if response.status_code == 404 or response.json().get("status") == "ended":
                    self.ended.set()

    async def commands(self, clip: Clip) -> str:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            command = line.strip()
            if command == "talk":
                self.talk(clip)
            elif command in ("stop", "close", ""):  # "" : the soak itself went away
                return command or "close"

    async def run(self) -> int:
        clip = speech_clip(16000)
        if (await asyncio.to_thread(sys.stdin.readline)).strip() != "go":  # started ahead, warm
            return 0
        response = await self.call("GET", "/token", params={"room": self.room_name, "identity": self.identity})
        if response.status_code != 200:
            print(f"token refused {response.status_code} {response.text[:200]}", flush=True)
            return 1
        grant = response.json()
        room = rtc.Room()
        source = rtc.AudioSource(clip.rate, 1, queue_size_ms=200)
        await room.connect(grant["url"], grant["token"], rtc.RoomOptions(auto_subscribe=False))
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        await room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        tasks = [asyncio.create_task(self.pump(source, clip.rate))]
        try:
            response = await self.call("POST", "/session", json={"room": self.room_name, "identity": self.identity})
            if response.status_code != 201:
                print(f"start refused {response.status_code} {response.text[:200]}", flush=True)
                return 1
            self.session_id = response.json()["session_id"]
            print(f"session {self.session_id}", flush=True)
            tasks += [asyncio.create_task(self.follow()), asyncio.create_task(self.watch_status())]
            command = asyncio.create_task(self.commands(clip))
            ended = asyncio.create_task(self.ended.wait())
            done, _ = await asyncio.wait({command, ended}, return_when=asyncio.FIRST_COMPLETED)
            if command in done and command.result() == "stop":
                await self.call("DELETE", f"/session/{self.session_id}")
                print("stopped", flush=True)
            elif command in done:
                print("closed", flush=True)
            else:
                print("ended", flush=True)
            return 0
        finally:
            for task in tasks:
                task.cancel()
            await room.disconnect()
            await self.http.aclose()


def main() -> None:
    room, identity, out, origin, *backends = sys.argv[1:]
    code = asyncio.run(Visitor(room, identity, Path(out), origin, backends).run())
    # The command reader's thread may still wait on stdin: leave without joining it.
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
