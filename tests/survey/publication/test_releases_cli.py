"""`survey releases create|list|show|publish|correct` on a real database."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from survey.config import Settings
from survey.context import AppContext
from survey.models import AuditLog
from survey.publication.releases import get_release
from tests.survey.admin_builders import run, use_test_database
from tests.survey.release_builders import release_world


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, migrated_settings: Settings) -> None:
    use_test_database(monkeypatch, migrated_settings)


def test_the_release_workflow_from_the_console(
    capsys: pytest.CaptureFixture[str], context: AppContext, tmp_path: Path
) -> None:
    release_world(context)
    code, out, err = run(capsys, "releases", "create", "--period", "1405-01")
    assert code == 0, err
    assert "release 1: period 1405-01 number 1 (draft)" in out
    assert "1405-01-01 (2026-03-21) to 1405-01-31 (2026-04-20)" in out
    assert "responses 100" in out and "survey releases publish 1" in out

    code, out, _ = run(capsys, "releases", "show", "1")
    assert code == 0
    assert "national" in out and "EDU" in out and "TAX" in out and "95% CI" in out
    assert "rank (interval)" in out and " 1 (1-" in out
    code, out, _ = run(capsys, "releases", "show", "1", "--format", "json")
    body = json.loads(out)
    assert body["status"] == "draft" and len(body["estimates"]) > 10

    assert run(capsys, "releases", "publish", "1")[0] == 0
    code, out, err = run(capsys, "releases", "files", "1", "--out", str(tmp_path / "r1"))
    assert code == 0, err
    assert "release 1 (1405-01): wrote 5 files" in out
    estimates = pd.read_csv(tmp_path / "r1" / "release-1-1405-01-estimates.csv")
    with context.read_sessions() as session:
        stored = get_release(session, 1).tables.estimates
    assert len(estimates) == len(stored)
    assert estimates["estimate"].sum() == pytest.approx(stored["estimate"].sum(), rel=1e-15)
    dictionary = json.loads((tmp_path / "r1" / "dictionary.json").read_text(encoding="utf-8"))
    assert [t["table"] for t in dictionary["tables"]] == [
        "estimates",
        "items",
        "small_areas",
        "codes",
    ]
    code, _, err = run(capsys, "releases", "publish", "1")
    assert code == 2 and "release 1 was already published" in err and "Traceback" not in err

    code, out, err = run(capsys, "releases", "correct", "1", "--note", "Recomputed after review.")
    assert code == 0, err
    assert "release 2: period 1405-01 number 2 (draft)" in out
    assert "corrects release 1: Recomputed after review." in out
    assert "Estimates that differ from the corrected release: none." in out

    code, out, _ = run(capsys, "releases", "list")
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["id", "period", "number", "status"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["2", "1405-01", "2", "draft"],
        ["1", "1405-01", "1", "published"],
    ]
    code, out, _ = run(capsys, "releases", "list", "--status", "draft")
    assert len(out.strip().splitlines()) == 2

    with context.read_sessions() as session:
        actors = session.execute(
            sa.select(AuditLog.action, AuditLog.actor).where(AuditLog.entity == "release")
        ).all()
    assert [a for a, _ in actors] == ["release.create", "release.publish", "release.correct"]
    assert all(actor.startswith("cli:") for _, actor in actors)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("releases", "create", "--period", "1405-Q5"), "period: expected"),
        (("releases", "create", "--period", "2026"), "Solar Hijri"),
        (("releases", "create", "--period", "1405-Q2"), "no completed responses"),
        (("releases", "show", "77"), "release 77 does not exist"),
        (("releases", "publish", "77"), "release 77 does not exist"),
        (("releases", "correct", "77", "--note", "x"), "release 77 does not exist"),
    ],
)
def test_console_errors_name_what_is_wrong(
    capsys: pytest.CaptureFixture[str], context: AppContext, argv: tuple[str, ...], message: str
) -> None:
    release_world(context)
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err and out == ""
