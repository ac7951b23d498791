"""Rate limits of `serve`, in the memory of the process: at most ``limit`` events per key
(a client address, an email address) in any ``window``.

Memory is bounded: a key's events are at most ``limit`` times, and at most ``max_keys``
keys are remembered; when that many are, the key seen least recently is forgotten first
(a flood of new keys costs the oldest their history, never the memory of the host).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta


class RateLimit:
    def __init__(self, limit: int, window: timedelta, max_keys: int = 100_000):
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self.events: OrderedDict[str, deque[datetime]] = OrderedDict()
        self.lock = threading.Lock()

    def hit(self, key: str, now: datetime) -> int | None:
        """Count an event of ``key`` now and None, or (over the limit: not counted) the
        whole seconds until the next would be allowed, for Retry-After. A limit of 0 is
        no limit."""
        if not self.limit:
            return None
        with self.lock:
            times = self.events.pop(key, None) or deque()
            while times and now - times[0] >= self.window:
                times.popleft()
            self.events[key] = times  # the most recently seen key last
            if len(self.events) > self.max_keys:
                self.events.popitem(last=False)
            if len(times) >= self.limit:
                return max(1, math.ceil((times[0] + self.window - now).total_seconds()))
            times.append(now)
            return None
