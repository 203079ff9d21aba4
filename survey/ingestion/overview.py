"""The public overview: what was reported and sampled, in aggregate, and the plan in force.

Only sums of frame counts and the plan's public settings leave this module: no phone, key,
seed or single transaction. `overview_page` formats it for a language (numbers and dates, see
survey.kernel.locale) and the web page (`survey.ingestion.pages`) renders that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from survey.context import AppContext
from survey.ingestion import store
from survey.ingestion.frames import FrameTotals, frame_counts
from survey.kernel.locale import Numbers, language_or_default
from survey.models import Agency, Channel
from survey.registry.names import CodeNames, code_names
from survey.sampling.plans import plan_in_force, today_in

__all__ = ["CountRow", "Overview", "PlanSummary", "overview", "overview_page", "page_model"]

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
    rules: list[dict[str, Any]]
    contact_rule_days: int
    reminder_after_hours: float | None
    expires_after_days: float
    questionnaires: list[dict[str, Any]]


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
    names: CodeNames = field(default_factory=lambda: CodeNames({}))  # of the plan's codes


def overview(session: Session, *, today: date, days: int = DAYS_SHOWN) -> Overview:
    """Totals by agency and by channel since the first report, and by day for `days` days."""
    names = store.names(session, Agency)
    channel_names = store.names(session, Channel)
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
        names=code_names(session),
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


# -- the page ---------------------------------------------------------------------------------


def overview_page(context: AppContext, lang: str) -> dict[str, Any]:
    """The overview page's model for `lang` (Persian unless the platform speaks `lang`): the
    overview as of today in the service's time zone, every value formatted (`page_model`)."""
    language = language_or_default(lang)
    today = today_in(context.clock(), context.settings.timezone)
    with context.read_sessions() as session:
        data = overview(session, today=today)
    return page_model(data, language)


def _formatted(row: CountRow, numbers: Numbers, label: str) -> dict[str, str]:
    return {
        "label": label,
        "reported": numbers.integer(row.reported),
        "duplicates": numbers.integer(row.duplicates),
        "eligible": numbers.integer(row.eligible),
        "sampled": numbers.integer(row.sampled),
        "fraction": numbers.percent(row.fraction),
    }


def _questionnaire_groups(
    choices: list[dict[str, Any]], numbers: Numbers, names: CodeNames
) -> list[dict[str, Any]]:
    """Choices summarised as questionnaire, mode and channel with how many services use each."""
    counts: dict[tuple[str, str, str, str], int] = {}
    for choice in choices:
        key = (
            str(choice["questionnaire"]),
            str(choice.get("version", "")),
            str(choice["mode"]),
            str(choice.get("channel") or ""),
        )
        counts[key] = counts.get(key, 0) + 1
    return [
        {
            "questionnaire": qid,
            "version": version,
            "mode": mode,
            "channel": channel or None,
            "channel_name": names.name("channel", channel, numbers.lang) if channel else None,
            "services": numbers.integer(count),
            "one": count == 1,
        }
        for (qid, version, mode, channel), count in sorted(counts.items())
    ]


def page_model(data: Overview, lang: str) -> dict[str, Any]:
    """What the template shows: every value already formatted for `lang`."""
    numbers = Numbers(lang)

    def name(row: CountRow) -> str:
        return (row.name_fa if lang == "fa" else row.name_en) or row.key

    plan = None
    if data.plan is not None:
        plan = {
            "version": numbers.integer(data.plan.version),
            "name": data.plan.name,
            "starts": numbers.day(data.plan.starts),
            "strata": data.plan.strata,
            "default_rate": numbers.rate(data.plan.default_rate),
            "rules": [
                {
                    "where": [
                        (k, data.names.name(k, str(v), lang))
                        for k, v in rule.items()
                        if k != "rate"
                    ],
                    "rate": numbers.rate(float(rule["rate"])),
                }
                for rule in data.plan.rules
            ],
            "contact_rule_days": numbers.integer(data.plan.contact_rule_days),
            "expires_after_days": numbers.integer(round(data.plan.expires_after_days)),
            "reminder_after_hours": (
                numbers.integer(round(data.plan.reminder_after_hours))
                if data.plan.reminder_after_hours is not None
                else None
            ),
            "questionnaires": [
                {
                    **q,
                    "service_name": data.names.name("service", str(q.get("service")), lang),
                    "channel_name": (
                        data.names.name("channel", str(q["channel"]), lang)
                        if q.get("channel")
                        else None
                    ),
                }
                for q in data.plan.questionnaires
            ],
            "questionnaire_groups": _questionnaire_groups(
                data.plan.questionnaires, numbers, data.names
            ),
        }
    return {
        "lang": lang,
        "dir": "rtl" if lang == "fa" else "ltr",
        "other_lang": "en" if lang == "fa" else "fa",
        "today": numbers.day(data.today),
        "first_day": numbers.day(data.first_day) if data.first_day else None,
        "total": _formatted(data.total, numbers, ""),
        "agency_count": numbers.integer(len(data.agencies)),
        "province_count": numbers.integer(data.provinces),
        "agencies": [_formatted(r, numbers, name(r)) for r in data.agencies],
        "channels": [_formatted(r, numbers, name(r)) for r in data.channels],
        "days": [_formatted(r, numbers, numbers.day(date.fromisoformat(r.key))) for r in data.days],
        "plan": plan,
    }
