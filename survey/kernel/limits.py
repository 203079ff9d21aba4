"""An in-process rate limit per client for the answering links (token buckets).

Two buckets per client address:
- `requests`: every request to `/s/...` (default: bursts of 60, refilled at 2 per second),
  so one address cannot hammer the pages;
- `misses`: requests whose link is not open (unknown, expired, used) or whose token has the
  wrong shape (default: bursts of 20, refilled at one per 30 seconds). Guessing an 80-bit
  token is hopeless anyway; this bucket makes it slow and visible as well.

When either bucket is empty the client gets HTTP 429 with the same friendly page. Limits are
per process and reset on restart; several workers each keep their own (issue 8 hardens this
with a shared store). Carrier-grade NAT puts many phones behind one address, which is why
the request bucket is generous and only misses are counted strictly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Bucket", "RateLimit", "Throttle"]

MAX_CLIENTS = 100_000


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: `burst` tokens at most, refilled at `per_second`."""

    burst: float
    per_second: float


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The answering pages' limits (see the module docstring for the defaults' reasons)."""

    requests: Bucket = field(default_factory=lambda: Bucket(burst=60, per_second=2.0))
    misses: Bucket = field(default_factory=lambda: Bucket(burst=20, per_second=1 / 30))


class Throttle:
    """Thread-safe buckets per client key; `monotonic` is injectable for tests."""

    def __init__(
        self, limit: RateLimit | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit or RateLimit()
        self._now = monotonic
        self._state: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow_request(self, client: str) -> bool:
        """Spend one request token; False when the client is over either limit."""
        with self._lock:
            if self._level("misses", client, self.limit.misses) < 1.0:
                return False
            return self._take("requests", client, self.limit.requests)

    def record_miss(self, client: str) -> None:
        """Spend one miss token (a closed, unknown or malformed link)."""
        with self._lock:
            self._take("misses", client, self.limit.misses)

    def _level(self, kind: str, client: str, bucket: Bucket) -> float:
        now = self._now()
        tokens, at = self._state.get((kind, client), (bucket.burst, now))
        return min(bucket.burst, tokens + (now - at) * bucket.per_second)

    def _take(self, kind: str, client: str, bucket: Bucket) -> bool:
        level = self._level(kind, client, bucket)
        if len(self._state) >= MAX_CLIENTS:
            self._forget_full()
        if level < 1.0:
            self._state[(kind, client)] = (level, self._now())
            return False
        self._state[(kind, client)] = (level - 1.0, self._now())
        return True

    def _forget_full(self) -> None:
        """Drop buckets that have refilled completely (they carry no information)."""
        now = self._now()
        limits = {"requests": self.limit.requests, "misses": self.limit.misses}
        self._state = {
            key: (tokens, at)
            for key, (tokens, at) in self._state.items()
            if tokens + (now - at) * limits[key[0]].per_second < limits[key[0]].burst
        }
