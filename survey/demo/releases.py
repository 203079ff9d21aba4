"""The demo's publication step: after the simulated citizens have answered, publish a release
for every finished Solar Hijri month that has responses (oldest first, so later months show
changes), through the same workflow staff use. The month still in progress is published (as an
interim release) only when no finished month has responses, so the overview a newcomer sees is
a finished month's. A month already published gets a correction (the demo's new run added
responses), whose note lists what moved."""

from __future__ import annotations

from dataclasses import dataclass

from survey.context import AppContext
from survey.demo import store
from survey.errors import SurveyError
from survey.kernel.periods import parse_period, solar_month_of, tehran_day
from survey.kernel.principal import Principal
from survey.publication.releases import (
    StoredRelease,
    correct_release,
    create_release,
    current_release,
    publish_release,
)

__all__ = ["DemoReleases", "months_with_responses", "publish_demo_releases"]


@dataclass(frozen=True)
class DemoReleases:
    published: list[StoredRelease]
    skipped: dict[str, str]  # period -> why it was not published

    def lines(self) -> list[str]:
        out = [
            f"release {r.id}: {r.period} number {r.number} published "
            f"({r.response_count} responses{'' if r.complete else ', interim'})"
            for r in self.published
        ]
        out += [f"release for {p} not published: {why}" for p, why in self.skipped.items()]
        return out or ["no completed responses yet: no release published"]


def months_with_responses(context: AppContext) -> dict[str, int]:
    """Completed responses per Solar Hijri month of their transaction day, oldest first."""
    months: dict[str, int] = {}
    with context.read_sessions() as session:
        for day, count in store.completed_responses_by_day(session):
            label = solar_month_of(day)
            months[label] = months.get(label, 0) + count
    return dict(sorted(months.items()))


def publish_demo_releases(context: AppContext, principal: Principal, *, run: int) -> DemoReleases:
    """Create (or correct) and publish one release per month with responses."""
    published: list[StoredRelease] = []
    skipped: dict[str, str] = {}
    months = list(months_with_responses(context))
    today = tehran_day(context.clock())
    finished = [m for m in months if parse_period(m).end <= today]
    if finished:
        skipped.update({m: "the month is not over yet" for m in months if m not in finished})
        months = finished
    for period in months:
        with context.read_sessions() as session:
            head = current_release(session, period)
        try:
            if head is None:
                draft = create_release(context, principal, period)
            else:
                note = f"Demo run {run} added transactions and simulated responses."
                draft = correct_release(context, principal, head.id, note)
            published.append(publish_release(context, principal, draft.id))
        except SurveyError as exc:
            skipped[period] = exc.message
        except Exception as exc:  # a failed computation must not end the demo
            skipped[period] = f"the computation failed ({type(exc).__name__}: {exc}); a bug"
    return DemoReleases(published, skipped)
