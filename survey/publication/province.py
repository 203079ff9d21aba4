"""The province page, for a provincial governor's office: every agency serving the province with
its best available figure, its change from the previous period and its national figure, and
the province's own trend and standing against the country.

The best available figure of an agency in a province is, in this order:

- `direct`: the survey's own agency x province estimate, where it passes the quality rule
  (its interval is the release's design-based interval);
- `model`: the small-area (Fay-Herriot) estimate the release published for the cell, where the
  direct one fails; its interval is approximate, estimate ± z·RMSE (z = 1.96 at 95%), from the
  model's mean squared error, and it is labelled as such wherever it is shown;
- `none`: neither is publishable ("too few responses"); no number leaves this module.

Changes and comparisons that involve a model-based figure are approximate (the two errors are
added as if independent, which overstates the error of a cell against its own agency's national
figure, since the model leans on it: a difference called clear is clear). Every word is in the
templates; no web framework here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, cast

import pandas as pd

from survey.errors import NotFound
from survey.publication.view import (
    Axis,
    Fmt,
    Release,
    band_chart,
    estimate,
    interval_bar,
    name_of,
    release_header,
    rows_where,
)

__all__ = ["Figure", "best_figures", "province_codes", "province_page"]

DEFAULT_LEVEL = 0.95


@dataclass(frozen=True, slots=True)
class Figure:
    """An agency's best figure in a province in one release (`kind` direct, model or none)."""

    kind: str
    estimate: float | None = None
    low: float | None = None
    high: float | None = None
    error: float | None = None  # standard error (direct) or root MSE (model)
    n: int = 0
    grade: str = ""
    row: Mapping[str, Any] | None = None  # the estimates row of a direct figure

    @property
    def shown(self) -> bool:
        return self.kind != "none"


def _number(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _count(value: Any) -> int:
    number = _number(value)
    return 0 if number is None else int(number)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], frame.to_dict("records"))  # release columns are str


def release_level(release: Release) -> float:
    """The release's confidence level (its notes say e.g. "95%"), 0.95 when unreadable."""
    text = str((release.tables.notes or {}).get("level") or "").strip().rstrip("%")
    try:
        level = float(text) / 100
    except ValueError:
        return DEFAULT_LEVEL
    return level if 0 < level < 1 else DEFAULT_LEVEL


def z_value(level: float) -> float:
    """The normal quantile of a two-sided interval at `level` (1.96 at 95%)."""
    return NormalDist().inv_cdf(0.5 + level / 2)


def province_codes(release: Release) -> set[str]:
    """Every province a release has figures for (direct or model-based)."""
    estimates = release.tables.estimates
    known = set(rows_where(estimates, level="province")["province"].astype(str))
    known |= set(rows_where(estimates, level="agency_province")["province"].astype(str))
    small = release.tables.small_areas
    if not small.empty:
        known |= set(small["province"].astype(str))
    return known - {""}


def best_figures(release: Release, province: str) -> dict[str, Figure]:
    """Agency code -> its best figure in `province` (every agency with a direct row or a
    small-area cell there, that is every agency serving the province)."""
    estimates = release.tables.estimates
    direct = rows_where(estimates, level="agency_province", province=province, measure="index")
    small = release.tables.small_areas
    cells = small if small.empty else rows_where(small, province=province)
    z = z_value(release_level(release))
    figures: dict[str, Figure] = {}
    for row in _records(cells):
        agency, model, rmse = str(row["agency"]), _number(row["model"]), _number(row["model_rmse"])
        if str(row.get("used") or "") == "model" and model is not None and rmse is not None:
            figures[agency] = Figure(
                "model",
                model,
                max(0.0, model - z * rmse),
                min(100.0, model + z * rmse),
                rmse,
                _count(row.get("n")),
                "model",
            )
        else:
            figures[agency] = Figure("none", n=_count(row.get("n")))
    for row in _records(direct):
        agency, value = str(row["agency"]), _number(row.get("estimate"))
        if not bool(row.get("suppressed")) and value is not None:
            figures[agency] = Figure(
                "direct",
                value,
                _number(row.get("ci_low")),
                _number(row.get("ci_high")),
                _number(row.get("se")),
                _count(row.get("n")),
                str(row.get("grade") or ""),
                row,
            )
        elif agency not in figures or not figures[agency].shown:
            figures[agency] = Figure("none", n=_count(row.get("n")))
    return figures


@dataclass(frozen=True, slots=True)
class Difference:
    """A difference of two figures with its interval; `approx` when the interval adds errors
    as if independent (a model-based figure, or a cell against its own country)."""

    value: float
    low: float
    high: float
    approx: bool

    @property
    def direction(self) -> str | None:
        if self.low > 0:
            return "up"
        if self.high < 0:
            return "down"
        return None

    @classmethod
    def between(cls, first: Figure, second: Figure, z: float) -> Difference | None:
        if first.estimate is None or second.estimate is None:
            return None
        if first.error is None or second.error is None:
            return None
        value = first.estimate - second.estimate
        half = z * math.hypot(first.error, second.error)
        return cls(value, value - half, value + half, approx=True)


def _signed(value: float, fmt: Fmt) -> str:
    """A signed difference; one that rounds to zero is shown as 0.0, with no sign."""
    return fmt.number(0.0) if round(value, 1) == 0 else fmt.signed(value)


def _signed_interval(low: float, high: float, fmt: Fmt) -> str:
    dash = " تا " if fmt.lang == "fa" else " to "
    return f"{_signed(low, fmt)}{dash}{_signed(high, fmt)}"


def _difference(diff: Difference | None, fmt: Fmt, previous: Figure | None = None) -> Any:
    if diff is None:
        return None
    return {
        "value": _signed(diff.value, fmt),
        "ci": _signed_interval(diff.low, diff.high, fmt),
        "previous": None
        if previous is None or previous.estimate is None
        else fmt.number(previous.estimate),
        "direction": diff.direction,
        "approx": diff.approx,
    }


def _change(current: Figure, previous: Figure | None, fmt: Fmt, z: float) -> Any:
    """The change from the previous period: the release's own (design-based) change where both
    figures are direct, otherwise the approximate difference of the two best figures."""
    if previous is None or not current.shown or not previous.shown:
        return None
    row = current.row
    if current.kind == "direct" and previous.kind == "direct" and row is not None:
        change = _number(row.get("change"))
        low, high = _number(row.get("change_ci_low")), _number(row.get("change_ci_high"))
        if change is not None and low is not None and high is not None:
            return _difference(Difference(change, low, high, approx=False), fmt, previous)
    return _difference(Difference.between(current, previous, z), fmt, previous)


def _national_agencies(release: Release) -> dict[str, Figure]:
    """Each agency's national index (direct figures only; suppressed ones are left out)."""
    rows = rows_where(release.tables.estimates, level="agency", measure="index")
    out = {}
    for row in _records(rows):
        value = _number(row.get("estimate"))
        if not bool(row.get("suppressed")) and value is not None:
            out[str(row["agency"])] = Figure(
                "direct",
                value,
                _number(row.get("ci_low")),
                _number(row.get("ci_high")),
                _number(row.get("se")),
                _count(row.get("n")),
                str(row.get("grade") or ""),
                row,
            )
    return out


def _against_national(figure: Figure, national: Figure | None, fmt: Fmt, z: float) -> Any:
    """The agency's national figure and how the province's stands against it; an agency whose
    every response is from this province (a provincial company) has nothing to compare."""
    if national is None or national.estimate is None:
        return None
    if figure.kind == "direct" and figure.n == national.n:
        return {"only_here": True}
    diff = Difference.between(figure, national, z) if figure.shown else None
    return {
        "estimate": fmt.number(national.estimate),
        "ci": None
        if national.low is None or national.high is None
        else fmt.interval(national.low, national.high),
        "diff": None if diff is None else _signed(diff.value, fmt),
        "direction": None if diff is None else diff.direction,
    }


def _order(item: tuple[str, Figure], names: Mapping[str, Mapping[str, str]], lang: str) -> Any:
    code, figure = item
    value = -figure.estimate if figure.estimate is not None else 0.0
    return (0 if figure.shown else 1, value, name_of(names, code, lang))


def _agency_rows(
    release: Release,
    code: str,
    fmt: Fmt,
    base: str,
    previous: Release | None,
) -> dict[str, Any]:
    """One row per agency serving the province, best figure first, with interval bars."""
    z = z_value(release_level(release))
    figures = best_figures(release, code)
    before = best_figures(previous, code) if previous is not None else {}
    national = _national_agencies(release)
    shown = [f for f in figures.values() if f.shown and f.low is not None and f.high is not None]
    axis = Axis.around(
        pd.DataFrame({"ci_low": [f.low for f in shown], "ci_high": [f.high for f in shown]})
        if shown
        else pd.DataFrame({"ci_low": [], "ci_high": []})
    )
    rows = []
    for agency, figure in sorted(
        figures.items(), key=lambda item: _order(item, release.agencies, fmt.lang)
    ):
        view: dict[str, Any] = {
            "code": agency,
            "name": name_of(release.agencies, agency, fmt.lang),
            "href": f"{base}/agencies/{agency}",
            "kind": figure.kind,
            "n": fmt.integer(figure.n),
            "suppressed": not figure.shown,
            "national": _against_national(figure, national.get(agency), fmt, z),
        }
        if figure.shown and figure.estimate is not None:
            low = figure.estimate if figure.low is None else figure.low
            high = figure.estimate if figure.high is None else figure.high
            bar_row = {"estimate": figure.estimate, "ci_low": low, "ci_high": high}
            view |= {
                "estimate": fmt.number(figure.estimate),
                "ci": fmt.interval(low, high),
                "bar": interval_bar(bar_row, axis),
                "grade": figure.grade,
                "change": _change(figure, before.get(agency), fmt, z),
            }
        rows.append(view)
    counts = {kind: sum(1 for f in figures.values() if f.kind == kind) for kind in KINDS}
    return {
        "rows": rows,
        "axis": {"low": fmt.number(axis.low, 0), "high": fmt.number(axis.high, 0)},
        "counts": {kind: fmt.integer(count) for kind, count in counts.items()},
        "has_model": counts["model"] > 0,
        "has_approx_change": any(
            r.get("change") and r["change"].get("approx") for r in rows if "change" in r
        ),
    }


KINDS = ("direct", "model", "none")


def _index_row(release: Release, **where: str) -> dict[str, Any] | None:
    rows = rows_where(release.tables.estimates, measure="index", **where)
    records = _records(rows)
    return records[0] if records else None


def _headline(release: Release, code: str, fmt: Fmt) -> dict[str, Any] | None:
    """The province's own index (all agencies together) and how it stands against the
    country's."""
    row = _index_row(release, level="province", province=code)
    if row is None:
        return None
    view = estimate(row, fmt, Axis(0.0, 100.0))
    share = _records(
        rows_where(release.tables.estimates, level="province", province=code, measure="satisfied")
    )
    view["satisfied"] = estimate(share[0], fmt) if share else None
    national = _index_row(release, level="national")
    if national is None or national["suppressed"] or _number(national["estimate"]) is None:
        view["national"] = None
        return view
    country = Figure("direct", float(national["estimate"]), error=_number(national.get("se")))
    comparison: dict[str, Any] = {
        "estimate": fmt.number(float(national["estimate"])),
        "ci": fmt.interval(float(national["ci_low"]), float(national["ci_high"])),
        "diff": None,
        "direction": None,
    }
    if not view["suppressed"]:
        own = Figure("direct", float(row["estimate"]), error=_number(row.get("se")))
        diff = Difference.between(own, country, z_value(release_level(release)))
        if diff is not None:
            comparison |= {"diff": _signed(diff.value, fmt), "direction": diff.direction}
    view["national"] = comparison
    return view


def _trend(
    history: Sequence[Release], code: str, fmt: Fmt, base_of: Mapping[int, str]
) -> dict[str, Any]:
    """The province's index in each published period of the kind, with a band chart."""
    points = []
    for release in history:
        row = _index_row(release, level="province", province=code)
        if row is None:
            continue
        view = estimate(row, fmt)
        view["period"] = fmt.period(release.period)
        view["href"] = f"{base_of.get(release.id, f'/releases/{release.id}')}/provinces/{code}"
        view["raw"] = row
        points.append(view)
    return {"points": points, "chart": band_chart(points, fmt)}


def _previous(history: Sequence[Release], release: Release) -> Release | None:
    """The release of the period just before `release`'s, when the history has it."""
    start = getattr(release, "period_start", None)
    for candidate in history:
        if candidate.period != release.period and getattr(candidate, "period_end", None) == start:
            return candidate
    return None


def province_page(
    release: Release,
    code: str,
    lang: str,
    base: str = "",
    *,
    history: Sequence[Release] = (),
    history_bases: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """One province: headline against the country, trend, every agency's best figure."""
    if code not in province_codes(release):
        raise NotFound(f"province {code!r} is not in release {release.id} ({release.period})")
    fmt = Fmt(lang)
    level = release_level(release)
    previous = _previous(history, release)
    return {
        "release": release_header(release, fmt, base),
        "code": code,
        "name": name_of(release.provinces, code, lang),
        "headline": _headline(release, code, fmt),
        "trend": _trend(history or [release], code, fmt, history_bases or {}),
        "agencies": _agency_rows(release, code, fmt, base, previous),
        "previous_period": None if previous is None else fmt.period(previous.period),
        "level": fmt.digits(f"{level * 100:g}%"),
        "z": fmt.number(z_value(level), 2),
        "small_areas_csv": f"/api/v1/releases/{release.id}/small_areas.csv",
    }
