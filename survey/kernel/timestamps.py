"""Machine timestamps (a transaction's `completed_at`): ISO 8601 Gregorian with a UTC offset,
and plausible for a transaction reported as it happens.

People type days in either calendar (survey.kernel.periods); systems send timestamps, and those
must be Gregorian. A Solar Hijri one is the mistake to catch: `1405-09-13T11:00:00+03:30` is
also a valid Gregorian time (621 years ago), and stored as that it would never be surveyed. So a
year below 1700 (the same line `parse_day` draws) is refused with the Gregorian time it most
likely meant spelled out, and so is any time before 2000, in the future beyond a few minutes of
clock skew, or older than the configured limit (SURVEY_MAX_RECORD_AGE_DAYS).

Persian (۰-۹) and Arabic-Indic (٠-٩) digits are read as Latin ones, since some systems format
times with the user's locale; the calendar rule applies after folding.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import jdatetime

from survey.kernel.locale import fold_digits
from survey.kernel.periods import FIRST_GREGORIAN_YEAR

__all__ = [
    "CLOCK_SKEW",
    "EARLIEST",
    "TimestampError",
    "TimestampReader",
    "read_timestamp",
]

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(minutes=15)  # a sender's clock may run this far ahead of ours
EXAMPLE = "2026-03-10T12:30:00+03:30"
_LEADING_DAY = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})")
_SHOWN = 40  # characters of a bad value quoted back


class TimestampError(ValueError):
    """A timestamp that cannot be read or is not plausible; the message says which and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def read_timestamp(
    raw: str, *, now: datetime, max_age: timedelta, field: str = "completed_at"
) -> datetime:
    """The aware UTC instant `raw` names; TimestampError naming `field` and the value when it is
    not ISO 8601 Gregorian with an offset, or is before 2000, after `now` (beyond CLOCK_SKEW)
    or more than `max_age` before `now`."""
    return TimestampReader(now, max_age, field).read(raw)


class TimestampReader:
    """`read_timestamp` for many values against one `now` (a batch's): the bounds are
    computed once, since ingestion reads a timestamp per record."""

    __slots__ = ("_earliest", "_latest", "field", "max_age", "now")

    def __init__(self, now: datetime, max_age: timedelta, field: str = "completed_at") -> None:
        self.now = now
        self.max_age = max_age
        self.field = field
        self._latest = now + CLOCK_SKEW
        self._earliest = max(EARLIEST, now - max_age)

    def read(self, raw: str) -> datetime:
        text = raw.strip()
        if not text.isascii():
            text = fold_digits(text)
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise self._unreadable(raw, text) from None
        if value.year < FIRST_GREGORIAN_YEAR:
            leading = _LEADING_DAY.match(text)  # else a compact form, 14050913T110000+0330
            time_part = text[leading.end() :] if leading else value.isoformat()[10:]
            raise _calendar_error(
                self.field, _shown(raw), value.year, value.month, value.day, time_part
            )
        if value.tzinfo is None or value.utcoffset() is None:
            raise TimestampError(
                f"{self.field} must include a UTC offset (e.g. +03:30 or Z); got {_shown(raw)}"
            )
        try:
            value = value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+14:00 has no UTC time
            raise TimestampError(f"{self.field} {_shown(raw)} is out of range") from None
        if self._earliest <= value <= self._latest:
            return value
        raise self._implausible(raw, value)

    def _unreadable(self, raw: str, text: str) -> TimestampError:
        leading = _LEADING_DAY.match(text)
        if leading and int(leading[1]) < FIRST_GREGORIAN_YEAR:
            year, month, day = (int(part) for part in leading.groups())
            time_part = text[leading.end() :]
            return _calendar_error(self.field, _shown(raw), year, month, day, time_part)
        return TimestampError(
            f"{self.field} must be an ISO 8601 time with offset such as {EXAMPLE}; "
            f"got {_shown(raw)}"
        )

    def _implausible(self, raw: str, value: datetime) -> TimestampError:
        field, shown = self.field, _shown(raw)
        if value > self._latest:
            return TimestampError(
                f"{field} {shown} is in the future (the service's clock reads "
                f"{self.now.astimezone(UTC):%Y-%m-%dT%H:%MZ}; {_minutes(CLOCK_SKEW)} minutes of "
                "clock difference are allowed)"
            )
        if value < EARLIEST:
            return _before_2000(field, shown)
        return TimestampError(
            f"{field} {shown} is {(self.now - value).days} days old; transactions older than "
            f"{self.max_age.days} days are not accepted (SURVEY_MAX_RECORD_AGE_DAYS); is the "
            "date right?"
        )


def _calendar_error(
    field: str, shown: str, year: int, month: int, day: int, time_part: str
) -> TimestampError:
    """A year below 1700: a Solar Hijri date, named with the Gregorian time meant, when that
    is a plausible one; otherwise simply a time before 2000."""
    try:
        gregorian: date = jdatetime.date(year, month, day).togregorian()
    except ValueError:
        if year < EARLIEST.year - 621:
            return _before_2000(field, shown)
        return TimestampError(
            f"{field} {shown} looks like a Solar Hijri date, and {year:04d}-{month:02d}-"
            f"{day:02d} does not exist in that calendar; send ISO 8601 Gregorian (e.g. {EXAMPLE})"
        )
    if gregorian < EARLIEST.date():
        return _before_2000(field, shown)
    if time_part[:1] in ("T", " ") and len(time_part) > 1:
        meant = f"{gregorian.isoformat()}T{time_part[1:]}"
    else:
        meant = f"{gregorian.isoformat()}Thh:mm:ss+03:30"
    return TimestampError(
        f"{field} {shown} looks like a Solar Hijri date; send ISO 8601 Gregorian ({meant})"
    )


def _before_2000(field: str, shown: str) -> TimestampError:
    return TimestampError(
        f"{field} {shown} is before 2000: send ISO 8601 Gregorian time such as {EXAMPLE} "
        "(a Solar Hijri date such as 1405-08-01 must be converted first)"
    )


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)


def _shown(raw: str) -> str:
    """The value as quoted back in a message (cut short: a message is not an echo service)."""
    return repr(raw[:_SHOWN])
