"""Dates at every ingestion entry point: `completed_at` is ISO 8601 Gregorian and plausible
(a Solar Hijri, ancient, future or too old one rejects its record only), and the days people
give (`survey frames --from/--to`, `?from=&to=`) are read in either calendar, in any digits.

The test clock stands at 2026-03-10 13:00 in Tehran, which is 1404-12-19; Esfand 1404 runs from
2026-02-20 to 2026-03-20."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from survey.app import create_app
from survey.cli import main
from survey.config import DEFAULT_MAX_RECORD_AGE_DAYS, Settings
from survey.context import AppContext
from survey.errors import ConfigurationError
from tests.conftest import TEST_SECRET, FixedClock
from tests.survey.builders import (
    AgencyFixture,
    add_agency,
    add_plan,
    add_staff,
    ingestion_totals,
    transaction_record,
)

URL = "/api/v1/transactions"
ESFAND_1404 = {"from": "2026-02-20", "to": "2026-03-20"}


@pytest.fixture
def tax(context: AppContext) -> AgencyFixture:
    agency = add_agency(context, "TAX", ("TAX-01", "TAX-02"))
    add_plan(context)
    return agency


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _problems(body: dict, index: int) -> list[tuple[str, str]]:
    return [(p["field"], p["message"]) for p in body["records"][index]["problems"]]


def test_a_batch_keeps_gregorian_times_and_rejects_each_implausible_one(
    client: TestClient, tax: AgencyFixture, context: AppContext
) -> None:
    times = [
        "2026-03-10T11:15:00+03:30",  # Gregorian: accepted
        "1404-12-19T11:15:00+03:30",  # the same moment in Solar Hijri
        "۱۴۰۴-۱۲-۱۹T۱۱:۱۵:۰۰+۰۳:۳۰",  # and so in Persian digits
        "۲۰۲۶-۰۳-۰۹T۱۰:۰۰:۰۰+۰۳:۳۰",  # Gregorian in Persian digits: accepted
        "2019-05-01T10:00:00+04:30",  # 2505 days ago
        "1404-12-30T10:00:00+03:30",  # Esfand 1404 has 29 days
        "2026-03-10T13:30:00+03:30",  # 30 minutes ahead of the service's clock
    ]
    batch = [transaction_record(n, completed_at=when) for n, when in enumerate(times)]
    response = client.post(URL, json=batch, headers=_auth(tax.key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["status"] for r in body["records"]] == [
        "accepted", "rejected", "rejected", "accepted", "rejected", "rejected", "rejected",
    ]  # fmt: skip
    meant = "send ISO 8601 Gregorian (2026-03-10T11:15:00+03:30)"
    assert _problems(body, 1) == [
        (
            "completed_at",
            f"completed_at '1404-12-19T11:15:00+03:30' looks like a Solar Hijri date; {meant}",
        )
    ]
    assert _problems(body, 2) == [
        (
            "completed_at",
            f"completed_at '۱۴۰۴-۱۲-۱۹T۱۱:۱۵:۰۰+۰۳:۳۰' looks like a Solar Hijri date; {meant}",
        )
    ]
    assert "is 2505 days old; transactions older than 400 days" in _problems(body, 4)[0][1]
    assert "1404-12-30 does not exist in that calendar" in _problems(body, 5)[0][1]
    assert "is in the future" in _problems(body, 6)[0][1]
    assert ingestion_totals(context).stored == 2
    # The two accepted ones are counted on their Tehran days, 2026-03-09 and 2026-03-10.
    staff = _auth(add_staff(context, "sara", "statistician"))
    counts = client.get("/api/v1/frame-counts", params={"by": "day"}, headers=staff).json()
    assert [(row["day"], row["reported"]) for row in counts["rows"]] == [
        ("2026-03-09", 1),
        ("2026-03-10", 1),
    ]


def test_a_single_solar_hijri_record_is_a_422_that_says_so(
    client: TestClient, tax: AgencyFixture
) -> None:
    record = transaction_record(1, completed_at="1405-09-13T11:00:00+03:30")
    response = client.post(URL, json=record, headers=_auth(tax.key))
    assert response.status_code == 422
    assert response.json()["problems"] == [
        {
            "field": "completed_at",
            "message": "completed_at '1405-09-13T11:00:00+03:30' looks like a Solar Hijri date; "
            "send ISO 8601 Gregorian (2026-12-04T11:00:00+03:30)",
        }
    ]


@pytest.fixture
def five_day_client(
    migrated_settings: Settings, clock: FixedClock, tax: AgencyFixture
) -> Iterator[TestClient]:
    """The service with SURVEY_MAX_RECORD_AGE_DAYS=5 (on the same database)."""
    settings = migrated_settings.with_overrides(max_record_age_days=5)
    context = AppContext.build(settings, clock=clock)
    try:
        with TestClient(create_app(settings, context=context)) as client:
            yield client
    finally:
        context.close()


def test_the_age_limit_is_a_setting(
    five_day_client: TestClient, tax: AgencyFixture, context: AppContext
) -> None:
    batch = [
        transaction_record(1, completed_at="2026-03-06T10:00:00+03:30"),  # 4 days ago
        transaction_record(2, completed_at="2026-03-01T10:00:00+03:30"),  # 9 days ago
    ]
    body = five_day_client.post(URL, json=batch, headers=_auth(tax.key)).json()
    assert [r["status"] for r in body["records"]] == ["accepted", "rejected"]
    assert "is 9 days old; transactions older than 5 days" in _problems(body, 1)[0][1]
    assert ingestion_totals(context).stored == 1


def test_the_age_limit_setting_is_read_and_checked(tmp_path: Path) -> None:
    env = {"SURVEY_VAR_DIR": str(tmp_path), "SURVEY_SECRET_KEY": TEST_SECRET.hex()}
    assert Settings.from_env(env).max_record_age_days == DEFAULT_MAX_RECORD_AGE_DAYS == 400
    assert Settings.from_env({**env, "SURVEY_MAX_RECORD_AGE_DAYS": "30"}).max_record_age_days == 30
    for bad in ("0", "a year", "1000000000"):
        with pytest.raises(ConfigurationError, match="SURVEY_MAX_RECORD_AGE_DAYS"):
            Settings.from_env({**env, "SURVEY_MAX_RECORD_AGE_DAYS": bad})


# -- the command line -----------------------------------------------------------------------


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, migrated_settings: Settings, tax: AgencyFixture
) -> AgencyFixture:
    monkeypatch.setenv("SURVEY_DATABASE_URL", migrated_settings.database_url)
    monkeypatch.setenv("SURVEY_SECRET_KEY", TEST_SECRET.hex())
    monkeypatch.setenv("SURVEY_VAR_DIR", str(migrated_settings.var_dir))
    monkeypatch.delenv("SURVEY_MAX_RECORD_AGE_DAYS", raising=False)
    # The commands' clock reads the test clock's time, so the ages below never drift.
    monkeypatch.setenv("SURVEY_CLOCK_START", "2026-03-10T09:30:00+00:00")
    return tax


CSV = """external_id,service,channel,completed_at,phone
a-1,TAX-01,in_person,2026-03-09T10:00:00+03:30,09121112222
a-2,TAX-01,in_person,1404-12-18T10:00:00+03:30,09121112223
a-3,TAX-02,online,۱۴۰۴/۱۲/۱۸ ۱۰:۰۰,09121112224
a-4,TAX-02,online,۲۰۲۶-۰۳-۰۸T۱۸:۰۰:۰۰+۰۳:۳۰,09121112225
a-5,TAX-02,online,2019-03-09T10:00:00+03:30,09121112226
"""


def test_a_csv_import_rejects_solar_hijri_rows_and_keeps_the_rest(
    environment: AgencyFixture,
    context: AppContext,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "esfand.csv"
    path.write_text(CSV, encoding="utf-8")
    assert main(["transactions", "import", str(path), "--agency", "TAX"]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "row 3: completed_at '1404-12-18T10:00:00+03:30' looks like a Solar Hijri date; "
        "send ISO 8601 Gregorian (2026-03-09T10:00:00+03:30)",
        "row 4: completed_at '۱۴۰۴/۱۲/۱۸ ۱۰:۰۰' looks like a Solar Hijri date; "
        "send ISO 8601 Gregorian (2026-03-09T10:00)",
        "row 6: completed_at '2019-03-09T10:00:00+03:30' is 2558 days old; transactions older "
        "than 400 days are not accepted (SURVEY_MAX_RECORD_AGE_DAYS); is the date right?",
    ]
    assert out.strip() == "esfand.csv: 5 rows, 2 accepted, 0 duplicates, 3 rejected"
    assert ingestion_totals(context).stored == 2


def test_frames_reads_solar_hijri_days_in_persian_digits(
    environment: AgencyFixture,
    client: TestClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = [transaction_record(n) for n in range(3)]
    assert client.post(URL, json=batch, headers=_auth(environment.key)).status_code == 200
    gregorian = ["frames", "--by", "day", "--from", "2026-02-20", "--to", "2026-03-20"]
    assert main(gregorian) == 0
    expected = capsys.readouterr().out
    assert expected.splitlines()[1].split()[:2] == ["2026-03-10", "3"]
    for solar in (
        ["--from", "۱۴۰۴-۱۲-۰۱", "--to", "۱۴۰۴/۱۲/۲۹"],
        ["--from", "1404-12-01", "--to", "1404-12-29"],
        ["--from", "١٤٠٤-١٢-١٩", "--to", "١٤٠٤-١٢-١٩"],
    ):
        assert main(["frames", "--by", "day", *solar]) == 0
        assert capsys.readouterr().out == expected, solar
    # A range wholly before the transactions is empty, and says so.
    assert main(["frames", "--from", "1404-11-01", "--to", "1404-11-30"]) == 0
    assert "(no frame counts for this selection)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (
            ["--from", "1404-12-30"],
            "error: --from: expected a day that exists (Solar Hijri Esfand 1404 has 29 days); "
            "got '1404-12-30'",
        ),
        (
            ["--to", "۱۴۰۵-۱۳-۰۱"],
            "error: --to: expected a month from 01 to 12; got '۱۴۰۵-۱۳-۰۱'",
        ),
        (
            ["--from", "tomorrow"],
            "error: --from: expected a date such as 2026-03-21 or 1405-01-01 (Solar Hijri); "
            "got 'tomorrow'",
        ),
    ],
)
def test_frames_names_the_option_and_the_day_it_cannot_read(
    environment: AgencyFixture, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    assert main(["frames", *argv]) == 2
    assert says in capsys.readouterr().err


# -- GET /api/v1/frame-counts ---------------------------------------------------------------


def test_frame_counts_read_solar_hijri_days_in_any_digits(
    client: TestClient, tax: AgencyFixture, context: AppContext
) -> None:
    batch = [transaction_record(n) for n in range(4)]
    assert client.post(URL, json=batch, headers=_auth(tax.key)).status_code == 200
    staff = _auth(add_staff(context, "sara", "statistician"))
    gregorian = client.get("/api/v1/frame-counts", params=ESFAND_1404, headers=staff)
    assert gregorian.status_code == 200
    assert sum(int(row["reported"]) for row in gregorian.json()["rows"]) == 4
    for solar in (
        {"from": "1404-12-01", "to": "1404-12-29"},
        {"from": "۱۴۰۴-۱۲-۰۱", "to": "۱۴۰۴/۱۲/۲۹"},
        {"from": "١٤٠٤-١٢-٠١", "to": "١٤٠٤-١٢-٢٩"},
    ):
        response = client.get("/api/v1/frame-counts", params=solar, headers=staff)
        assert response.status_code == 200, response.text
        assert response.json() == gregorian.json(), solar
    assert gregorian.json()["from"] == "2026-02-20" and gregorian.json()["to"] == "2026-03-20"
    farvardin = client.get("/api/v1/frame-counts?from=1405-01-01", headers=staff)
    assert farvardin.status_code == 200 and farvardin.json()["rows"] == []


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ("from=1404-12-30", "from", "Solar Hijri Esfand 1404 has 29 days); got '1404-12-30'"),
        ("to=2026-02-30", "to", "February 2026 has 28 days); got '2026-02-30'"),
        ("from=last%20week", "from", "expected a date such as 2026-03-21 or 1405-01-01"),
    ],
)
def test_frame_counts_refuse_a_day_they_cannot_read_naming_it(
    client: TestClient, context: AppContext, query: str, field: str, says: str
) -> None:
    staff = _auth(add_staff(context, "sara", "statistician"))
    response = client.get(f"/api/v1/frame-counts?{query}", headers=staff)
    assert response.status_code == 422, response.text
    [problem] = response.json()["problems"]
    assert problem["field"] == field and says in problem["message"]
