"""`survey transactions import` and `survey frames` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from survey.cli import main
from survey.config import Settings
from survey.context import AppContext
from tests.conftest import TEST_SECRET
from tests.survey.builders import add_agency, add_plan


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, migrated_settings: Settings, context: AppContext
) -> AppContext:
    monkeypatch.setenv("SURVEY_DATABASE_URL", migrated_settings.database_url)
    monkeypatch.setenv("SURVEY_SECRET_KEY", TEST_SECRET.hex())
    monkeypatch.setenv("SURVEY_VAR_DIR", str(migrated_settings.var_dir))
    # The test clock's time: the rows of March 2026 must not age past SURVEY_MAX_RECORD_AGE_DAYS.
    monkeypatch.setenv("SURVEY_CLOCK_START", "2026-03-10T09:30:00+00:00")
    add_agency(context, "TAX", ("TAX-01", "TAX-02"))
    add_plan(context)
    return context


CSV = """external_id,service,channel,completed_at,phone,language,province,office
a-1,TAX-01,in_person,2026-03-09T10:00:00+03:30,0912 111 2222,fa,tehran,Central
a-2,TAX-02,online,2026-03-09T11:00:00+03:30,+98 935 111 2222,,,
a-3,TAX-02,online,2026-03-09T11:00:00+03:30,12,,,
a-4,TAX-02,carrier pigeon,2026-03-09,۰۹۱۲۳۳۳۴۴۴۴,,,
a-1,TAX-01,in_person,2026-03-09T10:00:00+03:30,0912 111 2222,fa,tehran,Central
"""


def test_import_reports_bad_rows_and_a_summary(
    environment: AppContext, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "march.csv"
    path.write_text("\ufeff" + CSV, encoding="utf-8")
    assert main(["transactions", "import", str(path), "--agency", "TAX", "--batch-size", "2"]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "row 4: phone '12' is not a mobile number (it has 2 digits; expected e.g. 0912 345 6789)",
        "row 5: channel must be one of in_person, online, phone, kiosk; got 'carrier pigeon'",
        "row 5: completed_at must include a UTC offset (e.g. +03:30 or Z); got '2026-03-09'",
    ]
    assert out.strip() == "march.csv: 5 rows, 2 accepted, 1 duplicates, 2 rejected"
    assert "2222" not in out + err
    with environment.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM service_transaction")).scalar() == 2
        audit = connection.execute(
            sa.text("SELECT action, entity_id FROM audit_log WHERE action = 'transactions.import'")
        ).one()
    assert tuple(audit) == ("transactions.import", "TAX")

    # A clean file exits 0; the frame counts then show what was reported.
    clean = tmp_path / "clean.csv"
    clean.write_text("".join(CSV.splitlines(keepends=True)[:3]), encoding="utf-8")
    assert main(["transactions", "import", str(clean), "--agency", "TAX"]) == 0
    assert "0 accepted, 2 duplicates, 0 rejected" in capsys.readouterr().out
    assert main(["frames", "--plan", "1", "--from", "2026-03-01", "--to", "2026-03-31"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "plan",
        "stratum",
        "reported",
        "duplicates",
        "eligible",
        "ineligible",
        "sampled",
    ]
    assert table[1].split()[:4] == ["1", "agency=TAX|service=TAX-01|channel=in_person", "1", "2"]


def test_a_bad_header_or_agency_is_a_clear_error(
    environment: AppContext, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,service,channel,completed_at,phone\n", encoding="utf-8")
    assert main(["transactions", "import", str(path), "--agency", "TAX"]) == 2
    err = capsys.readouterr().err
    assert "missing column 'external_id'" in err and "unknown column 'id'" in err
    good = tmp_path / "good.csv"
    good.write_text(CSV, encoding="utf-8")
    assert main(["transactions", "import", str(good), "--agency", "NOPE"]) == 2
    assert "agency 'NOPE' is not registered" in capsys.readouterr().err
    assert main(["transactions", "import", str(tmp_path / "none.csv"), "--agency", "TAX"]) == 2
    assert "cannot read" in capsys.readouterr().err
