"""Reporting periods: Solar Hijri months, quarters and years (and Gregorian ones), as date ranges.

Iran's official statistics run on the Solar Hijri calendar, so `1405-01` (Farvardin 1405),
`1405-Q1` (Farvardin to Khordad) and `1405` are the natural periods; Gregorian `2026-03`,
`2026-Q1` and `2026` are accepted too. A year below 1700 is Solar Hijri, from 1700 Gregorian
(the two ranges cannot be confused for any date this service will see).

Every period is a half-open range of calendar days `[start, end)` in Asia/Tehran: a transaction
belongs to the period of its Tehran day. Persian (۰-۹) and Arabic-Indic (٠-٩) digits are read
as well as Latin ones, `/` may stand for `-`, and the invisible direction marks a phone puts
around digits in right-to-left text are dropped.

Every day a person gives (CLI `--from`/`--to`/`--starts`, `?from=&to=&starts=`, a plan file's
`starts`, the audit log's filters) is read by `parse_day`, so `1405-08-01` means Aban 1405
everywhere; a Solar Hijri day that does not exist (1405-12-30: Esfand 1405 has 29 days) is an
error, never shifted to a neighbour. Machine timestamps are another rule: survey.kernel.timestamps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import jdatetime

from survey.errors import InvalidInput, Problem
from survey.kernel.locale import fold_digits

__all__ = [
    "TEHRAN",
    "Period",
    "PeriodError",
    "format_date",
    "parse_day",
    "parse_optional_day",
    "parse_period",
    "solar_month_of",
    "tehran_day",
]

TEHRAN = ZoneInfo("Asia/Tehran")
FIRST_GREGORIAN_YEAR = 1700
_YEAR = re.compile(r"^(\d{4})$")
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_DAY = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
FORMS = "1405 (year), 1405-01 (month), 1405-Q1 (quarter), or Gregorian 2026, 2026-03, 2026-Q1"
_GREGORIAN_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
DAY_FORMS = "a date such as 2026-03-21 or 1405-01-01 (Solar Hijri)"
# Left-to-right, right-to-left and Arabic letter marks, embeddings and isolates: phones put
# them around digits typed or copied in Persian text; they are invisible and mean nothing here.
_DIRECTION_MARKS = dict.fromkeys(
    [0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


class PeriodError(InvalidInput):
    """A period or date string that cannot be read; its message names the field, what was
    expected and what was given (its one problem says the same, for the API's `problems`)."""

    def __str__(self) -> str:
        return self.message  # the console prints it once, not again as a list of one


@dataclass(frozen=True, slots=True)
class Period:
    """A reporting period: its canonical label and its Tehran days `[start, end)`."""

    label: str
    calendar: str  # "solar_hijri" | "gregorian"
    start: date
    end: date

    def contains(self, day: date) -> bool:
        return self.start <= day < self.end

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """The period as aware UTC instants: Tehran midnight of `start` and of `end`."""
        return tehran_midnight_utc(self.start), tehran_midnight_utc(self.end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def _normalise(text: str) -> str:
    return fold_digits(text.translate(_DIRECTION_MARKS).strip()).replace("/", "-")


def _problem(field: str, got: str, expected: str) -> PeriodError:
    message = f"{field}: expected {expected}; got {got!r}"
    return PeriodError(message, [Problem(message=f"expected {expected}; got {got!r}", field=field)])


def _solar_start(year: int, month: int) -> date:
    return jdatetime.date(year, month, 1).togregorian()


def _solar_months_end(year: int, month: int) -> date:
    """First Gregorian day after Solar Hijri month `month` of `year` (month may be 13)."""
    if month > 12:
        return _solar_start(year + 1, 1)
    return _solar_start(year, month)


def _gregorian_end(year: int, month: int) -> date:
    return date(year + 1, 1, 1) if month > 12 else date(year, month, 1)


def parse_period(text: str, *, field: str = "period") -> Period:
    """Read a period string; PeriodError naming the accepted forms when it cannot."""
    raw = str(text)
    value = _normalise(raw)
    try:
        if match := _YEAR.match(value):
            year = int(match[1])
            if year < FIRST_GREGORIAN_YEAR:
                return Period(
                    f"{year:04d}", "solar_hijri", _solar_start(year, 1), _solar_months_end(year, 13)
                )
            return Period(f"{year:04d}", "gregorian", date(year, 1, 1), date(year + 1, 1, 1))
        if match := _QUARTER.match(value):
            year, quarter = int(match[1]), int(match[2])
            first = 3 * (quarter - 1) + 1
            label = f"{year:04d}-Q{quarter}"
            if year < FIRST_GREGORIAN_YEAR:
                return Period(
                    label,
                    "solar_hijri",
                    _solar_start(year, first),
                    _solar_months_end(year, first + 3),
                )
            return Period(label, "gregorian", date(year, first, 1), _gregorian_end(year, first + 3))
        if match := _MONTH.match(value):
            year, month = int(match[1]), int(match[2])
            if not 1 <= month <= 12:
                raise _problem(field, raw, f"a month from 01 to 12 ({FORMS})")
            label = f"{year:04d}-{month:02d}"
            if year < FIRST_GREGORIAN_YEAR:
                return Period(
                    label,
                    "solar_hijri",
                    _solar_start(year, month),
                    _solar_months_end(year, month + 1),
                )
            return Period(label, "gregorian", date(year, month, 1), _gregorian_end(year, month + 1))
    except (ValueError, OverflowError) as exc:
        raise _problem(field, raw, f"a real period ({exc})") from None
    raise _problem(field, raw, FORMS)


def parse_day(text: str, *, field: str = "date") -> date:
    """Read one day: Gregorian `2026-03-21` or Solar Hijri `1405-01-01` (year below 1700)."""
    raw = str(text)
    value = _normalise(raw)
    match = _DAY.match(value)
    if not match:
        raise _problem(field, raw, DAY_FORMS)
    year, month, day = int(match[1]), int(match[2]), int(match[3])
    try:
        if year < FIRST_GREGORIAN_YEAR:
            return jdatetime.date(year, month, day).togregorian()
        return date(year, month, day)
    except ValueError:
        raise _problem(field, raw, _existing_day(year, month)) from None


def _existing_day(year: int, month: int) -> str:
    """What a day that does not exist should have been: its month's length, in its calendar."""
    if not 1 <= month <= 12:
        return "a month from 01 to 12"
    if year < 1:
        return "a year from 0001 (Solar Hijri below 1700, Gregorian from 1700)"
    if year < FIRST_GREGORIAN_YEAR:
        days = jdatetime.j_days_in_month[month - 1]
        if month == 12 and jdatetime.date(year, 1, 1).isleap():
            days += 1
        name = jdatetime.date.j_months_en[month - 1]
        return f"a day that exists (Solar Hijri {name} {year} has {days} days)"
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    days = (following - date(year, month, 1)).days
    return f"a day that exists ({_GREGORIAN_MONTHS[month - 1]} {year} has {days} days)"


def parse_optional_day(text: str | None, *, field: str) -> date | None:
    """`parse_day`, with a missing or blank value meaning no day (an open end of a range)."""
    if text is None or not _normalise(text):
        return None
    return parse_day(text, field=field)


def solar_month_of(day: date) -> str:
    """The Solar Hijri month label (`1405-01`) a Tehran day falls in."""
    solar = jdatetime.date.fromgregorian(date=day)
    return f"{solar.year:04d}-{solar.month:02d}"


def format_date(day: date) -> str:
    """A day in both calendars: `1405-01-01 (2026-03-21)`."""
    solar = jdatetime.date.fromgregorian(date=day)
    return f"{solar.year:04d}-{solar.month:02d}-{solar.day:02d} ({day.isoformat()})"


def tehran_day(instant: datetime) -> date:
    """The calendar day in Tehran of an aware instant."""
    if instant.tzinfo is None:
        raise ValueError("tehran_day needs an aware datetime")
    return instant.astimezone(TEHRAN).date()


def tehran_midnight_utc(day: date) -> datetime:
    """Midnight at the start of a Tehran day, as an aware UTC instant."""
    return datetime.combine(day, time(0), tzinfo=TEHRAN).astimezone(UTC)
