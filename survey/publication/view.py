"""What the publication pages show: a stored release's tables turned into formatted rows.

The numbers come straight from the release's tables (`ReleaseTables`, the analysis package's
results): this module only picks rows, formats them for the language (Persian digits, Solar
Hijri dates with the Gregorian date beside) and lays out interval bars. A suppressed estimate
never leaves this module as a number: its row carries `suppressed=True` and no estimate,
interval, change or rank. Every word of the pages lives in the templates; no web framework here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar, cast

import jdatetime
import numpy as np
import pandas as pd
from markupsafe import Markup

from survey.errors import NotFound
from survey.kernel.locale import Numbers, localise
from survey.kernel.periods import PeriodError, parse_period, tehran_day
from survey.publication.images import drivers_chart_reason

__all__ = [
    "Fmt",
    "agency_page",
    "band_chart",
    "interval_bar",
    "latest_per_period",
    "name_of",
    "overview_page",
    "rows_where",
]

_QUARTERS = {
    "fa": ("بهار", "تابستان", "پاییز", "زمستان"),
    "en": ("spring", "summer", "autumn", "winter"),
}
_GREGORIAN_MONTHS = (
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
)


class Tables(Protocol):
    """The parts of `analysis.release.ReleaseTables` the pages read (read-only)."""

    @property
    def estimates(self) -> pd.DataFrame: ...
    @property
    def items(self) -> pd.DataFrame: ...
    @property
    def small_areas(self) -> pd.DataFrame: ...
    @property
    def notes(self) -> dict[str, str]: ...


class Release(Protocol):
    """The parts of `survey.publication.releases.StoredRelease` the pages read (read-only)."""

    @property
    def id(self) -> int: ...
    @property
    def period(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def number(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def published_at(self) -> datetime | None: ...
    @property
    def supersedes_id(self) -> int | None: ...
    @property
    def change_note(self) -> str: ...
    @property
    def methodology(self) -> str: ...
    @property
    def plan_versions(self) -> list[int]: ...
    @property
    def questionnaire_versions(self) -> list[str]: ...
    @property
    def agencies(self) -> dict[str, dict[str, str]]: ...
    @property
    def services(self) -> dict[str, dict[str, str]]: ...
    @property
    def provinces(self) -> dict[str, dict[str, str]]: ...
    @property
    def channels(self) -> dict[str, dict[str, str]]: ...
    @property
    def tables(self) -> Tables: ...


AnyRelease = TypeVar("AnyRelease", bound=Release)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _number(value: Any) -> float | None:
    """A table cell as a float; None for a missing one (None, NaN, NA)."""
    return None if _missing(value) else float(value)


@dataclass(frozen=True, slots=True)
class Fmt:
    """Formats numbers, periods and dates for one language."""

    lang: str

    def digits(self, text: str) -> str:
        """Persian digits and separators, and a real minus sign, for Persian readers."""
        return localise(text, self.lang, minus=True)

    def number(self, value: float, places: int = 1) -> str:
        return self.digits(f"{value:.{places}f}")

    def signed(self, value: float, places: int = 1) -> str:
        """`+1.2`, `−0.4`; a value that rounds to zero has no sign (`0.0`, never `−0.0`)."""
        text = f"{0.0:.{places}f}" if round(value, places) == 0 else f"{value:+.{places}f}"
        if self.lang == "fa":  # isolated left-to-right: the sign stays left of the digits
            return "\u2066" + self.digits(text) + "\u2069"
        return text

    def integer(self, value: int) -> str:
        return self.digits(f"{value:,}")

    def share(self, fraction: float) -> str:
        return self.digits(f"{fraction * 100:.0f}%")

    def share_interval(self, low: float, high: float) -> str:
        dash = " تا " if self.lang == "fa" else "–"
        return f"{self.share(float(low))}{dash}{self.share(float(high))}"

    def interval(self, low: float, high: float, places: int = 1) -> str:
        dash = " تا " if self.lang == "fa" else "–"
        return f"{self.number(low, places)}{dash}{self.number(high, places)}"

    def day(self, value: date) -> Markup:
        """Solar Hijri date with the Gregorian date beside it, isolated left-to-right."""
        return Numbers(self.lang).day(value)

    def instant(self, value: datetime | None) -> Markup | None:
        return None if value is None else self.day(tehran_day(value))

    def period(self, label: str) -> str:
        """`1405-01` as `Farvardin 1405`, `1405-Q1` as `spring 1405`, `1405` as the year."""
        try:
            period = parse_period(label)
        except PeriodError:
            return label
        year = label[:4]
        if period.calendar == "solar_hijri":
            months = jdatetime.date.j_months_fa if self.lang == "fa" else jdatetime.date.j_months_en
            if "-Q" in label:
                text = f"{_QUARTERS[self.lang][int(label[-1]) - 1]} {year}"
            elif "-" in label:
                text = f"{months[int(label[5:7]) - 1]} {year}"
            else:
                text = year
        elif "-Q" in label:
            text = f"{year} Q{label[-1]}"
        elif "-" in label:
            text = f"{_GREGORIAN_MONTHS[int(label[5:7]) - 1]} {year}"
        else:
            text = year
        return self.digits(text)

    def period_days(self, label: str) -> Markup | None:
        """The period's first and last day, both calendars."""
        try:
            period = parse_period(label)
        except PeriodError:
            return None
        last = date.fromordinal(period.end.toordinal() - 1)
        joiner = " تا " if self.lang == "fa" else " to "
        return Markup("{}{}{}").format(self.day(period.start), joiner, self.day(last))


def _name(names: Mapping[str, Mapping[str, str]], code: str, lang: str) -> str:
    entry = names.get(code) or {}
    return entry.get(lang) or entry.get("fa") or entry.get("en") or code


@dataclass(frozen=True, slots=True)
class Axis:
    """A common 0-100 sub-range for the interval bars of one table."""

    low: float
    high: float

    @classmethod
    def around(cls, frame: pd.DataFrame) -> Axis:
        lows = pd.to_numeric(frame["ci_low"], errors="coerce").dropna()
        highs = pd.to_numeric(frame["ci_high"], errors="coerce").dropna()
        if lows.empty or highs.empty:
            return cls(0.0, 100.0)
        low = max(0.0, math.floor(float(lows.min()) / 10) * 10)
        high = min(100.0, math.ceil(float(highs.max()) / 10) * 10)
        return cls(low, high) if high > low else cls(0.0, 100.0)

    def x(self, value: float) -> float:
        return min(100.0, max(0.0, (value - self.low) / (self.high - self.low) * 100))


def _bar(row: Mapping[str, Any], axis: Axis) -> dict[str, str]:
    """SVG geometry (viewBox 0 0 100 12) of the interval and the point: no style attributes."""
    left, right = axis.x(float(row["ci_low"])), axis.x(float(row["ci_high"]))
    point = axis.x(float(row["estimate"]))
    return {
        "x": f"{left:.2f}",
        "width": f"{max(right - left, 0.5):.2f}",
        "point": f"{max(point - 0.6, 0):.2f}",
    }


def estimate(row: Mapping[str, Any], fmt: Fmt, axis: Axis | None = None) -> dict[str, Any]:
    """One estimate row, formatted; suppressed rows keep only their counts and grade."""
    n = 0 if _missing(row.get("n")) else int(row["n"])
    rate = _number(row.get("response_rate"))
    view: dict[str, Any] = {
        "n": fmt.integer(n),
        "response_rate": None if rate is None else fmt.share(rate),
        "grade": str(row.get("grade") or ""),
        "suppressed": bool(row.get("suppressed")) or _missing(row.get("estimate")),
    }
    if view["suppressed"]:
        view["grade"] = "suppressed"
        return view
    view["estimate"] = fmt.number(float(row["estimate"]))
    view["ci"] = fmt.interval(float(row["ci_low"]), float(row["ci_high"]))
    if axis is not None:
        view["bar"] = _bar(row, axis)
    view["change"] = _change(row, fmt)
    if not _missing(row.get("rank")):
        view["rank"] = fmt.integer(int(row["rank"]))
        low, high = _number(row.get("rank_low")), _number(row.get("rank_high"))
        if low is not None and high is not None:
            view["rank_range"] = fmt.interval(int(low), int(high), 0)
    return view


def _change(row: Mapping[str, Any], fmt: Fmt) -> dict[str, Any] | None:
    """The change from the previous period; `direction` only when it is significant."""
    change = _number(row.get("change"))
    if change is None:
        return None
    low, high = _number(row.get("change_ci_low")), _number(row.get("change_ci_high"))
    previous = _number(row.get("previous_estimate"))
    significant = bool(row.get("change_significant"))
    direction = None
    if significant:
        direction = "up" if change > 0 else "down"
    # "no change" when it rounds to zero; a significant one that small gets a second decimal
    zero = round(change, 1) == 0
    return {
        "value": fmt.signed(change, 2 if zero and significant else 1),
        "zero": zero and not significant,
        "ci": None if low is None or high is None else _signed_interval(low, high, fmt),
        "previous": None if previous is None else fmt.number(previous),
        "direction": direction,
    }


def _signed_interval(low: float, high: float, fmt: Fmt) -> str:
    dash = " تا " if fmt.lang == "fa" else " to "
    return f"{fmt.signed(float(low))}{dash}{fmt.signed(float(high))}"


def _rows(frame: pd.DataFrame, **where: str) -> pd.DataFrame:
    """Rows whose code columns equal the values (release tables hold codes as text, "" for
    none, so a plain comparison is exact and fast)."""
    mask = np.ones(len(frame), dtype=bool)
    for column, value in where.items():
        mask &= frame[column].to_numpy(dtype=object) == value
    return frame[mask]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], frame.to_dict("records"))  # release columns are str


def _by_measure(frame: pd.DataFrame, key: str) -> dict[str, dict[str, Any]]:
    """Satisfied-share rows by domain key, to sit beside the index rows."""
    rows = _rows(frame, measure="satisfied")
    return {str(r[key]): r for r in _records(rows)}


def _ordered(
    frame: pd.DataFrame, names: Mapping[str, Mapping[str, str]], key: str, lang: str
) -> list[dict[str, Any]]:
    """Best first by estimate; suppressed rows last, by name."""
    records = _records(frame)

    def order(r: dict[str, Any]) -> tuple[int, float, str]:
        missing = bool(r.get("suppressed")) or _missing(r.get("estimate"))
        value = 0.0 if missing else -float(r["estimate"])
        rank = _number(r.get("rank"))
        if not missing and rank is not None:
            value = rank
        return (1 if missing else 0, value, _name(names, str(r[key]), lang))

    return sorted(records, key=order)


def _domain_table(
    release: Release,
    fmt: Fmt,
    key: str,
    names: Mapping[str, Mapping[str, str]],
    href: str | None = None,
    **where: str,
) -> dict[str, Any]:
    """Rows of one level (index and share satisfied), best first, with interval bars."""
    estimates = release.tables.estimates
    level = _rows(estimates, **where)
    index = _rows(level, measure="index")
    satisfied = _by_measure(level, key)
    axis = Axis.around(index[~index["suppressed"].fillna(False).astype(bool)])
    rows = []
    for record in _ordered(index, names, key, fmt.lang):
        code = str(record[key])
        view = estimate(record, fmt, axis)
        view["code"] = code
        view["name"] = _name(names, code, fmt.lang)
        view["href"] = href.format(code=code) if href else None
        share = satisfied.get(code)
        view["satisfied"] = None if share is None else estimate(share, fmt)
        rows.append(view)
    return {
        "rows": rows,
        "axis": {"low": fmt.number(axis.low, 0), "high": fmt.number(axis.high, 0)},
    }


def _single(release: Release, fmt: Fmt, **where: str) -> dict[str, Any] | None:
    """The index and share-satisfied estimates of one domain, or None when it has no rows."""
    rows = _rows(release.tables.estimates, **where)
    index = _records(_rows(rows, measure="index"))
    if not index:
        return None
    view = estimate(index[0], fmt, Axis(0.0, 100.0))
    satisfied = _records(_rows(rows, measure="satisfied"))
    view["satisfied"] = estimate(satisfied[0], fmt) if satisfied else None
    return view


def release_header(release: Release, fmt: Fmt, base: str) -> dict[str, Any]:
    """Period, publication date, number and the links every page of a release carries."""
    return {
        "id": release.id,
        "period": fmt.period(release.period),
        "period_days": fmt.period_days(release.period),
        "status": release.status,
        "number": fmt.integer(release.number),
        "correction": release.number > 1 or release.supersedes_id is not None,
        "change_note": release.change_note,
        "superseded_by": getattr(release, "superseded_by_id", None),
        "interim": getattr(release, "complete", True) is False,
        "data_as_of": fmt.instant(getattr(release, "data_as_of", None)),
        "published": fmt.instant(release.published_at),
        "created": fmt.instant(release.created_at),
        "base": base,
        "stable": f"/releases/{release.id}",
        "open_data": f"/api/v1/releases/{release.id}",
        "csv": f"/api/v1/releases/{release.id}/estimates.csv",
        "dictionary": "/api/v1/releases/dictionary",
    }


def overview_page(release: Release, lang: str, base: str = "") -> dict[str, Any]:
    """The national overview: national index and the league table of agencies."""
    fmt = Fmt(lang)
    return {
        "release": release_header(release, fmt, base),
        "national": _single(release, fmt, level="national"),
        "league": _domain_table(
            release, fmt, "agency", release.agencies, f"{base}/agencies/{{code}}", level="agency"
        ),
        "provinces": _domain_table(
            release,
            fmt,
            "province",
            release.provinces,
            f"{base}/provinces/{{code}}",
            level="province",
        ),
    }


def _drivers(
    release: Release, fmt: Fmt, agency: str, labels: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The agency's item scores with their importance (most important first)."""
    items = release.tables.items
    rows = _records(_rows(items, level="agency", agency=agency))

    def order(r: dict[str, Any]) -> tuple[int, float]:
        importance = _number(r.get("importance"))
        return (1, 0.0) if importance is None else (0, -importance)

    views = []
    for record in sorted(rows, key=order):
        view = estimate(record, fmt, Axis(0.0, 100.0))
        view["item"] = str(record["item"])
        view["label"] = labels.get(view["item"], view["item"])
        importance = _number(record.get("importance"))
        low, high = _number(record.get("importance_low")), _number(record.get("importance_high"))
        view["importance"] = None if importance is None else fmt.share(importance)
        view["importance_ci"] = (
            None if low is None or high is None else fmt.share_interval(low, high)
        )
        view["importance_note"] = str(record.get("importance_note") or "")
        views.append(view)
    return views


def period_kind(label: str) -> str:
    """`month`, `quarter` or `year`: a trend compares periods of one kind."""
    if "-Q" in label.upper():
        return "quarter"
    return "month" if "-" in label else "year"


def latest_per_period(releases: Iterable[AnyRelease]) -> list[AnyRelease]:
    """The highest-numbered release of each period, oldest period first."""
    best: dict[str, AnyRelease] = {}
    for release in releases:
        if release.period not in best or release.number > best[release.period].number:
            best[release.period] = release

    def start(release: AnyRelease) -> tuple[date, int]:
        try:
            period = parse_period(release.period)
        except PeriodError:
            return (date.max, 0)
        return (period.start, period.days)

    return sorted(best.values(), key=start)


def _trend(
    history: Sequence[Release], agency: str, fmt: Fmt, base_of: Mapping[int, str]
) -> dict[str, Any]:
    """The agency's index in each published period, with an inline SVG band chart."""
    points = []
    for release in history:
        rows = _records(
            _rows(release.tables.estimates, level="agency", agency=agency, measure="index")
        )
        if not rows:
            continue
        view = estimate(rows[0], fmt)
        view["period"] = fmt.period(release.period)
        view["href"] = f"{base_of.get(release.id, f'/releases/{release.id}')}/agencies/{agency}"
        view["raw"] = rows[0]
        points.append(view)
    return {"points": points, "chart": _band_chart(points, fmt)}


def _band_chart(points: list[dict[str, Any]], fmt: Fmt) -> dict[str, Any] | None:
    """Line, interval band, axis values and period labels in a 300 x 140 viewBox (time runs
    left to right in both languages, like the charts); suppressed periods are gaps."""
    shown = [(i, p["raw"]) for i, p in enumerate(points) if not p["suppressed"]]
    if not shown:
        return None
    axis = Axis.around(pd.DataFrame([r for _, r in shown]))
    left, right, top, bottom = 30.0, 290.0, 10.0, 110.0
    step = (right - left) / max(len(points) - 1, 1)

    def x_of(i: int) -> float:
        return left + i * step if len(points) > 1 else (left + right) / 2

    def y_of(value: float) -> float:
        return bottom - axis.x(value) / 100 * (bottom - top)

    upper = [(x_of(i), y_of(float(r["ci_high"]))) for i, r in shown]
    lower = [(x_of(i), y_of(float(r["ci_low"]))) for i, r in reversed(shown)]
    line = [(x_of(i), y_of(float(r["estimate"]))) for i, r in shown]

    def path(coords: list[tuple[float, float]]) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)

    every = max(1, math.ceil(len(points) / 4))  # at most about four period labels
    last = len(points) - 1

    def anchor(i: int) -> str:  # the end labels stay inside the drawing
        return "middle" if last == 0 else "start" if i == 0 else "end" if i == last else "middle"

    labels = [
        {
            "x": f"{x_of(i) - (6 if i == 0 and last else 0):.1f}",
            "text": p["period"],
            "anchor": anchor(i),
        }
        for i, p in enumerate(points)
        if i % every == 0 or i == last
    ]
    return {
        "band": path(upper + lower),
        "line": path(line),
        "dots": [{"x": f"{x:.1f}", "y": f"{y:.1f}"} for x, y in line],
        "labels": labels,
        "low": fmt.number(axis.low, 0),
        "high": fmt.number(axis.high, 0),
        "x0": f"{left:.0f}",
        "x1": f"{right:.0f}",
        "y_low": f"{bottom:.0f}",
        "y_high": f"{top:.0f}",
    }


def agency_page(
    release: Release,
    code: str,
    lang: str,
    *,
    base: str = "",
    history: Sequence[Release] = (),
    history_bases: Mapping[int, str] | None = None,
    item_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One agency: headline, trend, drivers, channels, services, provinces."""
    if code not in set(_rows(release.tables.estimates, level="agency")["agency"].astype(str)):
        raise NotFound(f"agency {code!r} is not in release {release.id} ({release.period})")
    fmt = Fmt(lang)
    headline = _single(release, fmt, level="agency", agency=code)
    no_chart = drivers_chart_reason(release, code)
    charts = f"/releases/{release.id}/charts"
    return {
        "release": release_header(release, fmt, base),
        "code": code,
        "name": _name(release.agencies, code, lang),
        "headline": headline,
        "trend": _trend(history or [release], code, fmt, history_bases or {}),
        "drivers": _drivers(release, fmt, code, item_labels or {}),
        "channels": _domain_table(
            release, fmt, "channel", release.channels, level="agency_channel", agency=code
        ),
        "services": _domain_table(
            release, fmt, "service", release.services, level="service", agency=code
        ),
        "provinces": _domain_table(
            release,
            fmt,
            "province",
            release.provinces,
            f"{base}/provinces/{{code}}",
            level="agency_province",
            agency=code,
        ),
        "charts": {
            "drivers": None if no_chart else f"{charts}/quadrant-{code}-{lang}",
            "trend": f"{charts}/trend-{code}-{lang}",
        },
        # why there is no importance x performance chart (drivers_why_<reason>), or None
        "drivers_reason": no_chart,
    }


# The province page (survey.publication.province) shares these helpers.
name_of = _name
rows_where = _rows
interval_bar = _bar
band_chart = _band_chart
