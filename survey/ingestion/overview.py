"""The public overview: what was reported and sampled, in aggregate, and the plan in force.

Only sums of frame counts and the plan's public settings leave this module: no phone, key,
seed or single transaction. The web page (`survey.ingestion.pages`) renders it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from survey.ingestion.frames import FrameTotals, frame_counts
from survey.models import Agency, Channel
from survey.sampling.plans import plan_in_force

__all__ = ["CountRow", "Overview", "PlanSummary", "overview"]

DAYS_SHOWN = 14


@dataclass(frozen=True, slots=True)
class CountRow:
    """One line of a table: a label in both languages and the summed counters."""

    key: str
    name_fa: str
    name_en: str
    reported: int
    duplicates: int
    eligible: int
    sampled: int

    @property
    def fraction(self) -> float | None:
        """Sampled share of the eligible transactions (None when nothing was eligible)."""
        return self.sampled / self.eligible if self.eligible else None


@dataclass(frozen=True, slots=True)
class PlanSummary:
    version: int
    name: str
    starts: date
    strata: list[str]
    default_rate: float
    rules: list[dict[str, object]]
    contact_rule_days: int
    reminder_after_hours: float | None
    expires_after_days: float
    questionnaires: list[dict[str, object]]


@dataclass(frozen=True, slots=True)
class Overview:
    today: date
    plan: PlanSummary | None
    total: CountRow
    agencies: list[CountRow]
    channels: list[CountRow]
    days: list[CountRow]
    provinces: int  # provinces with at least one reported transaction
    first_day: date | None


def overview(session: Session, *, today: date, days: int = DAYS_SHOWN) -> Overview:
    """Totals by agency and by channel since the first report, and by day for `days` days."""
    names = {
        code: (fa, en)
        for code, fa, en in session.execute(
            sa.select(Agency.code, Agency.name_fa, Agency.name_en)
        ).all()
    }
    channel_names = {
        code: (fa, en)
        for code, fa, en in session.execute(
            sa.select(Channel.code, Channel.name_fa, Channel.name_en)
        ).all()
    }
    by_agency = frame_counts(session, by=["agency"])
    by_channel = frame_counts(session, by=["channel"])
    start = today - timedelta(days=days - 1)
    by_day = {
        str(t.group["day"]): t for t in frame_counts(session, start=start, end=today, by=["day"])
    }
    all_days = frame_counts(session, by=["day"])
    provinces = sum(
        1 for t in frame_counts(session, by=["province"]) if t.group["province"] and t.reported
    )
    agencies = [_row(t, "agency", names) for t in by_agency]
    reported_codes = {row.key for row in agencies}
    agencies += [
        CountRow(code, fa, en, 0, 0, 0, 0)
        for code, (fa, en) in sorted(names.items())
        if code not in reported_codes
    ]
    agencies.sort(key=lambda row: (-row.reported, row.key))
    day_rows = []
    for offset in range(days):
        day = today - timedelta(days=offset)
        totals = by_day.get(day.isoformat())
        day_rows.append(
            _row(totals, "day", {}) if totals else CountRow(day.isoformat(), "", "", 0, 0, 0, 0)
        )
    every = by_agency
    total = CountRow(
        "total",
        "",
        "",
        sum(t.reported for t in every),
        sum(t.duplicates for t in every),
        sum(t.eligible for t in every),
        sum(t.sampled for t in every),
    )
    return Overview(
        today=today,
        plan=_plan_summary(session, today),
        total=total,
        agencies=agencies,
        channels=[_row(t, "channel", channel_names) for t in by_channel],
        days=day_rows,
        provinces=provinces,
        first_day=date.fromisoformat(str(all_days[0].group["day"])) if all_days else None,
    )


def _row(totals: FrameTotals, key: str, names: dict[str, tuple[str, str]]) -> CountRow:
    code = str(totals.group[key])
    fa, en = names.get(code, (code, code))
    return CountRow(
        code, fa, en, totals.reported, totals.duplicates, totals.eligible, totals.sampled
    )


def _plan_summary(session: Session, today: date) -> PlanSummary | None:
    row = plan_in_force(session, today)
    if row is None:
        return None
    return PlanSummary(
        version=row.version,
        name=row.name,
        starts=row.starts,
        strata=list(row.strata),
        default_rate=row.default_rate,
        rules=list(row.rates),
        contact_rule_days=row.contact_rule_days,
        reminder_after_hours=row.reminder_after_hours,
        expires_after_days=row.expires_after_days,
        questionnaires=list(row.questionnaires),
    )
