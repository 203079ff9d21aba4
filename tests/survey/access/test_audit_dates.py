"""The audit log's `since` and `until` read days as every day a person types is read: Tehran
days in either calendar, in any digits; a Solar Hijri date is never read as a Gregorian one."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import jdatetime
from litestar.testing import TestClient

from survey.context import AppContext
from survey.kernel.locale import persian_digits
from survey.kernel.periods import TEHRAN
from tests.survey.access_builders import add_staff


def test_since_and_until_take_solar_hijri_days_in_persian_digits(
    client: TestClient, context: AppContext
) -> None:
    admin = add_staff(context, "sara", "admin")
    client.post("/api/v1/users", json={"username": "mina", "role": "viewer"}, headers=admin)

    def entries(**params: str) -> list[dict[str, Any]]:
        response = client.get("/api/v1/audit", params={"limit": "100", **params}, headers=admin)
        assert response.status_code == 200, response.text
        return list(response.json()["entries"])

    everything = entries()
    added = next(e for e in everything if e["action"] == "user.add" and e["entity_id"] == "mina")
    tehran_day = datetime.fromisoformat(added["at"]).astimezone(TEHRAN).date()
    solar = jdatetime.date.fromgregorian(date=tehran_day)
    today = persian_digits(f"{solar.year:04d}/{solar.month:02d}/{solar.day:02d}")
    tomorrow_solar = jdatetime.date.fromgregorian(date=tehran_day + timedelta(days=1))
    tomorrow = f"{tomorrow_solar.year:04d}-{tomorrow_solar.month:02d}-{tomorrow_solar.day:02d}"

    assert added["id"] in {e["id"] for e in entries(since=today)}
    assert added["id"] in {e["id"] for e in entries(until=today)}  # a day's `until` includes it
    assert entries(since=tomorrow) == []
    assert added["id"] in {e["id"] for e in entries(since=tehran_day.isoformat())}


def test_a_day_that_cannot_be_read_is_a_422_naming_the_filter(
    client: TestClient, context: AppContext
) -> None:
    admin = add_staff(context, "sara", "admin")
    for params, field, says in (
        ({"since": "1405-12-30"}, "since", "Solar Hijri Esfand 1405 has 29 days"),
        ({"until": "۱۴۰۵-۱۳-۰۱"}, "until", "a month from 01 to 12"),
        ({"since": "1405-08-01T10:00"}, "since", "looks like a Solar Hijri date"),
    ):
        response = client.get("/api/v1/audit", params=params, headers=admin)
        assert response.status_code == 422, response.text
        [problem] = response.json()["problems"]
        assert problem["field"] == field and says in problem["message"], problem
