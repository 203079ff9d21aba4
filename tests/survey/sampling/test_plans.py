"""Sampling plan files: the issue's example as it is, every class of error, versions in force."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import col

from questionnaires.loading import library_path
from survey.config import Settings
from survey.context import AppContext
from survey.errors import PlanError
from survey.kernel.db import transaction
from survey.kernel.principal import CLI_PRINCIPAL
from survey.models import AuditLog, QuestionnaireVersion, SamplingPlan
from survey.registry import questionnaires as questionnaire_registry
from survey.sampling import plans
from survey.sampling.draw import PlanSpec, Unit
from tests.survey.admin_builders import EXAMPLE_PLAN, add_tax_agency, run, use_test_database, write


@pytest.fixture
def registry_ready(context: AppContext) -> AppContext:
    add_tax_agency(context)
    return context


def problems_of(context: AppContext, text: str) -> list[str]:
    with context.read_sessions() as session, pytest.raises(PlanError) as caught:
        plans.validate_plan(session, text, file="plan.yaml")
    assert caught.value.message.startswith("plan.yaml: the sampling plan has")
    return [str(p) for p in caught.value.problems]


def _version(row: SamplingPlan | None) -> int | None:
    return None if row is None else row.version


def with_lines(**changes: str) -> str:
    """The example plan with some top-level lines replaced (key -> 'key: value' or '')."""
    lines = []
    for line in EXAMPLE_PLAN.splitlines():
        key = line.split(":", 1)[0]
        if key in changes:
            if changes[key]:
                lines.append(changes[key])
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def test_the_issue_example_is_applied_as_it_is(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    migrated_settings: Settings,
    registry_ready: AppContext,
    tmp_path: Path,
) -> None:
    use_test_database(monkeypatch, migrated_settings)
    plan_file = write(tmp_path / "example.yaml", EXAMPLE_PLAN)
    code, out, err = run(capsys, "plans", "apply", str(plan_file))
    assert (code, err) == (0, "")
    assert "plan 'example' activated as version 1" in out
    with registry_ready.sessions() as session:
        row = session.scalars(sa.select(SamplingPlan)).one()
        registered = session.scalars(sa.select(col(QuestionnaireVersion.qid))).all()
        audit = session.scalars(sa.select(col(AuditLog.action))).all()
    assert row.version == 1 and row.starts == date(2026, 1, 1) and row.source == EXAMPLE_PLAN
    assert row.strata == ["agency", "service", "channel"] and row.default_rate == 0.5
    assert row.rates == [{"service": "TAX-01", "channel": "in_person", "rate": 1.0}]
    assert (row.contact_rule_days, row.quiet_hours) == (90, None)
    assert (row.reminder_after_hours, row.expires_after_days) == (48, 7)
    assert row.questionnaires == [
        {
            "service": "TAX-01",
            "questionnaire": "core-transaction",
            "version": 1,
            "mode": "sms_link",
        },
        {"service": "TAX-02", "questionnaire": "sms-short", "version": 1, "mode": "sms_dialog"},
    ]
    assert len(bytes.fromhex(row.seed)) == 32
    assert sorted(registered) == ["core-transaction", "sms-short"]  # bundled: registered on use
    assert "plan.apply" in audit and "questionnaire.add" in audit
    # Sampling reads the stored plan as it is.
    spec = PlanSpec.from_row(row)
    assert spec.rate(Unit("TAX", "1", "TAX-01", "in_person")) == 1.0
    assert spec.rate(Unit("TAX", "2", "TAX-01", "online")) == 0.5
    code, out, _ = run(capsys, "plans", "validate", str(plan_file))
    assert code == 0 and "valid plan 'example'" in out


def test_services_the_registry_lacks_are_named(context: AppContext) -> None:
    problems = problems_of(context, EXAMPLE_PLAN)
    assert "rates[0].service: no service 'TAX-01' in the registry" in problems
    assert "questionnaires[0].service: no service 'TAX-01' in the registry" in problems
    assert "questionnaires[1].service: no service 'TAX-02' in the registry" in problems


KEY_CASES: list[tuple[dict[str, str], str]] = [
    ({"default_rate": "default_rate: 1.5"}, "default_rate: must be between 0 and 1, got 1.5"),
    (
        {"default_rate": "default_rate: yes"},
        "default_rate: must be a number between 0 and 1, got True",
    ),
    ({"default_rate": ""}, "default_rate: is required"),
    (
        {"strata": "strata: [agency, office]"},
        "strata[1]: must be one of 'agency', 'service', 'channel' or 'province', got 'office'",
    ),
    ({"strata": "strata: [agency, agency]"}, "strata: names agency more than once"),
    (
        {"contact_rule_days": "contact_rule_days: -1"},
        "contact_rule_days: must be at least 0, got -1",
    ),
    (
        {"contact_rule_days": "contact_rule_days: 2.5"},
        "contact_rule_days: must be a whole number, got 2.5",
    ),
    (
        {"quiet_hours": "quiet_hours: [21:00, 08:00]"},
        'quiet_hours[0]: must be a quoted clock time such as "21:00"; YAML reads an unquoted 21:00 as the number 1260',  # noqa: E501
    ),
    (
        {"quiet_hours": 'quiet_hours: ["21:00", "25:00"]'},
        "quiet_hours[1]: must be a clock time \"HH:MM\", got '25:00'",
    ),
    ({"quiet_hours": 'quiet_hours: ["21:00"]'}, "quiet_hours: must be null or two clock times"),
    (
        {"quiet_hours": 'quiet_hours: ["08:00", "08:00"]'},
        "quiet_hours: start and end are the same time; use null for no quiet hours",
    ),
    (
        {"reminder_after_hours": "reminder_after_hours: 200"},
        "reminder_after_hours: must be earlier than the expiry (7 days = 168 hours), got 200",
    ),
    (
        {"reminder_after_hours": "reminder_after_hours: 0"},
        "reminder_after_hours: must be greater than 0, got 0",
    ),
    (
        {"expires_after_days": "expires_after_days: 0"},
        "expires_after_days: must be greater than 0, got 0",
    ),
    ({"starts": "starts: soon"}, "starts: "),
    (
        {"name": "name: example\ncolour: blue"},
        "colour: unknown key 'colour'; expected one of name, starts",
    ),
    (
        {"quiet_hours": "quiet_hours: null\nquiet_hours: null"},
        "quiet_hours: is given twice (line 9); keep one",
    ),
]


def test_each_problem_names_its_key(registry_ready: AppContext) -> None:
    missed = []
    for changes, expected in KEY_CASES:
        problems = problems_of(registry_ready, with_lines(**changes))
        if not any(p.startswith(expected) for p in problems):
            missed.append((expected, problems))
    assert missed == []


RATE_CASES: list[tuple[str, str]] = [
    ("  - [1, 2]", "rates[0]: must be a mapping such as {service: TAX-01, rate: 0.5}, got [1, 2]"),
    (
        "  - {service: TAX-01, rate: 0.2}\n  - {channel: online, rate: 0.3}\n  - {service: TAX-02, rate: 1.5}",  # noqa: E501
        "rates[2].rate: must be between 0 and 1, got 1.5",
    ),
    (
        "  - {province: tehran, rate: 0.2}",
        "rates[0].province: 'province' is not a stratum dimension (strata: agency, service, channel); a rate by it would vary within a stratum",  # noqa: E501
    ),
    (
        "  - {rate: 0.2}",
        "rates[0]: a rate rule must name at least one of agency, service, channel, province",
    ),
    (
        "  - {service: TAX-09, rate: 0.2}",
        "rates[0].service: no service 'TAX-09' in the registry",
    ),
    ("  - {agency: NOPE, rate: 0.2}", "rates[0].agency: no agency 'NOPE' in the registry"),
    (
        "  - {channel: fax, rate: 0.2}",
        "rates[0].channel: must be one of 'in_person', 'online', 'phone' or 'kiosk', got 'fax'",
    ),
    ("  - {service: TAX-01, office: x, rate: 0.2}", "rates[0].office: unknown key 'office'"),
    (
        "  - {service: TAX-01, rate: 0.2}\n  - {channel: online, rate: 0.3}",
        "rates[1]: overlaps rates[0] (both apply to service TAX-01, channel online) with a different rate (0.3 vs 0.2)",  # noqa: E501
    ),
    (
        "  - {service: TAX-01, rate: 0.2}\n  - {service: TAX-01, rate: 0.2}",
        "rates[1]: repeats the strata of rates[0]; keep one rule",
    ),
    (
        "  - {agency: TAX, rate: 0.2}\n  - {service: TAX-01, rate: 0.4}",
        "rates[1]: overlaps rates[0] (both apply to agency TAX, service TAX-01)",
    ),
]


def test_rate_rule_problems(registry_ready: AppContext) -> None:
    missed = []
    for rates, expected in RATE_CASES:
        text = EXAMPLE_PLAN.replace("  - {service: TAX-01, channel: in_person, rate: 1.0}", rates)
        problems = problems_of(registry_ready, text)
        if not any(p.startswith(expected) for p in problems):
            missed.append((expected, problems))
    assert missed == []


def test_rules_that_refine_or_agree_are_accepted(registry_ready: AppContext) -> None:
    text = EXAMPLE_PLAN.replace(
        "  - {service: TAX-01, channel: in_person, rate: 1.0}",
        "  - {service: TAX-01, channel: in_person, rate: 1.0}\n"
        "  - {service: TAX-01, rate: 0.2}\n"
        "  - {agency: TAX, channel: online, rate: 0.2}",
    )
    with registry_ready.read_sessions() as session:
        valid = plans.validate_plan(session, text, file="plan.yaml")
    assert len(valid.plan.rates) == 3


def test_service_of_another_agency_never_applies(registry_ready: AppContext) -> None:
    text = with_lines(strata="strata: [agency, service, channel]").replace(
        "  - {service: TAX-01, channel: in_person, rate: 1.0}",
        "  - {agency: NOPE, service: TAX-01, rate: 1.0}",
    )
    problems = problems_of(registry_ready, text)
    assert "rates[0].agency: no agency 'NOPE' in the registry" in problems


def test_questionnaire_choice_problems(registry_ready: AppContext, tmp_path: Path) -> None:
    no_sms = (library_path() / "sms-short.yaml").read_text(encoding="utf-8")
    no_sms = (
        no_sms.replace("id: sms-short", "id: web-only").split("\nsms:")[0]
        + "\n"
        + ("scoring:" + no_sms.split("\nscoring:")[1])
    )
    with transaction(registry_ready.sessions) as session:
        results = questionnaire_registry.load_files(
            session, CLI_PRINCIPAL, [write(tmp_path / "web-only.yaml", no_sms)]
        )
    assert [r.status for r in results] == ["added"], results
    text = EXAMPLE_PLAN.replace(
        "  - {service: TAX-02, questionnaire: sms-short, mode: sms_dialog}",
        "  - {service: TAX-02, questionnaire: web-only, mode: sms_dialog}\n"
        "  - {service: TAX-02, questionnaire: sms-short, mode: sms_link}\n"
        "  - {service: TAX-01, channel: kiosk, questionnaire: nothing, mode: sms_link}\n"
        "  - {service: TAX-01, channel: online, questionnaire: sms-short, version: 9, mode: sms_link}\n"  # noqa: E501
        "  - {service: TAX-01, channel: phone, questionnaire: sms-short, mode: carrier_pigeon}",
    )
    problems = problems_of(registry_ready, text)
    assert any(
        p.startswith(
            "questionnaires[1].mode: mode sms_dialog needs a questionnaire with an SMS form; 'web-only' version 1 has none"  # noqa: E501
        )
        for p in problems
    ), problems
    assert (
        "questionnaires[2]: service TAX-02 already has a questionnaire in questionnaires[1]"
        in problems
    )
    assert any(
        p.startswith(
            "questionnaires[3].questionnaire: questionnaire 'nothing' is neither registered nor bundled"  # noqa: E501
        )
        for p in problems
    )
    assert any(
        p.startswith(
            "questionnaires[4].questionnaire: questionnaire 'sms-short version 9' is neither"
        )
        for p in problems
    )
    assert (
        "questionnaires[5].mode: must be one of 'sms_link' or 'sms_dialog', got 'carrier_pigeon'"
        in problems
    )


def test_file_level_problems(registry_ready: AppContext) -> None:
    for text, expected in [
        ("name: [unclosed\n", "plan.yaml: not valid YAML (line 2, column 1)"),
        (
            "- just\n- a list\n",
            "plan.yaml: a plan file must be a mapping of keys (name, starts, ...), got list",
        ),
        (
            "",
            "plan.yaml: a plan file must be a mapping of keys (name, starts, ...), got an empty file",  # noqa: E501
        ),
        (
            "name: x\ndefault_rate: !!float half\n",
            "plan.yaml: a value cannot be read: could not convert string to float: 'half'",
        ),
    ]:
        with registry_ready.read_sessions() as session, pytest.raises(PlanError) as caught:
            plans.validate_plan(session, text, file="plan.yaml")
        assert str(caught.value).startswith(expected), str(caught.value)


def test_every_problem_is_listed_at_once_on_the_command_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    migrated_settings: Settings,
    registry_ready: AppContext,
    tmp_path: Path,
) -> None:
    use_test_database(monkeypatch, migrated_settings)
    text = with_lines(default_rate="default_rate: 2", expires_after_days="expires_after_days: -1")
    text = text.replace("rate: 1.0}", "rate: 1.5}")
    plan_file = write(tmp_path / "bad.yaml", text)
    code, out, err = run(capsys, "plans", "apply", str(plan_file))
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"error: {plan_file}: the sampling plan has 3 problems",
        f"{plan_file}: default_rate: must be between 0 and 1, got 2",
        f"{plan_file}: rates[0].rate: must be between 0 and 1, got 1.5",
        f"{plan_file}: expires_after_days: must be greater than 0, got -1",
    ]
    with registry_ready.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(SamplingPlan)) == 0


def test_versions_accumulate_and_the_latest_start_is_in_force(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    migrated_settings: Settings,
    registry_ready: AppContext,
    tmp_path: Path,
) -> None:
    use_test_database(monkeypatch, migrated_settings)
    plan_file = write(tmp_path / "plan.yaml", EXAMPLE_PLAN)
    assert run(capsys, "plans", "apply", str(plan_file))[0] == 0
    assert run(capsys, "plans", "apply", str(plan_file), "--starts", "2026-03-01")[0] == 0
    assert run(capsys, "plans", "apply", str(plan_file), "--starts", "2026-03-01")[0] == 0
    assert run(capsys, "plans", "apply", str(plan_file), "--starts", "2099-01-01")[0] == 0
    with registry_ready.sessions() as session:
        rows = session.scalars(sa.select(SamplingPlan).order_by(col(SamplingPlan.version))).all()
        assert [r.version for r in rows] == [1, 2, 3, 4]
        assert len({r.seed for r in rows}) == 4  # a fresh seed per version
        assert rows[0].starts == date(2026, 1, 1) and rows[0].source == EXAMPLE_PLAN
        in_force = {
            day: _version(plans.plan_in_force(session, day))
            for day in (date(2025, 12, 31), date(2026, 2, 1), date(2026, 3, 1), date(2030, 1, 1))
        }
        assert in_force[date(2025, 12, 31)] is None
        assert in_force[date(2026, 2, 1)] == 1
        assert in_force[date(2026, 3, 1)] == 3  # a tie on starts: the highest version
        assert in_force[date(2030, 1, 1)] == 3
        listed = plans.list_plans(session, today=date(2026, 3, 10))
    assert [(p.version, p.in_force) for p in listed] == [
        (4, False),
        (3, True),
        (2, False),
        (1, False),
    ]
    code, out, _ = run(capsys, "plans", "list")
    assert code == 0 and "4 versions" in out
    code, out, _ = run(capsys, "plans", "show", "1")
    assert (
        code == 0 and out.endswith(EXAMPLE_PLAN) and "core-transaction version 1, sms_link" in out
    )
    code, _, err = run(capsys, "plans", "show", "9")
    assert code == 2 and "no sampling plan version 9 (versions: 1, 2, 3, 4)" in err
