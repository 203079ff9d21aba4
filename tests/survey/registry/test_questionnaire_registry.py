"""Registering questionnaires from files: new versions added, unchanged files no-ops, used
versions immutable."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from questionnaires.loading import library_path
from survey.config import Settings
from survey.context import AppContext
from survey.errors import Conflict
from survey.kernel.db import transaction
from survey.kernel.principal import CLI_PRINCIPAL
from survey.models import AuditLog, QuestionnaireVersion
from survey.registry import questionnaires as questionnaire_registry
from tests.survey.admin_builders import run, staff_token, use_test_database, write

SMS_SHORT = library_path() / "sms-short.yaml"


def load(context: AppContext, *paths: Path) -> list[tuple[str, str | None, tuple[str, ...]]]:
    with transaction(context.sessions) as session:
        results = questionnaire_registry.load_files(session, CLI_PRINCIPAL, paths)
    return [(r.status, r.qid, r.problems) for r in results]


def changed(text: str) -> str:
    return text.replace("Hello.", "Good day.")


def test_load_the_library_folder_then_again_is_a_no_op(context: AppContext) -> None:
    first = load(context, library_path())
    assert sorted((status, qid) for status, qid, _ in first) == [
        ("added", "core-transaction"),
        ("added", "service-desk"),
        ("added", "sms-short"),
    ]
    assert [status for status, _, _ in load(context, library_path())] == ["unchanged"] * 3
    with context.sessions() as session:
        rows = session.scalars(sa.select(QuestionnaireVersion)).all()
        actions = session.scalars(sa.select(AuditLog.action)).all()
    assert len(rows) == 3 and actions.count("questionnaire.add") == 3
    sms = next(r for r in rows if r.qid == "sms-short")
    assert sms.version == 1 and sms.title_en == "SMS satisfaction survey" and sms.content["sms"]


def test_an_unused_version_may_still_change(context: AppContext, tmp_path: Path) -> None:
    load(context, SMS_SHORT)
    edited = write(tmp_path / "sms-short.yaml", changed(SMS_SHORT.read_text(encoding="utf-8")))
    assert load(context, edited)[0][0] == "replaced"
    with context.sessions() as session:
        row = session.scalars(sa.select(QuestionnaireVersion)).one()
    assert "Good day." in row.content["intro"]["en"]


def test_a_used_version_is_immutable(context: AppContext, tmp_path: Path) -> None:
    load(context, SMS_SHORT)
    with transaction(context.sessions) as session:
        row = session.scalars(sa.select(QuestionnaireVersion)).one()
        row.first_used_at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert load(context, SMS_SHORT)[0][0] == "unchanged"
    edited = write(tmp_path / "sms-short.yaml", changed(SMS_SHORT.read_text(encoding="utf-8")))
    status, qid, problems = load(context, edited)[0]
    assert (status, qid) == ("error", "sms-short")
    assert problems == (
        f"{edited}: questionnaire 'sms-short' version 1 has been used for invitations since "
        "2026-03-01 and cannot change; save the changed questionnaire as version 2",
    )
    with context.sessions() as session:
        row = session.scalars(sa.select(QuestionnaireVersion)).one()
    assert "Good day." not in row.content["intro"]["en"]
    bumped = write(
        tmp_path / "sms-short-2.yaml",
        changed(SMS_SHORT.read_text(encoding="utf-8")).replace("version: 1", "version: 2"),
    )
    assert load(context, bumped)[0][0] == "added"
    with context.sessions() as session:
        with pytest.raises(Conflict):
            from questionnaires.loading import load as load_questionnaire

            questionnaire_registry.register(session, CLI_PRINCIPAL, load_questionnaire(edited))
        found = questionnaire_registry.find(session, "sms-short")
    assert found is not None and found.version == 2


def test_cli_load_and_list(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    migrated_settings: Settings,
    tmp_path: Path,
) -> None:
    use_test_database(monkeypatch, migrated_settings)
    broken = write(tmp_path / "broken.yaml", "id: Bad Id\nversion: 0\n")
    code, out, _ = run(capsys, "questionnaires", "load", str(SMS_SHORT), str(broken))
    assert code == 1
    assert f"{SMS_SHORT}: sms-short version 1 added" in out
    assert f"error: {broken}" in out and "1 loaded, 1 failed" in out
    code, _, err = run(capsys, "questionnaires", "load", str(tmp_path / "nothing-here"))
    assert code == 2 and "no such file or folder" in err
    code, out, _ = run(capsys, "questionnaires", "list")
    assert code == 0 and "sms-short" in out and "1 questionnaire versions" in out


def test_api_lists_registered_questionnaires(client: TestClient, context: AppContext) -> None:
    load(context, SMS_SHORT)
    response = client.get("/api/v1/questionnaires", headers=staff_token(context, "viewer"))
    assert response.status_code == 200
    [listed] = response.json()["questionnaires"]
    assert (listed["qid"], listed["version"], listed["sms_items"]) == ("sms-short", 1, 3)
    assert client.get("/api/v1/questionnaires").status_code == 401
