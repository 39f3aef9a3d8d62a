"""A PulseAudio daemon of the tests' own, as the Firefox tests' sound card: a microphone that
says what a test plays into it, and speakers nobody hears.

Firefox takes its microphone from the system's sound server (Chromium's fake-capture file
flag has no Firefox equivalent), so the tests run one: a private PulseAudio (no system
configuration, no autospawn, its socket, cookie, state and runtime files in one temporary
folder, removed on close) with two null sinks:

- ``mic``: a test plays a WAV into it (paplay); a source remapped from its monitor is the
  default source, so the page's getUserMedia hears exactly that file;
- ``speakers``: the default sink, where Firefox plays the agent. Kept apart from ``mic``, so
  the agent never hears itself.

A null sink that nothing asks for low latency renders in blocks of up to ~1 s: a sentence
played into it then reaches the microphone ~0.9 s late, or 0.02 s late, by chance. So a
silent stream plays into ``mic`` at 10 ms latency for the daemon's whole life: a sentence
then reaches the microphone 0.02-0.07 s after paplay starts (measured with parec), and a
test that speaks at a given moment speaks then.

Clients (Firefox, paplay, pactl) reach it through the environment of `client_env`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import wave
from pathlib import Path

from devtools import setup
from tests.e2e.support import wait_until

MIC_SINK = "mic"
SPEAKERS = "speakers"
MICROPHONE = "microphone"
READY_TIMEOUT = 15.0


class PulseAudio:
    """One PulseAudio daemon (start() … close()), its null sinks and virtual microphone."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="voice-agent-pulse-"))
        self.socket = self.folder / "native"
        self.log_path = log_path or self.folder / "pulseaudio.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.keeper: subprocess.Popen[bytes] | None = None

    @property
    def client_env(self) -> dict[str, str]:
        """What a client's environment needs to use this daemon, and no other."""
        return {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_COOKIE": str(self.folder / "cookie"),
            "PULSE_RUNTIME_PATH": str(self.folder / "runtime"),
        }

    def env(self) -> dict[str, str]:
        return {**os.environ, **self.client_env}

    def start(self) -> PulseAudio:
        (self.folder / "runtime").mkdir(mode=0o700)
        (self.folder / "state").mkdir(mode=0o700)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **self.env(),
            "HOME": str(self.folder),  # its ~/.config/pulse, if it looks, is ours too
            "XDG_CONFIG_HOME": str(self.folder / "config"),
            "XDG_RUNTIME_DIR": str(self.folder / "runtime"),
            "PULSE_STATE_PATH": str(self.folder / "state"),
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(setup.pulseaudio()),
                    "-n",  # no default.pa: only the modules below
                    "--daemonize=no", "--system=false", "--exit-idle-time=-1", "--use-pid-file=false",
                    "--disallow-module-loading=false", "--log-target=stderr", "--log-level=notice",
                    f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
                    f"--load=module-null-sink sink_name={SPEAKERS} rate=48000 channels=2",
                    f"--load=module-null-sink sink_name={MIC_SINK} rate=48000 channels=1",
                    f"--load=module-remap-source master={MIC_SINK}.monitor source_name={MICROPHONE} "
                    f"rate=48000 channels=1",
                ],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            wait_until(self._answers, READY_TIMEOUT, "PulseAudio to answer")
            self.pactl("set-default-sink", SPEAKERS)
            self.pactl("set-default-source", MICROPHONE)
            info = self.pactl("info")
            assert f"Default Source: {MICROPHONE}" in info and f"Default Sink: {SPEAKERS}" in info, info
            self.keeper = subprocess.Popen(
                ["pacat", "--playback", f"--device={MIC_SINK}", "--raw", "--format=s16le", "--rate=48000",
                 "--channels=1", "--latency-msec=10", "--stream-name=keep-low-latency", "/dev/zero"],
                env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            wait_until(lambda: self._sink_state(MIC_SINK) == "RUNNING", READY_TIMEOUT, "the silent stream to play")
        except BaseException:
            self.close()
            raise
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"PulseAudio exited ({self.process.returncode}): {self.log_path.read_text()}")
        return subprocess.run(["pactl", "info"], env=self.env(), capture_output=True, timeout=5).returncode == 0

    def _sink_state(self, name: str) -> str:
        rows = [line.split("\t") for line in self.pactl("list", "short", "sinks").splitlines()]
        return next((row[-1] for row in rows if len(row) > 1 and row[1] == name), "")

    def pactl(self, *args: str) -> str:
        result = subprocess.run(["pactl", *args], env=self.env(), capture_output=True, text=True, timeout=10)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def play(self, wav: Path) -> subprocess.Popen[bytes]:
        """Start saying `wav` into the microphone; the returned paplay ends when it has played."""
        return subprocess.Popen(
            ["paplay", f"--device={MIC_SINK}", "--latency-msec=20", str(wav)],
            env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

    def say(self, wav: Path) -> float:
        """Say `wav` into the microphone, wait until it has played; return the seconds it took."""
        started = time.monotonic()
        player = self.play(wav)
        _, errors = player.communicate(timeout=wav_seconds(wav) + 15)
        assert player.returncode == 0, errors.decode()
        return time.monotonic() - started

    def close(self) -> None:
        if self.keeper is not None and self.keeper.poll() is None:
            self.keeper.terminate()
            self.keeper.wait(timeout=10)
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def wav_seconds(wav: Path) -> float:
    with wave.open(str(wav)) as file:
        return float(file.getnframes() / file.getframerate())
