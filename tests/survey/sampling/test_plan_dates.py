"""A plan's start day in either calendar: the file's `starts`, `survey plans apply --starts`
and `POST /api/v1/plans?starts=` all read Solar Hijri (year below 1700) and Gregorian days, in
Latin, Persian or Arabic-Indic digits, and refuse a day that does not exist."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient
from sqlmodel import col

from survey.config import Settings
from survey.context import AppContext
from survey.models import SamplingPlan
from tests.survey.admin_builders import (
    EXAMPLE_PLAN,
    add_tax_agency,
    run,
    staff_token,
    use_test_database,
    write,
)

YAML = {"Content-Type": "application/yaml"}


def _plan(starts: str) -> str:
    return EXAMPLE_PLAN.replace("starts: 2026-01-01", f"starts: {starts}")


def _stored_starts(context: AppContext) -> list[date]:
    with context.read_sessions() as session:
        return list(
            session.scalars(sa.select(col(SamplingPlan.starts)).order_by(col(SamplingPlan.version)))
        )


@pytest.fixture
def console(
    monkeypatch: pytest.MonkeyPatch, migrated_settings: Settings, context: AppContext
) -> AppContext:
    use_test_database(monkeypatch, migrated_settings)
    add_tax_agency(context)
    return context


@pytest.mark.parametrize(
    ("starts", "day"),
    [
        ("1405-01-01", date(2026, 3, 21)),  # YAML alone would read the Gregorian year 1405
        ("۱۴۰۵/۰۱/۰۱", date(2026, 3, 21)),
        ("١٤٠٥-٠٢-٣١", date(2026, 5, 21)),  # Ordibehesht 31st: no Gregorian 31 February
        ("'1405-02-31'", date(2026, 5, 21)),
        ("2026-03-21", date(2026, 3, 21)),
    ],
)
def test_a_plan_file_starts_on_a_day_in_either_calendar(
    console: AppContext,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    starts: str,
    day: date,
) -> None:
    plan_file = write(tmp_path / "plan.yaml", _plan(starts))
    code, out, err = run(capsys, "plans", "validate", str(plan_file))
    assert (code, err) == (0, "") and f"starting {day}" in out
    code, out, err = run(capsys, "plans", "apply", str(plan_file))
    assert (code, err) == (0, ""), err
    assert _stored_starts(console) == [day]


def test_a_start_that_does_not_exist_is_refused_naming_starts(
    console: AppContext, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plan_file = write(tmp_path / "plan.yaml", _plan("1405-12-30"))
    code, _, err = run(capsys, "plans", "apply", str(plan_file))
    assert code == 2
    assert (
        f"{plan_file}: starts: expected a day that exists (Solar Hijri Esfand 1405 has 29 "
        "days); got '1405-12-30'" in err
    )
    assert _stored_starts(console) == []


def test_the_starts_option_overrides_the_file_in_either_calendar(
    console: AppContext, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plan_file = write(tmp_path / "plan.yaml", EXAMPLE_PLAN)
    code, out, _ = run(capsys, "plans", "apply", str(plan_file), "--starts", "۱۴۰۵-۰۷-۰۱")
    assert code == 0 and "activated as version 1" in out
    assert _stored_starts(console) == [date(2026, 9, 23)]
    code, _, err = run(capsys, "plans", "apply", str(plan_file), "--starts", "1405-07-31")
    assert code == 2
    assert err == (
        "error: --starts: expected a day that exists (Solar Hijri Mehr 1405 has 30 days); "
        "got '1405-07-31'\n"
    )
    assert _stored_starts(console) == [date(2026, 9, 23)]


def test_the_api_reads_starts_in_either_calendar_and_refuses_what_does_not_exist(
    client: TestClient, context: AppContext
) -> None:
    add_tax_agency(context)
    headers = {**staff_token(context, "statistician"), **YAML}
    body = EXAMPLE_PLAN.encode()
    checked = client.post("/api/v1/plans/validate?starts=۱۴۰۵-۰۱-۰۱", content=body, headers=headers)
    assert checked.status_code == 200 and checked.json()["starts"] == "2026-03-21"
    applied = client.post(
        "/api/v1/plans", params={"starts": "1405-01-01"}, content=body, headers=headers
    )
    assert applied.status_code == 201, applied.text
    assert applied.json()["starts"] == "2026-03-21" and applied.json()["in_force"] is False
    for path in ("/api/v1/plans/validate", "/api/v1/plans"):
        refused = client.post(path, params={"starts": "1405-12-30"}, content=body, headers=headers)
        assert refused.status_code == 422, refused.text
        [problem] = refused.json()["problems"]
        assert problem["field"] == "starts"
        assert problem["message"] == (
            "expected a day that exists (Solar Hijri Esfand 1405 has 29 days); got '1405-12-30'"
        )
    in_file = client.post("/api/v1/plans", content=_plan("۱۴۰۵-۱۲-۳۰").encode(), headers=headers)
    assert in_file.status_code == 422
    assert in_file.json()["problems"][0]["field"] == "starts"
    assert _stored_starts(context) == [date(2026, 3, 21)]
