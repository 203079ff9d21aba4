"""Shared set-up for the administration tests: the CLI on the test's database, staff tokens,
a small registry created through the registry service itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from survey.access import users
from survey.cli import main
from survey.config import Settings
from survey.context import AppContext
from survey.kernel.db import transaction
from survey.kernel.principal import CLI_PRINCIPAL
from survey.registry import agencies as registry
from tests.conftest import TEST_SECRET

EXAMPLE_PLAN = """\
name: example
starts: 2026-01-01
strata: [agency, service, channel]
default_rate: 0.5
rates:
  - {service: TAX-01, channel: in_person, rate: 1.0}
contact_rule_days: 90
quiet_hours: null
reminder_after_hours: 48
expires_after_days: 7
questionnaires:
  - {service: TAX-01, questionnaire: core-transaction, mode: sms_link}
  - {service: TAX-02, questionnaire: sms-short, mode: sms_dialog}
"""


def use_test_database(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Point `survey ...` commands (which read the environment) at the test's database."""
    monkeypatch.setenv("SURVEY_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SURVEY_SECRET_KEY", TEST_SECRET.hex())
    monkeypatch.setenv("SURVEY_VAR_DIR", str(settings.var_dir))
    monkeypatch.delenv("SURVEY_ENV", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run one `survey` command; returns (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def add_tax_agency(context: AppContext) -> str:
    """Agency TAX with services TAX-01 and TAX-02; returns its ingestion key."""
    with transaction(context.sessions) as session:
        _, issued = registry.add_agency(
            session,
            CLI_PRINCIPAL,
            code="TAX",
            name_fa="سازمان امور مالیاتی کشور",
            name_en="Iranian National Tax Administration",
            province="tehran",
        )
        for code, fa, en in (
            ("TAX-01", "ثبت اظهارنامه مالیاتی", "Filing a tax return"),
            ("TAX-02", "صدور گواهی مالیاتی", "Tax clearance certificate"),
        ):
            registry.add_service(
                session, CLI_PRINCIPAL, agency="TAX", code=code, name_fa=fa, name_en=en
            )
    return issued.key


def staff_token(
    context: AppContext, role: str, *, username: str | None = None, agency: str | None = None
) -> dict[str, str]:
    """Authorization headers of a new staff user with `role`."""
    with transaction(context.sessions) as session:
        _, issued = users.add_user(
            session, CLI_PRINCIPAL, username=username or f"{role}-user", role=role, agency=agency
        )
    return {"Authorization": f"Bearer {issued.key}"}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
