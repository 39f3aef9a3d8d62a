"""A token bucket, for the bounds on what clients send (socket frames, typed lines)."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """`burst` takes at once, refilled at `rate` takes a second."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
