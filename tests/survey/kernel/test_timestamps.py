"""Machine timestamps: ISO 8601 Gregorian with an offset, plausible, and never a Solar Hijri
date read as a Gregorian one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from survey.kernel.timestamps import TimestampError, read_timestamp

NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)  # 1405-09-13 in Tehran
YEAR_AND_A_MONTH = timedelta(days=400)


def read(text: str, max_age: timedelta = YEAR_AND_A_MONTH) -> datetime:
    return read_timestamp(text, now=NOW, max_age=max_age)


def refusal(text: str, max_age: timedelta = YEAR_AND_A_MONTH) -> str:
    with pytest.raises(TimestampError) as caught:
        read(text, max_age)
    return caught.value.message


def test_gregorian_iso_times_with_an_offset_are_read_as_utc() -> None:
    assert read("2026-12-04T12:30:00+03:30") == datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    assert read("2026-12-04T09:00:00Z") == datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    assert read(" 2025-11-01T08:00:00+00:00 ") == datetime(2025, 11, 1, 8, 0, tzinfo=UTC)


def test_persian_and_arabic_indic_digits_are_read_after_folding() -> None:
    expected = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    assert read("۲۰۲۶-۱۲-۰۴T۱۲:۳۰:۰۰+۰۳:۳۰") == expected
    assert read("٢٠٢٦-١٢-٠٤T١٢:٣٠:٠٠+٠٣:٣٠") == expected


def test_a_solar_hijri_time_is_refused_with_the_gregorian_time_it_meant() -> None:
    assert refusal("1405-09-13T11:00:00+03:30") == (
        "completed_at '1405-09-13T11:00:00+03:30' looks like a Solar Hijri date; send ISO "
        "8601 Gregorian (2026-12-04T11:00:00+03:30)"
    )
    # The same in Persian digits, and in the compact ISO form.
    assert "(2026-12-04T11:00:00+03:30)" in refusal("۱۴۰۵-۰۹-۱۳T۱۱:۰۰:۰۰+۰۳:۳۰")
    assert "(2026-12-04T11:00:00+03:30)" in refusal("14050913T110000+0330")
    # Ordibehesht has 31 days, so this one is not even a Gregorian date.
    assert "Solar Hijri date; send ISO 8601 Gregorian (2026-05-21T10:00:00Z)" in refusal(
        "1405-02-31T10:00:00Z"
    )
    assert "(2026-12-04Thh:mm:ss+03:30)" in refusal("1405-09-13")


def test_a_solar_hijri_day_that_does_not_exist_says_so() -> None:
    assert "1405-12-30 does not exist in that calendar" in refusal("1405-12-30T10:00:00+03:30")


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00+00:00", "1999-12-31T23:00:00Z", "1300-01-01T00:00:00Z"]
)
def test_anything_before_2000_is_refused(text: str) -> None:
    assert f"completed_at {text!r} is before 2000" in refusal(text)


def test_the_future_is_refused_beyond_a_few_minutes_of_clock_difference() -> None:
    assert read("2026-12-04T09:44:00Z") == NOW + timedelta(minutes=14)
    assert refusal("2026-12-04T09:46:00Z") == (
        "completed_at '2026-12-04T09:46:00Z' is in the future (the service's clock reads "
        "2026-12-04T09:30Z; 15 minutes of clock difference are allowed)"
    )


def test_records_older_than_the_limit_are_refused() -> None:
    assert refusal("2019-05-01T10:00:00Z") == (
        "completed_at '2019-05-01T10:00:00Z' is 2773 days old; transactions older than 400 days "
        "are not accepted (SURVEY_MAX_RECORD_AGE_DAYS); is the date right?"
    )
    assert read("2026-11-01T10:00:00Z", max_age=timedelta(days=40))
    assert "older than 30 days" in refusal("2026-11-01T10:00:00Z", max_age=timedelta(days=30))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-12-04T12:30:00", "must include a UTC offset (e.g. +03:30 or Z)"),
        ("yesterday", "must be an ISO 8601 time with offset such as"),
        ("9999-12-31T23:59:59-12:00", "is out of range"),
        ("x" * 500, "got '" + "x" * 40 + "'"),
    ],
)
def test_unreadable_times_say_what_is_expected(text: str, says: str) -> None:
    assert says in refusal(text)
