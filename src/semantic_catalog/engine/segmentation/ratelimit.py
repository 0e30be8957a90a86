"""A thread-safe rate limiter for LLM calls: requests per minute and tokens per minute.

Why token buckets: a provider's limits are per minute, but a burst of a minute's worth of requests at the start
of a run still trips per-second limits, so requests are paced evenly (a bucket of one) while tokens may burst
up to ten seconds' worth.
"""

from __future__ import annotations

import threading
import time


class TokenBucket:
    """``rate`` units per second, holding at most ``capacity``; ``take(n)`` waits until n are available."""

    def __init__(self, per_minute: float, capacity: float):
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = per_minute / 60.0
        self.capacity = max(capacity, 1.0)
        self.level = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self, amount: float = 1.0) -> float:
        """Waits until ``amount`` is available (clamped to the capacity) and takes it; returns seconds waited."""
        amount = min(amount, self.capacity)
        waited = 0.0
        while True:
            with self.lock:
                now = time.monotonic()
                self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
                self.updated = now
                if self.level >= amount:
                    self.level -= amount
                    return waited
                pause = (amount - self.level) / self.rate
            time.sleep(pause)
            waited += pause


class RateLimiter:
    """Requests and tokens per minute (either None: unlimited)."""

    def __init__(self, requests_per_minute: int | None = None, tokens_per_minute: int | None = None):
        self.requests = TokenBucket(requests_per_minute, 1.0) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, tokens_per_minute / 6.0) if tokens_per_minute else None

    def acquire(self, tokens: int) -> float:
        """Blocks until one request of about ``tokens`` tokens may go; returns seconds waited."""
        waited = 0.0
        if self.requests is not None:
            waited += self.requests.take(1.0)
        if self.tokens is not None:
            waited += self.tokens.take(float(tokens))
        return waited
