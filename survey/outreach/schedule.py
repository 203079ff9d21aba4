"""When a message may go: quiet hours in local (Tehran) time, and retry back-off.

Quiet hours are a plan's `["21:00", "08:00"]` (start, end; a window may wrap midnight) or
`None` for none. A time inside the window moves to the window's end, the same night or the
next morning; times are aware UTC in and out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["DEFAULT_QUIET_HOURS", "QuietHours", "RetryPolicy", "next_allowed"]

DEFAULT_QUIET_HOURS = ("21:00", "08:00")
TEHRAN = "Asia/Tehran"


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, window: Sequence[str] | None, zone: str = TEHRAN) -> QuietHours | None:
        """`["21:00", "08:00"]` -> QuietHours; None -> None; ValueError naming the problem."""
        if window is None:
            return None
        if len(window) != 2:
            raise ValueError(
                f"quiet_hours must be [start, end] like ['21:00', '08:00']; got {window!r}"
            )
        start, end = (_clock_time(value) for value in window)
        if start == end:
            raise ValueError(
                f"quiet_hours start and end are equal ({window[0]}); use null for none"
            )
        return cls(start, end, ZoneInfo(zone))

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, moment: datetime) -> datetime:
        """`moment` itself when outside the window, else the window's end (aware UTC)."""
        if not self.contains(moment):
            return moment
        local = moment.astimezone(self.zone)
        end = datetime.combine(local.date(), self.end, tzinfo=self.zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=self.zone)
        return end.astimezone(moment.tzinfo)


def next_allowed(moment: datetime, window: Sequence[str] | None, zone: str = TEHRAN) -> datetime:
    """The first time at or after `moment` outside the quiet hours `window`."""
    quiet = QuietHours.parse(window, zone)
    return moment if quiet is None else quiet.next_allowed(moment)


def _clock_time(value: str) -> time:
    try:
        hours, minutes = (int(part) for part in str(value).split(":"))
        return time(hours, minutes)
    except ValueError:
        raise ValueError(f"quiet_hours times must be HH:MM; got {value!r}") from None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off after a temporary gateway failure: base, 2 x base, 4 x base ...
    capped at `cap`; after `max_attempts` sends the message is marked failed for good."""

    max_attempts: int = 5
    base: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(hours=1)

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt (1-based)."""
        return min(self.base * (2 ** max(attempts - 1, 0)), self.cap)
