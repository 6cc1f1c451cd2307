"""Per API key rate limits: a token bucket per key, in the memory of each API process.

Each process enforces the limit on its own (N processes behind a load balancer admit up
to N times the configured rate in total); that keeps the check free of database writes
on every call. A bucket holds ``burst`` tokens and refills at ``per_minute / 60`` a
second; a call takes one token or is refused with the time until one is back.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable

from promocodes.errors import DomainError

# Buckets kept before the full ones are dropped.
MAX_BUCKETS = 100_000


class RateLimited(DomainError):
    slug = "rate-limited"
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        # Whole seconds, at least 1: the Retry-After header of the 429.
        self.retry_after = retry_after


class RateLimiter:
    def __init__(
        self,
        per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(max(burst, 1))
        self.enabled = per_minute > 0
        self.clock = clock
        self._lock = threading.Lock()
        # key -> (tokens, when they were counted)
        self._buckets: dict[Hashable, tuple[float, float]] = {}

    def take(self, key: Hashable) -> float:
        """Take a token for ``key``: 0 when allowed, else the seconds until one is back."""
        if not self.enabled:
            return 0.0
        with self._lock:
            now = self.clock()
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            tokens, then = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        # Keys come from callers (login attempts name any email): a bucket that has
        # refilled is the same as no bucket, so dropping those bounds the memory.
        self._buckets = {
            key: (tokens, then)
            for key, (tokens, then) in self._buckets.items()
            if tokens + (now - then) * self.rate < self.capacity
        }

    def check(self, key: int) -> None:
        """Raise ``RateLimited`` when ``key`` is over its limit."""
        wait = self.take(key)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise RateLimited(
                f"this API key is over its limit of {self.rate * 60:g} requests a minute; "
                f"retry in {retry} s",
                retry_after=retry,
            )
