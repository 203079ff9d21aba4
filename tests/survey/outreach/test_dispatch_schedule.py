"""Quiet hours in Tehran time and retry back-off (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from survey.outreach.schedule import QuietHours, RetryPolicy, next_allowed

NIGHT = ["21:00", "08:00"]


def tehran(day: int, hour: int, minute: int = 0) -> datetime:
    """A Tehran wall-clock time (UTC+03:30, no DST since 2022) as aware UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC) - timedelta(hours=3, minutes=30)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (tehran(10, 13, 0), tehran(10, 13, 0)),  # daytime: at once
        (tehran(10, 20, 59), tehran(10, 20, 59)),
        (tehran(10, 21, 0), tehran(11, 8, 0)),  # the window starts at 21:00
        (tehran(10, 22, 30), tehran(11, 8, 0)),
        (tehran(11, 0, 15), tehran(11, 8, 0)),  # after midnight: the same morning
        (tehran(11, 7, 59), tehran(11, 8, 0)),
        (tehran(11, 8, 0), tehran(11, 8, 0)),  # the window ends at 08:00
    ],
)
def test_quiet_hours_wrap_midnight(moment: datetime, expected: datetime) -> None:
    assert next_allowed(moment, NIGHT) == expected


def test_a_window_within_one_day() -> None:
    lunch = ["13:00", "14:00"]
    assert next_allowed(tehran(10, 13, 30), lunch) == tehran(10, 14, 0)
    assert next_allowed(tehran(10, 14, 0), lunch) == tehran(10, 14, 0)
    assert next_allowed(tehran(10, 12, 59), lunch) == tehran(10, 12, 59)


def test_null_means_no_quiet_hours() -> None:
    assert next_allowed(tehran(10, 23, 0), None) == tehran(10, 23, 0)
    assert QuietHours.parse(None) is None


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (["21:00"], r"\[start, end\]"),
        (["9pm", "08:00"], "HH:MM; got '9pm'"),
        (["25:00", "08:00"], "HH:MM; got '25:00'"),
        (["08:00", "08:00"], "use null for none"),
    ],
)
def test_bad_windows_are_named(window: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        QuietHours.parse(window)


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base=timedelta(minutes=1), cap=timedelta(minutes=10))
    delays = [policy.delay(n) for n in range(1, 7)]
    assert delays == [timedelta(minutes=m) for m in (1, 2, 4, 8, 10, 10)]
