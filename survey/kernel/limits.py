"""In-process rate limits for the answering links (token buckets) that never punish the
innocent for what others behind the same address do.

Mobile carriers put thousands of phones behind one address, so nothing an honest citizen does
is counted per address:
- `requests`: every request to `/s/TOKEN`, counted per *link* (default: bursts of 60, refilled
  at 2 per second), so one link cannot be hammered, while sixty citizens answering at once
  from one carrier address each have their own bucket;
- `misses`: requests whose link is not open (unknown, expired, used) or whose token has the
  wrong shape, counted per *address* (default: bursts of 20, refilled at one per 30 seconds).
  Once an address has used them up, its further misses are answered 429 instead of 404; a
  link that works is still served from that address, whoever else there guessed. Guessing an
  80-bit token is hopeless anyway; this makes it slow and visible as well.

Limits are per process and reset on restart; several workers each keep their own.
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

    requests: Bucket = field(default_factory=lambda: Bucket(burst=60, per_second=2.0))  # a link
    misses: Bucket = field(default_factory=lambda: Bucket(burst=20, per_second=1 / 30))  # address


class Throttle:
    """Thread-safe buckets per client key; `monotonic` is injectable for tests."""

    def __init__(
        self, limit: RateLimit | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit or RateLimit()
        self._now = monotonic
        self._state: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow_link(self, link: str) -> bool:
        """Spend one of the link's request tokens; False when that link is over its limit."""
        with self._lock:
            return self._take("requests", link, self.limit.requests)

    def record_miss(self, client: str) -> bool:
        """Spend one of the address's miss tokens (a closed, unknown or malformed link);
        False when it had none left: the miss is then answered 429."""
        with self._lock:
            return self._take("misses", client, self.limit.misses)

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
