"""The demo's publication step: a release per month with responses, corrections on a rerun."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from survey.config import Settings
from survey.context import AppContext
from survey.demo.releases import months_with_responses, publish_demo_releases
from survey.kernel.periods import parse_period, tehran_day
from survey.kernel.principal import CLI_PRINCIPAL
from survey.publication.releases import latest_published, published_releases
from tests.conftest import FixedClock
from tests.survey.admin_builders import run, use_test_database
from tests.survey.answer_builders import AnswerWorld
from tests.survey.release_builders import FARVARDIN_DAY, answered_period, release_world


def test_every_finished_month_with_responses_is_published_then_corrected_on_a_rerun(
    context: AppContext, clock: FixedClock
) -> None:
    assert publish_demo_releases(context, CLI_PRINCIPAL, run=0).lines() == [
        "no completed responses yet: no release published"
    ]
    release_world(context)
    clock.now = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)  # 1405-02-11: both months are over
    assert months_with_responses(context) == {"1404-12": 100, "1405-01": 100}
    first = publish_demo_releases(context, CLI_PRINCIPAL, run=1)
    assert [(r.period, r.number, r.status) for r in first.published] == [
        ("1404-12", 1, "published"),
        ("1405-01", 1, "published"),
    ]
    assert first.skipped == {}
    assert first.published[1].previous_period == "1404-12"
    assert "release 2: 1405-01 number 1 published (100 responses)" in first.lines()

    again = publish_demo_releases(context, CLI_PRINCIPAL, run=2)
    assert [(r.period, r.number, r.supersedes_id) for r in again.published] == [
        ("1404-12", 2, first.published[0].id),
        ("1405-01", 2, first.published[1].id),
    ]
    assert again.published[1].change_note.startswith("Demo run 2 added")
    with context.read_sessions() as session:
        latest = latest_published(session)
    assert latest is not None and latest.id == again.published[1].id


def test_the_month_in_progress_waits_while_a_finished_month_has_responses(
    context: AppContext, clock: FixedClock
) -> None:
    release_world(context)
    clock.now = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)  # 1405-01-12: Farvardin is not over
    report = publish_demo_releases(context, CLI_PRINCIPAL, run=1)
    assert [(r.period, r.complete) for r in report.published] == [("1404-12", True)]
    assert report.skipped == {"1405-01": "the month is not over yet"}
    assert "release for 1405-01 not published: the month is not over yet" in report.lines()


def test_an_interim_month_is_published_when_no_finished_month_has_responses(
    context: AppContext, clock: FixedClock
) -> None:
    world = AnswerWorld(context)
    answered_period(world, FARVARDIN_DAY, seed=8)
    clock.now = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    report = publish_demo_releases(context, CLI_PRINCIPAL, run=1)
    assert [(r.period, r.complete) for r in report.published] == [("1405-01", False)]
    assert report.skipped == {}


def test_a_month_the_analysis_cannot_use_is_skipped_with_the_reason(context: AppContext) -> None:
    world = AnswerWorld(context)
    # A response whose stratum has no frame counts: the export refuses to guess its weight.
    world.respond(world.invite(), {"q_overall": 4})
    report = publish_demo_releases(context, CLI_PRINCIPAL, run=0)
    assert report.published == []
    assert list(report.skipped) == ["1404-12"]
    assert "frame counts" in report.skipped["1404-12"]


def test_the_demo_publishes_what_its_citizens_answered(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    migrated_settings: Settings,
    context: AppContext,
) -> None:
    use_test_database(monkeypatch, migrated_settings)
    monkeypatch.delenv("SURVEY_SMS_GATEWAY", raising=False)
    code, out, err = run(capsys, "demo", "--no-serve", "--transactions", "3000")
    assert code == 0, err
    months = months_with_responses(context)
    with context.read_sessions() as session:
        published = published_releases(session)
        latest = latest_published(session)
    today = tehran_day(datetime.now(UTC))  # the demo command runs on the real clock
    finished = {m: n for m, n in months.items() if parse_period(m).end <= today} or months
    assert sorted(r.period for r in published) == sorted(finished), out
    assert latest is not None and latest.period == max(finished)
    assert sum(r.response_count for r in published) == sum(finished.values())
    for release in published:
        line = f"release {release.id}: {release.period} number 1 published"
        assert line in out
        assert release.created_by == release.published_by and release.created_by.startswith("cli:")
