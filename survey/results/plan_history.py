"""Which past days a sample-design proposal reads, and how much its totals may vary.

**The days.** By default the last `DEFAULT_MONTHS` complete calendar months (of the planned
period's calendar) before today and before the planned period: never a day to come, never
today (it is not over). A history staff give is cut at yesterday for the same reason, with a
note. Within those days, an agency's transactions count from the first day it reported there:
an agency (or the whole platform) that started reporting mid-history would otherwise look
smaller than it is, since volumes are per day of history scaled to the planned period's days.

**Notes** say what staff should know before trusting the proposal: days cut because they have
not happened (`future`), a history that begins with days without any report (`partial`),
agencies that started reporting inside it (`late_agencies`), a history shorter than the
planned period by more than a tenth (`short`) and too few months to say how much periods vary
(`few_periods`).

**The spread.** Each calendar month of the history (of at least `MIN_MONTH_DAYS` days with
reports) is a past period: its transactions per stratum, scaled to the planned period's days,
times the proposal's rates give the invitations that month's traffic would have needed; its
completes follow with the month's response (its completes over those the proposal's rates
predicted) and its cost with the SMS parts its invitations took. With B such months, the
interval of a total is the proposal's expected total plus or minus t(B-1) times their
standard deviation times sqrt(1 + 1/B): a 95% prediction interval for one new period, if
periods vary as the past months did (a month's variation stands for the whole period's, which
overstates it for a quarter: the interval errs on the wide side). The computation is
`total_spread`, pure numpy on the months' table; `read_history` and `month_table` read the
database through the stores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import jdatetime
import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy.orm import Session

from survey.ingestion.frames import frame_counts
from survey.kernel.periods import Period, format_date
from survey.results import store

__all__ = [
    "DEFAULT_MONTHS",
    "History",
    "HistoryNote",
    "Spread",
    "calendar_months",
    "default_history",
    "month_table",
    "read_history",
    "total_spread",
]

DEFAULT_MONTHS = 6
MIN_MONTH_DAYS = 14  # a month with fewer days of reports says little about a period's volume
SHORT = 0.9  # a history of fewer days than this share of the planned period's is short
LEVEL = 0.95
TOTALS = ("invitations", "completes", "cost")


@dataclass(frozen=True, slots=True)
class HistoryNote:
    """Something staff should know about the history read: `kind` (future, partial,
    late_agencies, short, few_periods) names it for a page's words, `text` says it in English
    (the CLI, the API), `values` hold its days and numbers."""

    kind: str
    text: str
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class History:
    """The days a proposal reads (`period`), each agency's first day of reports in them, the
    complete calendar months in them and the notes."""

    period: Period
    agency_start: Mapping[str, date]
    months: tuple[Period, ...]
    notes: tuple[HistoryNote, ...]

    def agency_days(self, agency: str) -> int:
        """The days of `agency`'s history: from its first report (or the history's start)."""
        first = max(self.period.start, self.agency_start.get(agency, self.period.start))
        return max((self.period.end - first).days, 1)


# ---------------------------------------------------------------------------- the calendar


def _month_start(day: date, calendar: str) -> date:
    if calendar == "gregorian":
        return day.replace(day=1)
    solar = jdatetime.date.fromgregorian(date=day)
    return jdatetime.date(solar.year, solar.month, 1).togregorian()


def _shift_months(start: date, months: int, calendar: str) -> date:
    """The first day of the month `months` after (or before) the month starting at `start`."""
    if calendar == "gregorian":
        index = start.year * 12 + start.month - 1 + months
        return date(index // 12, index % 12 + 1, 1)
    solar = jdatetime.date.fromgregorian(date=start)
    index = solar.year * 12 + solar.month - 1 + months
    return jdatetime.date(index // 12, index % 12 + 1, 1).togregorian()


def _month_label(start: date, calendar: str) -> str:
    if calendar == "gregorian":
        return f"{start.year:04d}-{start.month:02d}"
    solar = jdatetime.date.fromgregorian(date=start)
    return f"{solar.year:04d}-{solar.month:02d}"


def calendar_months(period: Period) -> tuple[Period, ...]:
    """The calendar months overlapping `period`, each cut to it."""
    months = []
    start = _month_start(period.start, period.calendar)
    while start < period.end:
        following = _shift_months(start, 1, period.calendar)
        months.append(
            Period(
                _month_label(start, period.calendar),
                period.calendar,
                max(start, period.start),
                min(following, period.end),
            )
        )
        start = following
    return tuple(months)


def default_history(planned: Period, today: date, months: int = DEFAULT_MONTHS) -> Period:
    """The last `months` complete months before today and before the planned period."""
    end = _month_start(min(today, planned.start), planned.calendar)
    start = _shift_months(end, -months, planned.calendar)
    first = _month_label(start, planned.calendar)
    last = _month_label(_shift_months(end, -1, planned.calendar), planned.calendar)
    return Period(f"{first}..{last}", planned.calendar, start, end)


# ---------------------------------------------------------------------------- reading


def _span(start: date, end: date) -> str:
    return f"{format_date(start)} to {format_date(end - timedelta(days=1))}"


def read_history(
    session: Session,
    asked: Period,
    planned: Period,
    today: date,
) -> History:
    """The days of `asked` that a proposal can use, each agency's first report in them, the
    months, and the notes (see the module docstring)."""
    notes: list[HistoryNote] = []
    end = min(asked.end, today)
    if end < asked.end:
        cut = (asked.end - end).days
        notes.append(
            HistoryNote(
                "future",
                f"the history {asked.label} runs {cut} day{'s' if cut != 1 else ''} past "
                f"yesterday; those days have no transactions yet and are not read",
                {"days": cut, "last": end - timedelta(days=1)},
            )
        )
    days = Period(asked.label, asked.calendar, asked.start, max(end, asked.start))
    last = days.end - timedelta(days=1)
    rows = (
        frame_counts(session, start=days.start, end=last, by=["agency", "day"])
        if days.days > 0
        else []
    )
    firsts: dict[str, date] = {}
    for row in rows:
        if row.eligible <= 0:
            continue
        agency, day = str(row.group["agency"]), date.fromisoformat(str(row.group["day"]))
        if agency not in firsts or day < firsts[agency]:
            firsts[agency] = day
    if firsts:
        first = min(firsts.values())
        if first > days.start:
            notes.append(
                HistoryNote(
                    "partial",
                    f"the history {days.label} has reports only from {format_date(first)}: "
                    f"{(first - days.start).days} days without any are left out, so the "
                    f"history read is {_span(first, days.end)} ({(days.end - first).days} days)",
                    {"first": first, "skipped": (first - days.start).days},
                )
            )
            days = Period(days.label, days.calendar, first, days.end)
        late = sorted(a for a, d in firsts.items() if d > days.start)
        if late:
            notes.append(
                HistoryNote(
                    "late_agencies",
                    "these agencies started reporting inside the history; their volumes are "
                    "per day since their first report: "
                    + ", ".join(f"{a} ({format_date(firsts[a])})" for a in late),
                    {"agencies": {a: firsts[a] for a in late}},
                )
            )
    if 0 < days.days < SHORT * planned.days:
        notes.append(
            HistoryNote(
                "short",
                f"the history read ({days.days} days) is shorter than the planned period "
                f"({planned.days} days): its volumes are scaled up, and a longer history "
                "would say more about how periods vary",
                {"days": days.days, "planned": planned.days},
            )
        )
    months = tuple(m for m in calendar_months(days) if m.days >= MIN_MONTH_DAYS) if firsts else ()
    if firsts and len(months) < 2:
        notes.append(
            HistoryNote(
                "few_periods",
                f"the history holds {len(months)} month{'s' if len(months) != 1 else ''} of "
                f"at least {MIN_MONTH_DAYS} days with reports: too few to say how much the "
                "invitations and their cost vary from period to period (no interval)",
                {"months": len(months)},
            )
        )
    return History(days, firsts, months, tuple(notes))


def month_table(
    session: Session, history: History, group: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per month of the history and cell of `group`: eligible transactions, invitations and
    completes; and per month the SMS parts sent and the invitations they went to."""
    cells = [*group]
    columns = ["month", *cells, "eligible", "invitations", "completes"]
    if not history.months:
        return pd.DataFrame(columns=columns), pd.DataFrame(columns=["month", "parts", "sent"])
    span = Period(
        history.period.label,
        history.period.calendar,
        history.months[0].start,
        history.months[-1].end,
    )
    frames = frame_counts(
        session, start=span.start, end=span.end - timedelta(days=1), by=[*cells, "day"]
    )
    volume = pd.DataFrame(
        [{**t.group, "eligible": t.eligible} for t in frames], columns=[*cells, "day", "eligible"]
    )
    invited = pd.DataFrame(
        store.invitation_counts(session, span, [*cells, "day"]),
        columns=[*cells, "day", "history_invitations", "history_completes"],
    ).rename(columns={"history_invitations": "invitations", "history_completes": "completes"})
    parts = pd.DataFrame(store.sent_parts_by_day(session, span), columns=["day", "parts", "sent"])
    label = _labeller(history.months)
    for table in (volume, invited, parts):
        table["month"] = label(table["day"])
        for cell in cells:
            if cell in table.columns:
                table[cell] = table[cell].fillna("").astype(str)
    keys = ["month", *cells]
    merged = (
        volume.groupby(keys, as_index=False)["eligible"]
        .sum()
        .merge(
            invited.groupby(keys, as_index=False)[["invitations", "completes"]].sum(),
            on=keys,
            how="outer",
        )
        .fillna({"eligible": 0, "invitations": 0, "completes": 0})
    )
    merged = merged[merged["month"] != ""]
    sent = parts.groupby("month", as_index=False)[["parts", "sent"]].sum()
    return merged[columns].reset_index(drop=True), sent[sent["month"] != ""]


def _labeller(months: Sequence[Period]) -> Any:
    starts = np.array([np.datetime64(m.start) for m in months])
    ends = np.array([np.datetime64(m.end) for m in months])
    labels = np.array([m.label for m in months] + [""], dtype=object)

    def label(days: pd.Series) -> np.ndarray:
        values = pd.to_datetime(days.astype(str)).to_numpy(dtype="datetime64[D]")
        index = np.searchsorted(starts, values, side="right") - 1
        inside = (index >= 0) & (values < ends[np.clip(index, 0, len(ends) - 1)])
        return np.asarray(labels[np.where(inside, index, len(months))])

    return label


# ---------------------------------------------------------------------------- the spread


@dataclass(frozen=True, slots=True)
class Spread:
    """How the proposal's totals would have come out in each past month (`months`: month,
    days, volume, invitations, completes, cost), and their prediction intervals (`intervals`:
    total -> (low, high)); no intervals with fewer than two months."""

    months: pd.DataFrame
    intervals: Mapping[str, tuple[float, float]]
    level: float = LEVEL

    @property
    def method(self) -> str:
        count = len(self.months)
        if not self.intervals:
            return f"{count} past month(s): too few for an interval"
        return (
            f"{self.level:.0%} prediction interval from {count} past months: expected total "
            f"± t({count - 1}) × SD of the months' totals × √(1 + 1/{count})"
        )


def total_spread(
    months: pd.DataFrame,
    sent: pd.DataFrame,
    strata: pd.DataFrame,
    *,
    history: History,
    group: Sequence[str],
    planned_days: int,
    expected: Mapping[str, float],
    default_rate: float,
    level: float = LEVEL,
) -> Spread:
    """The proposal's totals under each past month's traffic, response and SMS parts, and
    their intervals (see the module docstring). `strata` is the proposal's per-stratum table
    (`rate`, `volume`, `response_rate`, `parts_per_invitation`, `cost_per_part`,
    `cost_per_invitation` and the `group` columns)."""
    cells = [*group]
    plan = strata[[*cells, "rate", "volume", "response_rate", "parts_per_invitation",
                   "cost_per_part", "cost_per_invitation"]].copy()  # fmt: skip
    for cell in cells:
        plan[cell] = plan[cell].fillna("").astype(str)
    lengths = {m.label: m for m in history.months}
    rows = months.merge(plan, on=cells, how="left")
    rows["rate"] = rows["rate"].fillna(default_rate)
    for column, value in (
        ("volume", 0.0),
        ("response_rate", float(plan["response_rate"].mean()) if len(plan) else 0.0),
        ("parts_per_invitation", float(plan["parts_per_invitation"].mean()) if len(plan) else 1.0),
        ("cost_per_part", float(plan["cost_per_part"].mean()) if len(plan) else 1.0),
        ("cost_per_invitation", 0.0),
    ):
        rows[column] = rows[column].fillna(value)
    # days of the month with this agency reporting (a late agency's month counts from its start)
    starts = rows["agency"].map(lambda a: history.agency_start.get(a, history.period.start))
    month_start = rows["month"].map(lambda m: lengths[m].start)
    month_end = rows["month"].map(lambda m: lengths[m].end)
    first = pd.concat([pd.to_datetime(starts), pd.to_datetime(month_start)], axis=1).max(axis=1)
    days = (pd.to_datetime(month_end) - first).dt.days.clip(lower=0).to_numpy(dtype=float)
    eligible = rows["eligible"].to_numpy(dtype=float)
    own = days >= MIN_MONTH_DAYS
    volume = np.where(own, eligible * planned_days / np.maximum(days, 1), rows["volume"])
    rate = rows["rate"].to_numpy(dtype=float)
    response = rows["response_rate"].to_numpy(dtype=float)
    # the month's SMS parts per invitation where it sent any, else the proposal's
    sent_by_month = sent.set_index("month")
    month_parts = (
        sent_by_month["parts"] / sent_by_month["sent"].where(sent_by_month["sent"] > 0)
    ).to_dict()
    parts = rows["month"].map(month_parts).fillna(rows["parts_per_invitation"]).astype(float)
    invitations = volume * rate
    rows = rows.assign(
        volume_now=volume,
        invitations_now=invitations,
        completes_now=invitations * response,
        predicted=rows["invitations"].to_numpy(dtype=float) * response,
        cost_now=invitations * (parts * rows["cost_per_part"] + rows["cost_per_invitation"]),
    )
    totals = rows.groupby("month", sort=False).agg(
        volume=("volume_now", "sum"),
        invitations=("invitations_now", "sum"),
        completes=("completes_now", "sum"),
        cost=("cost_now", "sum"),
        completed=("completes", "sum"),
        predicted=("predicted", "sum"),
    )
    # the month's response: its completes over what the proposal's rates predicted for them
    ratio = (totals["completed"] / totals["predicted"].where(totals["predicted"] > 0)).fillna(1.0)
    totals["completes"] = totals["completes"] * ratio
    order = [m.label for m in history.months if m.label in totals.index]
    table = totals.loc[order, ["volume", "invitations", "completes", "cost"]].reset_index()
    table.insert(1, "days", [lengths[m].days for m in order])
    intervals: dict[str, tuple[float, float]] = {}
    count = len(table)
    if count >= 2:
        quantile = float(stats.t.ppf(0.5 + level / 2, count - 1))
        for total in TOTALS:
            sd = float(np.std(table[total].to_numpy(dtype=float), ddof=1))
            half = quantile * sd * math.sqrt(1 + 1 / count)
            centre = float(expected[total])
            intervals[total] = (max(0.0, centre - half), centre + half)
    return Spread(table, intervals, level)
