"""Shared pieces: the speech clip, latency profiles, statistics, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from livekit.agents import TurnHandlingOptions

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
CACHE = ROOT / "artifacts" / "bench"

USER_SPEECH = "Hello there, how are you?"
STT_UTTERANCE = "Hello there."  # what the scripted STT "hears"; the fake LLM echoes it

# Emulated provider latencies: typical OpenAI figures (STT final 300 ms after end of speech,
# gpt-4o-mini first token 400 ms, TTS first audio 300 ms); 20 ms between tokens is ~50 tokens/s,
# gpt-4o-mini's usual streaming rate.
PROFILES: dict[str, dict[str, str]] = {
    "zero": {
        "FAKE_STT_DELAY": "0",
        "FAKE_LLM_FIRST_TOKEN_DELAY": "0",
        "FAKE_LLM_TOKEN_INTERVAL": "0",
        "FAKE_TTS_FIRST_AUDIO_DELAY": "0",
    },
    "openai": {
        "FAKE_STT_DELAY": "0.3",
        "FAKE_LLM_FIRST_TOKEN_DELAY": "0.4",
        "FAKE_LLM_TOKEN_INTERVAL": "0.02",
        "FAKE_TTS_FIRST_AUDIO_DELAY": "0.3",
    },
}

# The product's own providers (the production openai set) against the stack's offline
# OpenAI-compatible server: Whisper tiny.en, the rule-based replies, Piper. No fake knobs;
# the values are extra environment for the agent. Both say VOICE_PREEMPTIVE_TTS, as offline
# stacks default to 1 since b3d8aef: `offline` is the app's own default (preemptive LLM
# only), `offline-preemptive` also synthesises the reply on the final transcript.
OFFLINE_PROFILES: dict[str, dict[str, str]] = {
    "offline": {"VOICE_PREEMPTIVE_TTS": "0"},
    "offline-preemptive": {"VOICE_PREEMPTIVE_TTS": "1"},
}


def profile_env(name: str) -> dict[str, str]:
    """The environment a profile gives the agent: the fake set with its knobs, or the
    product's openai set on the offline server."""
    if name in OFFLINE_PROFILES:
        return {**OFFLINE_PROFILES[name], "VOICE_PROVIDERS": "openai"}
    return {**PROFILES[name], "FAKE_STT_UTTERANCES": STT_UTTERANCE, "VOICE_PROVIDERS": "fake"}


def apply_profile(name: str) -> dict[str, str]:
    """Set a profile's environment in this process (the fake set reads it at session build)."""
    env = profile_env(name)
    os.environ.update(env)
    return env


def bare_session(*, vad_min_silence: float | None = None, turn_handling: TurnHandlingOptions | None = None) -> Any:
    """The baseline ours is compared with: a plain livekit-agents AgentSession with the providers
    our sessions get from the fake set (fakes.providers, its FAKE_* knobs) and the turn handling
    of the app's settings (environment included), and nothing else: no Django, no bridge."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "app.settings")
    from livekit.agents import AgentSession
    from livekit.plugins import silero

    from app.voice.agent.turn import turn_handling as production_turn_handling
    from app.voice.sessions.info import SessionInfo
    from fakes.providers import build

    providers = build(SessionInfo(session_id="bare", room="bare", identity="bare", livekit_room="bare"))
    vad = providers.vad if vad_min_silence is None else silero.VAD.load(min_silence_duration=vad_min_silence)
    return AgentSession(
        vad=vad,
        stt=providers.stt,
        llm=providers.llm,
        tts=providers.tts,
        turn_handling=turn_handling or production_turn_handling(),
    )


@dataclass
class Clip:
    """Speech samples trimmed to the voiced part, so 'end of speech' is the last sample."""

    samples: np.ndarray  # int16 mono
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate

    def frames(self, per: int) -> list[np.ndarray]:
        """The clip in frames of `per` samples, the last one padded with silence."""
        n = len(self.samples) // per + 1
        padded = np.zeros(n * per, dtype=np.int16)
        padded[: len(self.samples)] = self.samples
        return list(padded.reshape(n, per))

    def last_frame_lead(self, per: int) -> float:
        """How long before its last frame is complete the clip's last voiced sample is spoken."""
        return (per - len(self.samples) % per) / self.rate


def trim_voiced(samples: np.ndarray, rate: int, threshold_dbfs: float = -45.0) -> np.ndarray:
    """Cut leading/trailing windows quieter than `threshold_dbfs` (10 ms windows)."""
    win = rate // 100
    n = len(samples) // win
    frames = samples[: n * win].astype(np.float64).reshape(n, win) / 32768.0
    level = 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-9)
    voiced = np.nonzero(level > threshold_dbfs)[0]
    if not len(voiced):
        raise ValueError("clip has no speech")
    return samples[voiced[0] * win : (voiced[-1] + 1) * win]


def speech_clip(rate: int = 16000, text: str = USER_SPEECH) -> Clip:
    from devtools import speech

    path = speech.speech_wav(text, CACHE / f"speech-flite-{rate}.wav", rate=rate, lead=0, tail=0)
    samples, file_rate = speech.read_wav(path)
    return Clip(trim_voiced(samples, file_rate), file_rate)


def browser_wav(period: float, rate: int = 48000, lead: float = 0.5) -> Path:
    """A loop for Chromium's fake mic: `lead` s silence, the voiced clip, silence up to `period`."""
    from devtools import speech

    clip = speech_clip(rate)
    audio = np.zeros(int(period * rate), dtype=np.int16)
    start = int(lead * rate)
    audio[start : start + len(clip.samples)] = clip.samples
    return speech.write_wav(CACHE / f"browser-loop-{period:g}s.wav", audio, rate)


def pct(values: list[float], q: float) -> float | None:
    """Percentile with linear interpolation (q in 0..100); None for no data."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


def summary(values: list[float]) -> dict[str, float | int | None]:
    vals = [v for v in values if v is not None]
    return {
        "n": len(vals),
        "p50": pct(vals, 50),
        "p95": pct(vals, 95),
        "p99": pct(vals, 99),
        "mean": statistics.fmean(vals) if vals else None,
        "min": min(vals) if vals else None,
        "max": max(vals) if vals else None,
    }


def fmt(seconds: float | None) -> str:
    return "–" if seconds is None else f"{round(seconds * 1000)} ms"


def environment() -> dict[str, object]:
    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001 - informational only
            return ""

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "os": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_start": os.getloadavg(),
        },
        "versions": {
            p: version(p)
            for p in ("livekit-agents", "livekit-plugins-silero", "livekit", "django", "channels", "uvicorn")
        },
        "git": {
            "commit": git("rev-parse", "--short", "HEAD"),
            "dirty_files": len(git("status", "--porcelain").splitlines()),
        },
    }


def write_result(name: str, data: dict[str, object]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"environment": environment(), **data}, indent=2, default=float) + "\n")
    print(f"   -> {path.relative_to(ROOT)}")
    return path
