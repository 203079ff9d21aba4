"""Sample-design proposals from a real database's history, written as plan files, and simulated."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from analysis.planning import Target
from survey.config import Settings
from survey.context import AppContext
from survey.errors import InvalidInput, NotFound
from survey.kernel.periods import parse_period
from survey.models import SamplingPlan
from survey.results.cli import design_path, inputs_path, register_plan_design
from survey.results.proposals import (
    Assumptions,
    design_inputs,
    propose_plan,
    read_inputs_csv,
    simulate_plan,
)
from survey.sampling import plans
from tests.survey.admin_builders import use_test_database
from tests.survey.answer_builders import AnswerWorld

ANSWERS = {
    "q_overall": 5,
    "q_time": 4,
    "q_respect": 4,
    "q_competence": 3,
    "q_information": 4,
    "q_fairness": 5,
    "q_ease": 2,
    "q_outcome": 2,
    "q_next_steps": 1,
    "q_trust": 4,
    "q_improve": "",
}
QUARTER = parse_period("1405-Q1")  # 2026-03-21 .. 2026-06-21 (93 days)
HISTORY = parse_period("1404-Q4")  # Dey to Esfand 1404, ending 2026-03-20
TAX_IN = {"agency": "TAX", "service": "TAX-01", "channel": "in_person"}
TAX_ON = {"agency": "TAX", "service": "TAX-01", "channel": "online"}
EDU_ON = {"agency": "EDU", "service": "EDU-01", "channel": "online"}


def _history(context: AppContext) -> AnswerWorld:
    """1404-Q4: TAX in person 3000 transactions, 12 invited, 6 answered; TAX online 6000, 12
    invited, 3 answered; EDU online 400, 4 invited, none answered. The plan in force (version
    1) gets a questionnaire so its proposal is a valid plan file."""
    world = AnswerWorld(context)
    day = date(2026, 2, 1)
    world.frame_count(**TAX_IN, province="tehran", day=day, eligible=2000)
    world.frame_count(**TAX_IN, province="fars", day=day + timedelta(days=1), eligible=1000)
    world.frame_count(**TAX_ON, province="tehran", day=day, eligible=6000)
    world.frame_count(**EDU_ON, province="tehran", day=day, eligible=400)
    # a transaction outside the history does not count
    world.frame_count(**EDU_ON, province="tehran", day=date(2026, 3, 25), eligible=999)
    at = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)  # explicit: not the machine's time zone
    for stratum, invited, answered in ((TAX_IN, 12, 6), (TAX_ON, 12, 3), (EDU_ON, 4, 0)):
        for i in range(invited):
            unit = world.invite(**stratum, day=day, created=at)
            if i < answered:
                world.respond(unit, {**ANSWERS, "q_overall": 1 + i % 5, "q_ease": 5 - i % 4})
    with context.sessions() as session, session.begin():
        session.execute(
            sa.update(SamplingPlan).values(
                questionnaires=[
                    {"service": s, "questionnaire": "core-transaction", "version": 1, "mode": m}
                    for s, m in (("TAX-01", "sms_link"), ("EDU-01", "sms_link"))
                ]
            )
        )
    return world


def test_inputs_come_from_the_history_with_their_sources(context: AppContext) -> None:
    _history(context)
    inputs = design_inputs(
        context,
        history=HISTORY,
        planned_days=QUARTER.days,
        strata=("agency", "service", "channel"),
        assumptions=Assumptions(min_invitations=10, min_responses=3, response_rate=0.15),
    ).set_index("stratum")
    assert list(inputs.index) == [
        "agency=EDU|service=EDU-01|channel=online",
        "agency=TAX|service=TAX-01|channel=in_person",
        "agency=TAX|service=TAX-01|channel=online",
    ]
    tax_in = inputs.loc["agency=TAX|service=TAX-01|channel=in_person"]
    assert tax_in["history_eligible"] == 3000
    assert tax_in["volume"] == pytest.approx(3000 * QUARTER.days / HISTORY.days)
    assert (tax_in["history_invitations"], tax_in["history_completes"]) == (12, 6)
    assert tax_in["response_rate"] == pytest.approx(0.5)
    assert tax_in["response_rate_source"] == "stratum"
    assert tax_in["index_source"] == "stratum" and tax_in["history_responses"] == 6
    assert 0 < tax_in["mean"] < 100 and tax_in["sd"] > 0
    edu = inputs.loc["agency=EDU|service=EDU-01|channel=online"]
    assert edu["history_eligible"] == 400  # the 999 of 1405 are not history
    assert edu["response_rate"] == pytest.approx(0.15) and edu["response_rate_source"] == "assumed"
    assert (edu["mean"], edu["sd"], edu["index_source"]) == (70.0, 25.0, "assumed")
    assert set(inputs["province"]) == {""}  # province is not a stratum dimension here


def test_proposal_is_a_valid_plan_file_with_the_summary_as_comments(
    context: AppContext,
) -> None:
    _history(context)
    result = propose_plan(
        context,
        period=QUARTER,
        target=Target(by=("agency",), margin=5.0),
        assumptions=Assumptions(min_invitations=10, min_responses=3, cost_per_part=1.5),
    )
    text = result.plan_text
    assert text.startswith("# Sampling-plan proposal for 1405-Q1: 1405-01-01 (2026-03-21) to")
    assert "# agency     TAX" in text and "publishable" in text
    with context.read_sessions() as session:
        valid = plans.validate_plan(session, text, file="proposal.yaml")
    assert valid.plan.starts == date(2026, 3, 21)
    assert valid.plan.strata == ["agency", "service", "channel"]
    rules = {(r.agency, r.service, r.channel): r.rate for r in valid.plan.rates}
    for row in result.proposal.strata.itertuples():
        written = rules[(row.agency, row.service, row.channel)]
        assert row.rate <= written <= row.rate * 1.001 + 1e-12  # rounded up, 4 digits
    assert valid.plan.contact_rule_days == 90 and len(valid.questionnaires) == 2
    design = yaml.safe_load(result.design_text)
    assert design["period"] == "1405-Q1"
    assert design["proposal"]["target"]["margin"] == 5.0
    assert {s["stratum"] for s in design["sources"]} == set(result.proposal.strata["stratum"])


def test_simulating_a_proposal_and_an_edited_one(context: AppContext) -> None:
    _history(context)
    result = propose_plan(
        context,
        period=QUARTER,
        target=Target(by=("agency",), margin=5.0),
        assumptions=Assumptions(min_invitations=10, min_responses=3),
    )
    checked = simulate_plan(result.plan_text, result.design_text, periods=200, seed=2)
    domains = checked.result.domains
    publishable = domains[domains["publishable"]]
    assert "TAX" in set(publishable["domain"])
    assert (publishable["share_met"] >= 0.9).all()
    # staff quarter TAX's rates: the simulation reads the edited rates, not the proposal's
    plan = yaml.safe_load(result.plan_text)
    for rule in plan["rates"]:
        if rule["agency"] == "TAX":
            rule["rate"] = rule["rate"] / 4
    edited = yaml.safe_dump(plan, sort_keys=False)
    again = simulate_plan(edited, result.design_text, periods=200, seed=2).result.domains
    before = domains.set_index(["dimension", "domain"]).loc[("agency", "TAX")]
    tax = again.set_index(["dimension", "domain"]).loc[("agency", "TAX")]
    # a quarter of the completes: twice the margin, and under the 30-completes minimum
    assert tax["margin"] == pytest.approx(2 * before["margin"], rel=0.02)
    assert before["publishable"] and not tax["publishable"]
    assert tax["share_met"] < before["share_met"]


def test_problems_are_reported_not_raised_as_traces(context: AppContext) -> None:
    with pytest.raises(NotFound, match="no sampling plan"):
        propose_plan(context, period=QUARTER, target=Target(by=("agency",), margin=3.0))
    _history(context)
    with pytest.raises(InvalidInput, match="no transactions in the history"):
        propose_plan(
            context,
            period=QUARTER,
            history=parse_period("1403"),
            target=Target(by=("agency",), margin=3.0),
        )
    with pytest.raises(InvalidInput) as error:
        propose_plan(context, period=QUARTER, strata=("service",), target=Target(margin=3.0))
    assert "add 'agency' to the strata" in str(error.value)
    with pytest.raises(InvalidInput, match="not a design file"):
        simulate_plan("name: x\n", "just: text\n")


def _plans_parser() -> argparse.ArgumentParser:
    """`survey plans ...` with the two commands this module adds (the lead wires them in)."""
    parser = argparse.ArgumentParser(prog="survey")
    commands = parser.add_subparsers(dest="command", required=True)
    actions = commands.add_parser("plans").add_subparsers(dest="plans_command", required=True)
    register_plan_design(actions)
    return parser


def test_cli_propose_writes_the_files_and_simulate_reads_them(
    monkeypatch: pytest.MonkeyPatch,
    migrated_settings: Settings,
    context: AppContext,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_test_database(monkeypatch, migrated_settings)
    _history(context)
    out = tmp_path / "q1.yaml"
    parser = _plans_parser()
    args = parser.parse_args(
        ["plans", "propose", "--period", "1405-Q1", "--target-moe", "5", "--by", "agency",
         "--cost-per-part", "1.2", "--out", str(out)]
    )  # fmt: skip
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    assert "Target: mean by agency: 95% margin of error <= 5 points" in printed
    assert out.exists() and design_path(out) == tmp_path / "q1.design.yaml"
    assert design_path(out).exists()
    args = parser.parse_args(["plans", "simulate", str(out), "--periods", "50", "--seed", "3"])
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    assert "Simulated periods: 50 (seed 3)" in printed and "agency     TAX" in printed
    args = parser.parse_args(["plans", "simulate", str(tmp_path / "missing.yaml")])
    with pytest.raises(InvalidInput, match="no such file"):
        args.handler(args)
    # a forecast: TAX online triples; propose again from the edited inputs table
    table = pd.read_csv(inputs_path(out), keep_default_na=False)
    online = table["stratum"] == "agency=TAX|service=TAX-01|channel=online"
    table.loc[online, "volume"] *= 3
    forecast = tmp_path / "forecast.csv"
    table.to_csv(forecast, index=False)
    again = tmp_path / "q1-forecast.yaml"
    args = parser.parse_args(
        ["plans", "propose", "--period", "1405-Q1", "--target-moe", "5",
         "--inputs", str(forecast), "--out", str(again)]
    )  # fmt: skip
    assert args.handler(args) == 0
    assert "Inputs from a per-stratum table given with the command" in again.read_text()
    first = {r["channel"]: r["rate"] for r in yaml.safe_load(out.read_text())["rates"]}
    second = {r["channel"]: r["rate"] for r in yaml.safe_load(again.read_text())["rates"]}
    assert second["online"] < first["online"]  # more transactions: a lower rate suffices


def test_inputs_csv_problems_name_the_row_and_column() -> None:
    text = "stratum,agency,service,channel,volume,response_rate\na,TAX,TAX-01,online,12x,0.2\n"
    with pytest.raises(InvalidInput) as error:
        read_inputs_csv(text, file="forecast.csv")
    assert "row 2, volume: expected a number, got '12x'" in str(error.value)
    with pytest.raises(InvalidInput, match="expected a column 'response_rate'"):
        read_inputs_csv("stratum,agency,service,channel,volume\n", file="f.csv")
