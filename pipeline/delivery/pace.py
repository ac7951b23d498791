"""How fast a send may go: `[delivery] max_per_second`, the pause a provider asks for
(SendGrid's 429 with X-RateLimit-Reset or Retry-After), and `max_per_day`.

The per-second limit and a provider's pause hold for the whole run, every request in
flight included, not only for the batch that met them. The daily limit holds across
runs and processes: the ledger is its record (what was sent, in flight or of unknown
outcome in the last 24 hours), read when a run starts and whenever the run's own count
says the limit is near.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

DAY = timedelta(hours=24)


class Pace:
    """Requests wait their turn: at most ``per_second`` messages a second (0: no
    limit), and none before a pause a provider asked for has passed. Thread-safe."""

    def __init__(self, per_second: int, sleep: Callable[[float], None],
                 monotonic: Callable[[], float] = time.monotonic):
        self.interval = 1.0 / per_second if per_second else 0.0
        self.sleep = sleep
        self.monotonic = monotonic
        self.lock = threading.Lock()
        self.next_free = 0.0  # when the next message may go (monotonic seconds)

    def wait(self, messages: int) -> float:
        """Reserve a slot for a request of this many messages and wait for it; the
        seconds waited."""
        with self.lock:
            now = self.monotonic()
            start = max(now, self.next_free)
            self.next_free = start + self.interval * messages
        delay = start - now
        if delay > 0:
            self.sleep(delay)
        return max(delay, 0.0)

    def pause(self, seconds: float) -> None:
        """Nobody sends for this long (a provider's rate limit answer)."""
        with self.lock:
            self.next_free = max(self.next_free, self.monotonic() + seconds)


class DailyCap:
    """At most ``limit`` messages in any 24 hours (0: no limit), counted by the ledger.

    ``allowance()`` is how many more this run may claim now. The count is read from the
    ledger at the start and again when the run's own tally says the limit is reached (a
    worker elsewhere may have sent meanwhile, or what it sent may have aged out)."""

    def __init__(self, limit: int, used_since: Callable[[datetime], int],
                 clock: Callable[[], datetime]):
        self.limit = limit
        self.used_since = used_since
        self.clock = clock
        self.used = used_since(clock() - DAY) if limit else 0
        self.reached = False

    def allowance(self) -> int:
        if not self.limit:
            return 1 << 30
        if self.used >= self.limit:
            self.used = self.used_since(self.clock() - DAY)
        left = max(self.limit - self.used, 0)
        self.reached = left == 0
        return left

    def take(self, count: int) -> None:
        self.used += count
