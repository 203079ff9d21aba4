"""A proposal plans from days that have happened: by default the last complete months before
today and the planned period; a history running into days to come is cut at yesterday; days
before the first report and agencies that joined late do not shrink the volumes; a short or
partial history is said so; and the expected invitations, completes and cost come with a
prediction interval from how the past months varied."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from analysis.planning import Target
from survey.config import Settings
from survey.context import AppContext
from survey.kernel.periods import Period, parse_period
from survey.kernel.principal import Principal
from survey.results.plan_history import (
    History,
    calendar_months,
    default_history,
    total_spread,
)
from survey.results.proposals import Assumptions, ProposalRequest, propose_plan, run_proposal
from tests.survey.admin_builders import use_test_database
from tests.survey.answer_builders import AnswerWorld
from tests.survey.results.test_plan_proposals import _plans_parser

QUARTER = parse_period("1405-Q1")  # 2026-03-21 .. 2026-06-21
TODAY = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)  # 1404-12-19, inside Esfand
AZAR = parse_period("1404-09")  # 2025-11-22 .. 2025-12-22
TARGET = Target(by=("agency",), margin=5.0)
PER_DAY = {"1404-09": 90, "1404-10": 100, "1404-11": 110, "1404-12": 100}  # TAX in person


def _world(context: AppContext, *, edu_from: date | None = None) -> AnswerWorld:
    """TAX in person reports every day from 1 Azar 1404 to yesterday (90, 100, 110 and 100 a
    day in Azar, Dey, Bahman and Esfand); EDU online 20 a day from `edu_from` if given."""
    world = AnswerWorld(context)
    day = AZAR.start
    while day < TODAY.date():
        month = next(p for p in PER_DAY if parse_period(p).contains(day))
        world.frame_count(channel="in_person", day=day, eligible=PER_DAY[month])
        if edu_from is not None and day >= edu_from:
            edu = {"agency": "EDU", "service": "EDU-01", "channel": "online"}
            world.frame_count(**edu, day=day, eligible=20)
        day += timedelta(days=1)
    return world


def test_the_default_history_is_the_last_complete_months() -> None:
    inside = default_history(QUARTER, date(2026, 3, 10))  # today in Esfand 1404
    assert inside.start == parse_period("1404-06").start
    assert inside.end == parse_period("1404-12").start  # Esfand is not over: not read
    assert inside.label == "1404-06..1404-11"
    # a period planned in the past reads the months before it, not before today
    past = default_history(parse_period("1404-10"), date(2026, 3, 10), months=2)
    assert (past.start, past.end) == (parse_period("1404-08").start, parse_period("1404-10").start)
    gregorian = default_history(parse_period("2026-Q2"), date(2026, 3, 10), months=3)
    assert (gregorian.start, gregorian.end) == (date(2025, 12, 1), date(2026, 3, 1))
    months = calendar_months(Period("x", "solar_hijri", date(2025, 12, 1), date(2026, 1, 25)))
    assert [m.label for m in months] == ["1404-09", "1404-10", "1404-11"]
    assert months[0].start == date(2025, 12, 1) and months[-1].end == date(2026, 1, 25)


def test_the_volumes_are_per_day_reported_not_per_day_of_an_empty_history(
    context: AppContext,
    clock,  # type: ignore[no-untyped-def]
) -> None:
    clock.now = TODAY
    _world(context)
    result = propose_plan(context, period=QUARTER, target=TARGET)
    # six months asked (Shahrivar to Bahman), reports only from 1 Azar: the three months read
    assert result.history is not None
    assert (result.history.start, result.history.end) == (AZAR.start, parse_period("1404-12").start)
    kinds = [n.kind for n in result.notes]
    assert kinds == ["partial"]
    eligible = 30 * 90 + 30 * 100 + 30 * 110
    assert result.inputs["history_eligible"].sum() == eligible
    assert result.inputs["volume"].sum() == pytest.approx(eligible / 90 * QUARTER.days)
    # the old default (the 93 days before the quarter) held 11 days to come and 32 before
    # the first report: it planned for about half the traffic; this plans for all of it
    assert result.proposal.strata["volume"].sum() == pytest.approx(100 * QUARTER.days)


def test_a_history_running_into_days_to_come_is_cut_at_yesterday(
    context: AppContext,
    clock,  # type: ignore[no-untyped-def]
) -> None:
    clock.now = TODAY
    _world(context)
    result = propose_plan(context, period=QUARTER, target=TARGET, history=parse_period("1404-Q4"))
    notes = {n.kind: n for n in result.notes}
    assert set(notes) == {"future", "short"}  # Dey, Bahman, 18 days of Esfand: 78 of 93 days
    assert notes["future"].values["days"] == (parse_period("1404-Q4").end - TODAY.date()).days
    assert result.history is not None and result.history.end == TODAY.date()
    read = (TODAY.date() - parse_period("1404-10").start).days
    eligible = 30 * 100 + 30 * 110 + 18 * 100
    assert result.inputs["volume"].sum() == pytest.approx(eligible / read * QUARTER.days)
    assert "Note: the history 1404-Q4 runs 11 days past yesterday" in result.plan_text


def test_an_agency_that_joined_late_counts_from_its_first_report(
    context: AppContext,
    clock,  # type: ignore[no-untyped-def]
) -> None:
    clock.now = TODAY
    joined = parse_period("1404-11").start  # EDU reports from 1 Bahman
    _world(context, edu_from=joined)
    result = propose_plan(context, period=QUARTER, target=Target(by=("agency",), margin=8.0))
    edu = result.inputs[result.inputs["agency"] == "EDU"]
    assert edu["volume"].sum() == pytest.approx(20 * QUARTER.days)  # not a third of it
    late = next(n for n in result.notes if n.kind == "late_agencies")
    assert late.values["agencies"] == {"EDU": joined}


def test_a_short_history_is_said_so(context: AppContext, clock) -> None:  # type: ignore[no-untyped-def]
    clock.now = TODAY
    _world(context)
    result = propose_plan(context, period=QUARTER, target=TARGET, history=parse_period("1404-11"))
    kinds = {n.kind for n in result.notes}
    assert kinds == {"short", "few_periods"}
    assert result.spread is not None and result.spread.intervals == {}
    with pytest.raises(Exception, match="no day before today"):
        propose_plan(context, period=QUARTER, target=TARGET, history=parse_period("1405-01"))


def test_the_totals_interval_comes_from_the_past_months(
    context: AppContext,
    clock,  # type: ignore[no-untyped-def]
) -> None:
    clock.now = TODAY
    _world(context)
    result = propose_plan(
        context, period=QUARTER, target=TARGET, assumptions=Assumptions(cost_per_part=1.5)
    )
    spread = result.spread
    assert spread is not None
    months = spread.months.set_index("month")
    assert list(months.index) == ["1404-09", "1404-10", "1404-11"]
    for month, per_day in (("1404-09", 90), ("1404-10", 100), ("1404-11", 110)):
        assert months.loc[month, "volume"] == pytest.approx(per_day * QUARTER.days)
    rate = float(result.proposal.strata["rate"].iloc[0])
    expected = result.proposal.totals["invitations"]
    assert expected == pytest.approx(rate * 100 * QUARTER.days)
    # three months: expected ± t(2) × SD × sqrt(1 + 1/3); the SD of 90, 100 and 110 a day is 10
    half = stats.t.ppf(0.975, 2) * rate * 10 * QUARTER.days * math.sqrt(1 + 1 / 3)
    low, high = spread.intervals["invitations"]
    assert (low, high) == (pytest.approx(expected - half), pytest.approx(expected + half))
    cost_low, cost_high = spread.intervals["cost"]
    unit = result.proposal.totals["cost"] / expected  # parts per invitation x price
    assert cost_high - cost_low == pytest.approx(2 * half * unit)
    assert "Per period, 95% prediction interval from 3 past months" in result.plan_text


def test_total_spread_uses_each_months_response_and_sms_parts() -> None:
    """A month whose citizens answered twice as often as the rates predict doubles its
    completes; a month whose invitations took 3 SMS parts, not 2, costs half as much again."""
    months = (Period("1405-07", "solar_hijri", date(2026, 9, 23), date(2026, 10, 23)),
              Period("1405-08", "solar_hijri", date(2026, 10, 23), date(2026, 11, 22)))  # fmt: skip
    history = History(Period("h", "solar_hijri", months[0].start, months[1].end), {}, months, ())
    table = pd.DataFrame(
        {
            "month": ["1405-07", "1405-08"],
            "agency": ["TAX", "TAX"],
            "eligible": [3000, 3000],
            "invitations": [100, 100],
            "completes": [20, 40],
        }
    )
    sent = pd.DataFrame({"month": ["1405-07", "1405-08"], "parts": [200, 300], "sent": [100, 100]})
    strata = pd.DataFrame(
        {
            "agency": ["TAX"],
            "rate": [0.1],
            "volume": [9000.0],
            "response_rate": [0.2],
            "parts_per_invitation": [2.0],
            "cost_per_part": [1.0],
            "cost_per_invitation": [0.0],
        }
    )
    spread = total_spread(
        table,
        sent,
        strata,
        history=history,
        group=["agency"],
        planned_days=90,
        expected={"invitations": 900.0, "completes": 180.0, "cost": 1800.0},
        default_rate=0.1,
    ).months.set_index("month")
    assert list(spread["invitations"]) == pytest.approx([900.0, 900.0])
    assert list(spread["completes"]) == pytest.approx([180.0, 360.0])
    assert list(spread["cost"]) == pytest.approx([1800.0, 2700.0])


def test_the_api_record_and_the_cli_carry_the_notes_and_the_interval(
    context: AppContext,
    clock,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    migrated_settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock.now = TODAY
    _world(context)
    statistician = Principal(kind="staff", name="sara", role="statistician")
    records = run_proposal(context, statistician, ProposalRequest(period=QUARTER, target=TARGET))
    assert [n["kind"] for n in records["history_notes"]] == ["partial"]
    assert records["history_notes"][0]["values"]["first"] == AZAR.start.isoformat()
    invitations = records["uncertainty"]["totals"]["invitations"]
    assert invitations["low"] < invitations["expected"] < invitations["high"]
    months = [m["month"] for m in records["uncertainty"]["months"]]
    assert months == ["1404-09", "1404-10", "1404-11"]
    assert records["history"]["first_day"] == AZAR.start.isoformat()

    # the command runs on the machine's clock: it is given its history
    use_test_database(monkeypatch, migrated_settings)
    args = _plans_parser().parse_args(
        ["plans", "propose", "--period", "1405-Q1", "--target-moe", "5", "--history", "1404-Q3",
         "--out", str(tmp_path / "q1.yaml")]
    )  # fmt: skip
    assert args.handler(args) == 0
    captured = capsys.readouterr()
    assert "History read: 1404-Q3, 1404-09-01 (2025-11-22) to 1404-09-30" in captured.out
    assert "No interval for the totals: 1 past month(s): too few for an interval" in captured.out
    assert "note: the history 1404-Q3 has reports only from 1404-09-01" in captured.err
    assert "note: the history read (30 days) is shorter than the planned period" in captured.err
