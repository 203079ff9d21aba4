"""Reporting periods in the Solar Hijri and Gregorian calendars."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from survey.kernel.periods import (
    PeriodError,
    format_date,
    parse_day,
    parse_optional_day,
    parse_period,
    solar_month_of,
    tehran_day,
)


def test_solar_hijri_month_is_farvardin_as_gregorian_days() -> None:
    period = parse_period("1405-01")
    assert (period.label, period.calendar) == ("1405-01", "solar_hijri")
    assert (period.start, period.end) == (date(2026, 3, 21), date(2026, 4, 21))
    assert period.days == 31


def test_esfand_1404_has_29_days_and_ends_at_nowruz() -> None:
    period = parse_period("1404-12")
    assert (period.start, period.end) == (date(2026, 2, 20), date(2026, 3, 21))


def test_quarter_and_year() -> None:
    quarter = parse_period("1405-Q1")
    assert (quarter.start, quarter.end) == (date(2026, 3, 21), date(2026, 6, 22))
    year = parse_period("1405")
    assert year.start == date(2026, 3, 21)
    assert year.end == parse_period("1406-01").start
    assert year.days in (365, 366)
    assert parse_period("1405-q4").end == year.end


def test_gregorian_forms() -> None:
    assert parse_period("2026-03").start == date(2026, 3, 1)
    assert parse_period("2026-03").end == date(2026, 4, 1)
    assert parse_period("2026-12").end == date(2027, 1, 1)
    assert parse_period("2026-Q4").end == date(2027, 1, 1)
    assert parse_period("2026").calendar == "gregorian"


def test_persian_digits_and_slashes_are_read() -> None:
    assert parse_period("۱۴۰۵/۰۱").label == "1405-01"
    assert parse_day("۱۴۰۵/۰۱/۰۱") == date(2026, 3, 21)


def test_arabic_indic_digits_are_read_and_errors_quote_what_was_typed() -> None:
    assert parse_period("١٤٠٥-Q١").label == "1405-Q1"
    assert parse_day("٢٠٢٦-٠٣-٢١") == date(2026, 3, 21)
    with pytest.raises(PeriodError, match="got '۱۴۰۵٫۰۱'"):
        parse_period("۱۴۰۵٫۰۱")


def test_days_in_both_calendars() -> None:
    assert parse_day("2026-03-10") == date(2026, 3, 10)
    assert parse_day("1404-12-19") == date(2026, 3, 10)
    assert solar_month_of(date(2026, 3, 20)) == "1404-12"
    assert solar_month_of(date(2026, 3, 21)) == "1405-01"
    assert format_date(date(2026, 3, 21)) == "1405-01-01 (2026-03-21)"


def test_tehran_day_crosses_midnight_before_utc() -> None:
    # 21:00 UTC on 20 March is 00:30 on 21 March in Tehran (UTC+3:30): already Farvardin.
    assert tehran_day(datetime(2026, 3, 20, 21, 0, tzinfo=UTC)) == date(2026, 3, 21)
    start, end = parse_period("1405-01").utc_bounds()
    assert start == datetime(2026, 3, 20, 20, 30, tzinfo=UTC)
    assert end == datetime(2026, 4, 20, 20, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1405-13", "month from 01 to 12"),
        ("1405-Q5", "1405-Q1 (quarter)"),
        ("March 2026", "1405-01 (month)"),
        ("", "1405 (year)"),
        ("1405-00", "month from 01 to 12"),
    ],
)
def test_bad_periods_name_the_accepted_forms(text: str, fragment: str) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_period(text)
    assert fragment in caught.value.message
    assert repr(text) in caught.value.message
    assert caught.value.problems[0].field == "period"


@pytest.mark.parametrize("text", ["2026-02-30", "1405-13-01", "2026/3", "tomorrow"])
def test_bad_days_are_refused_clearly(text: str) -> None:
    with pytest.raises(PeriodError, match="date: expected"):
        parse_day(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1405-12-30", "Solar Hijri Esfand 1405 has 29 days"),  # 1405 is not a leap year
        ("1405-07-31", "Solar Hijri Mehr 1405 has 30 days"),
        ("2026-02-29", "February 2026 has 28 days"),
        ("1405-13-01", "a month from 01 to 12"),
    ],
)
def test_a_day_that_does_not_exist_is_refused_never_shifted(text: str, reason: str) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_day(text, field="starts")
    assert caught.value.problems[0].field == "starts"
    assert reason in caught.value.message and repr(text) in caught.value.message


def test_esfand_30_exists_in_a_leap_year() -> None:
    assert parse_day("1403-12-30") == date(2025, 3, 20)


def test_direction_marks_a_phone_adds_around_digits_are_ignored() -> None:
    # As copied from a Persian message: right-to-left marks around the date.
    assert parse_day("\u200f۱۴۰۵/۰۸/۰۱\u200f") == date(2026, 10, 23)
    assert parse_period("\u2067١٤٠٥-٠٨\u2069").label == "1405-08"


def test_an_optional_day_is_none_when_blank() -> None:
    assert parse_optional_day(None, field="from") is None
    assert parse_optional_day("  ", field="from") is None
    assert parse_optional_day("۱۴۰۵-۰۸-۰۱", field="from") == date(2026, 10, 23)
    with pytest.raises(PeriodError, match="from: expected"):
        parse_optional_day("1405-08-32", field="from")
