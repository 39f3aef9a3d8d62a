"""Server VAD: where turns start and end, from Silero's speech probability per 32 ms
window, following the session's `turn_detection` (threshold, prefix_padding_ms,
silence_duration_ms) as OpenAI's `server_vad` does.

Besides start and stop it reports a pause, a short silence inside a turn, so that the
final decode can start speculatively before `silence_duration_ms` has passed, and a
resumption, when the speaker goes on and that decode must be dropped."""

from __future__ import annotations

from dataclasses import dataclass

from offline_openai.stt.vad import SAMPLE_RATE, WINDOW

# Voiced audio needed, in a row, before a turn starts: a click or a knock is shorter.
START_SAMPLES = 3 * WINDOW
# The silence after which a final decode starts speculatively. Shorter wastes decodes on
# the pauses between phrases; longer delays every final by as much.
PAUSE_SAMPLES = 3 * WINDOW
# Below threshold - HYSTERESIS the window is silence; between the two it continues
# whatever came before (Silero's own rule against flicker).
HYSTERESIS = 0.15


@dataclass(frozen=True)
class TurnSettings:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500

    @property
    def prefix_samples(self) -> int:
        return self.prefix_padding_ms * SAMPLE_RATE // 1000

    @property
    def silence_samples(self) -> int:
        return self.silence_duration_ms * SAMPLE_RATE // 1000


@dataclass(frozen=True)
class Started:
    voiced_start: int  # first sample of the first voiced window


@dataclass(frozen=True)
class Paused:
    voiced_end: int  # one past the last voiced sample


@dataclass(frozen=True)
class Resumed:
    pass


@dataclass(frozen=True)
class Stopped:
    voiced_end: int
    at: int  # where the silence reached silence_duration_ms


Event = Started | Paused | Resumed | Stopped


class Endpointer:
    """Positions are absolute sample indices at 16 kHz; window k ends at (k + 1) * WINDOW."""

    def __init__(self, settings: TurnSettings) -> None:
        self.settings = settings
        self._run_start: int | None = None  # a voiced run not yet long enough to start a turn
        self._speaking = False
        self._paused = False
        self._voiced_end = 0

    @property
    def speaking(self) -> bool:
        return self._speaking

    def push(self, probability: float, window_end: int) -> Event | None:
        voiced = probability >= self.settings.threshold
        if not self._speaking:
            if not voiced:
                self._run_start = None
                return None
            if self._run_start is None:
                self._run_start = window_end - WINDOW
            if window_end - self._run_start < START_SAMPLES:
                return None
            self._speaking, self._paused, self._voiced_end = True, False, window_end
            start, self._run_start = self._run_start, None
            return Started(start)
        if probability >= max(self.settings.threshold - HYSTERESIS, 0.01):
            self._voiced_end = window_end
            if self._paused:
                self._paused = False
                return Resumed()
            return None
        silence = window_end - self._voiced_end
        if silence >= self.settings.silence_samples:
            self._speaking = False
            return Stopped(self._voiced_end, window_end)
        if not self._paused and silence >= PAUSE_SAMPLES:
            self._paused = True
            return Paused(self._voiced_end)
        return None
