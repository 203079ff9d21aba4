"""Charts of a publication release, as PNG or SVG bytes, in Persian (right-to-left) or English.

Each chart is a function returning a matplotlib ``Figure`` (``*_figure``) and one returning
its bytes (``forest_plot``, ``trend_chart``, ``driver_bars``):

* :func:`forest_plot`: agencies' estimates with their intervals, best on top; agencies
  whose estimate is suppressed are listed as "too few responses", never drawn as numbers;
* :func:`trend_chart`: one domain's estimate over periods with its interval as a band;
* :func:`driver_bars`: each driver item's importance beside its score.

Drawn like :mod:`analysis.charts`: the object API on an Agg canvas (no pyplot global state,
safe in worker threads), Persian shaped by :func:`analysis.charts._shape` in the first
installed Persian font, Persian digits in Persian charts, and in Persian the labels on the
right (reading starts there). SVG text is drawn as paths, so a browser needs no font.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable, Mapping
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import FuncFormatter, MaxNLocator

from analysis.charts import ChartError, _font, _shape
from survey.kernel.locale import localise, persian_digits

__all__ = [
    "ChartError",
    "driver_bars",
    "driver_figure",
    "forest_figure",
    "forest_plot",
    "render",
    "trend_chart",
    "trend_figure",
]

Lang = Literal["fa", "en"]
Format = Literal["png", "svg"]

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "index": "Satisfaction index (0-100)",
        "satisfied": "Share satisfied (%)",
        "forest_title": "Agencies: {measure}, with {level} intervals",
        "too_few": "too few responses",
        "national": "National",
        "trend_title": "{measure} over time",
        "period": "Period",
        "importance": "Importance (share of explained variance, %)",
        "score": "Score (0-100)",
        "drivers_title": "What drives satisfaction",
        "no_importance": "importance not available: {note}",
        "nothing": "No published estimates",
        "grade": "grade",
        "caution": "○ grade C: use with caution",
    },
    "fa": {
        "index": "شاخص رضایت (۰ تا ۱۰۰)",
        "satisfied": "سهم راضی‌ها (درصد)",
        "forest_title": "دستگاه‌ها: {measure}، با بازهٔ اطمینان {level} درصدی",
        "too_few": "پاسخ کافی نیست",
        "national": "کل کشور",
        "trend_title": "{measure} در طول زمان",
        "period": "دوره",
        "importance": "اهمیت (سهم از واریانس تبیین‌شده، درصد)",
        "score": "امتیاز (۰ تا ۱۰۰)",
        "drivers_title": "چه چیزی رضایت را می‌سازد",
        "no_importance": "اهمیت در دسترس نیست: {note}",
        "nothing": "برآورد منتشرشده‌ای نیست",
        "grade": "درجه",
        "caution": "○ درجه C: با احتیاط استفاده شود",
    },
}
# the release's importance notes (analysis.release.IMPORTANCE_NOTES) in Persian
_NOTES_FA = {
    "too few complete responses to rank the drivers": "پاسخ‌های کامل برای رتبه‌بندی محرک‌ها کافی نیست",
    "the drivers move together too closely to be told apart": (
        "محرک‌ها آن‌قدر با هم تغییر می‌کنند که از هم جدا نمی‌شوند"
    ),
    "the index or a driver does not vary": "شاخص یا یکی از محرک‌ها تغییری ندارد",
}
_POINT = "#1f4e79"
_SUPPRESSED = "#7f8c8d"
_BAND = "#9ec5e8"


def _check_format(format: str) -> None:
    if format not in ("png", "svg"):
        raise ChartError(f"format: expected 'png' or 'svg', got {format!r}")


def render(fig: Figure, format: Format = "png") -> bytes:
    """The figure as PNG (150 dpi) or SVG bytes, without timestamps (a PNG of identical
    input is identical bytes, so pages can cache it; SVG element ids are random)."""
    _check_format(format)
    buffer = io.BytesIO()
    metadata = {"Date": None} if format == "svg" else {"Software": None}
    fig.savefig(buffer, format=format, dpi=150, metadata=metadata)
    return buffer.getvalue()


def _check_lang(lang: str) -> dict[str, str]:
    if lang not in _TEXT:
        raise ChartError(f"lang: expected 'fa' or 'en', got {lang!r}")
    return _TEXT[lang]


def _texter(lang: str) -> Callable[[str], str]:
    return (lambda value: _shape(value)) if lang == "fa" else (lambda value: value)


def _number(lang: str, value: float, digits: int = 0) -> str:
    return localise(f"{value:.{digits}f}", lang, minus=True)


def _persian_ticks(ax: Axes, font: FontProperties, axes: str = "xy") -> None:
    persian = FuncFormatter(lambda v, _pos: localise(f"{v:g}", "fa", minus=True))
    if "x" in axes:
        ax.xaxis.set_major_formatter(persian)
    if "y" in axes:
        ax.yaxis.set_major_formatter(persian)
    for tick in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
        tick.set_fontproperties(font)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _require(table: pd.DataFrame, columns: list[str], role: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ChartError(f"{role}: expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ChartError(f"{role}: expected columns {columns}, missing {missing}")


def forest_figure(
    estimates: pd.DataFrame,
    measure: str = "index",
    lang: Lang = "fa",
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    level: float = 0.95,
) -> Figure:
    """Agencies' estimates with intervals, best on top; suppressed ones listed at the bottom.

    ``estimates`` is a release's estimates table (rows with ``level == "agency"`` and the
    ``measure`` are drawn; a ``national`` row of the measure becomes a dashed reference
    line). ``labels`` maps agency codes to display names.
    """
    text = _check_lang(lang)
    _require(
        estimates, ["level", "agency", "measure", "estimate", "ci_low", "ci_high"], "estimates"
    )
    if measure not in ("index", "satisfied"):
        raise ChartError(f"measure: expected 'index' or 'satisfied', got {measure!r}")
    t = _texter(lang)
    font = _font(lang)
    rows = estimates[(estimates["level"] == "agency") & (estimates["measure"] == measure)]
    suppressed = (
        rows["suppressed"].astype(bool) if "suppressed" in rows else rows["estimate"].isna()
    )
    suppressed = suppressed | rows["estimate"].isna()
    shown = rows[~suppressed].sort_values("estimate", ascending=True, kind="stable")
    hidden = rows[suppressed].sort_values("agency", kind="stable")
    names = {str(k): str(v) for k, v in (labels or {}).items()}
    count = len(shown) + len(hidden)
    fig = _figure(8, max(2.5, 1.4 + 0.42 * max(count, 1)))
    ax = fig.add_subplot()
    level_text = _number(lang, level * 100) + ("" if lang == "fa" else "%")
    ax.set_title(
        t(title or text["forest_title"].format(measure=text[measure], level=level_text)),
        fontproperties=font,
        fontsize=13,
    )
    ax.set_xlabel(t(text[measure]), fontproperties=font)
    if count == 0:
        ax.text(0.5, 0.5, t(text["nothing"]), ha="center", va="center", fontproperties=font,
                transform=ax.transAxes)  # fmt: skip
        ax.set_axis_off()
        return fig
    # suppressed agencies at the bottom (y = 0..), shown ones above, best at the top
    y_hidden = np.arange(len(hidden), dtype=float)
    y_shown = np.arange(len(shown), dtype=float) + len(hidden)
    est = shown["estimate"].to_numpy(dtype=float)
    low = shown["ci_low"].to_numpy(dtype=float)
    high = shown["ci_high"].to_numpy(dtype=float)
    if len(shown):
        ax.hlines(y_shown, low, high, color=_POINT, linewidth=2.2, zorder=2)
        # grade C ("use with caution") gets a hollow marker, explained under the axis
        caution = (
            shown["grade"].astype(str).eq("C").to_numpy()
            if "grade" in shown.columns
            else np.zeros(len(shown), dtype=bool)
        )
        ax.plot(est[~caution], y_shown[~caution], "o", color=_POINT, markersize=7, zorder=3)
        if caution.any():
            ax.plot(est[caution], y_shown[caution], "o", markerfacecolor="white",
                    markeredgecolor=_POINT, markeredgewidth=1.8, markersize=7,
                    zorder=3)  # fmt: skip
            fig.text(0.99 if lang == "fa" else 0.01, 0.005, t(text["caution"]),
                     ha="right" if lang == "fa" else "left", va="bottom", fontsize=8,
                     color=_SUPPRESSED, fontproperties=font)  # fmt: skip
    national = estimates[(estimates["level"] == "national") & (estimates["measure"] == measure)]
    if len(national) and np.isfinite(national["estimate"].astype(float)).any():
        value = float(national["estimate"].astype(float).dropna().iloc[0])
        # the line runs over the published agencies only, not the "too few" rows
        ax.vlines(value, len(hidden) - 0.5, count + 0.1, color=_SUPPRESSED, linestyle="--",
                  linewidth=1, zorder=1)  # fmt: skip
        # labelled in a row of its own above the agencies, so it never covers a title
        ax.annotate(
            t(f"{text['national']} {_number(lang, value, 1)}"),
            (value, count - 0.35),
            xytext=(4 if lang == "en" else -4, 0),
            textcoords="offset points",
            ha="left" if lang == "en" else "right",
            va="center",
            fontsize=9,
            color=_SUPPRESSED,
            fontproperties=font,
        )
    lo = float(np.nanmin(low)) if len(shown) else 0.0
    hi = float(np.nanmax(high)) if len(shown) else 100.0
    pad = max((hi - lo) * 0.08, 2.0)
    ax.set_xlim(max(0.0, lo - pad), min(100.0, hi + pad))
    if len(hidden):
        # next to the agency's name: on the right in Persian, on the left in English
        left, right = ax.get_xlim()
        edge, align = (right - 0.01 * (right - left), "right") if lang == "fa" else (
            left + 0.01 * (right - left), "left")  # fmt: skip
        for y in y_hidden:
            ax.text(edge, y, t(text["too_few"]), ha=align, va="center", fontsize=9,
                    color=_SUPPRESSED, fontproperties=font, style="italic")  # fmt: skip
        ax.axhline(len(hidden) - 0.5, color="#d0d7de", linewidth=0.8)
    ticks = np.concatenate([y_hidden, y_shown])
    codes = [*hidden["agency"].astype(str), *shown["agency"].astype(str)]
    ax.set_yticks(ticks, [t(names.get(c, c)) for c in codes])
    ax.set_ylim(-0.7, count + 0.1)
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    for side in ("top",):
        ax.spines[side].set_visible(False)
    if lang == "fa":
        ax.yaxis.tick_right()
        ax.spines["left"].set_visible(False)
        _persian_ticks(ax, font, "x")
    else:
        ax.spines["right"].set_visible(False)
    for tick in ax.get_yticklabels():
        tick.set_fontproperties(font)
    return fig


def trend_figure(
    points: pd.DataFrame,
    measure: str = "index",
    lang: Lang = "fa",
    title: str | None = None,
) -> Figure:
    """One domain's estimate over periods, its interval as a band.

    ``points`` has ``period`` (e.g. ``1404-12``, in time order), ``estimate``, ``ci_low``,
    ``ci_high`` and optionally ``suppressed``: suppressed periods are gaps marked "too few
    responses".
    """
    text = _check_lang(lang)
    _require(points, ["period", "estimate", "ci_low", "ci_high"], "points")
    if measure not in ("index", "satisfied"):
        raise ChartError(f"measure: expected 'index' or 'satisfied', got {measure!r}")
    t = _texter(lang)
    font = _font(lang)
    fig = _figure(8, 4.2)
    ax = fig.add_subplot()
    ax.set_title(t(title or text["trend_title"].format(measure=text[measure])),
                 fontproperties=font, fontsize=13)  # fmt: skip
    ax.set_ylabel(t(text[measure]), fontproperties=font)
    ax.set_xlabel(t(text["period"]), fontproperties=font)
    if points.empty:
        ax.text(0.5, 0.5, t(text["nothing"]), ha="center", va="center", fontproperties=font,
                transform=ax.transAxes)  # fmt: skip
        ax.set_axis_off()
        return fig
    x = np.arange(len(points), dtype=float)
    est = points["estimate"].to_numpy(dtype=float)
    low = points["ci_low"].to_numpy(dtype=float)
    high = points["ci_high"].to_numpy(dtype=float)
    hidden = ~np.isfinite(est)
    if "suppressed" in points.columns:
        hidden |= points["suppressed"].fillna(False).astype(bool).to_numpy()
    est, low, high = (np.where(hidden, np.nan, v) for v in (est, low, high))
    ax.fill_between(x, low, high, color=_BAND, alpha=0.6, linewidth=0, label="_band")
    ax.plot(x, est, "-o", color=_POINT, linewidth=2, markersize=6)
    # a period without a published neighbour has no band to sit in: it gets an error bar
    known = np.isfinite(est)
    before = np.concatenate([[False], known[:-1]])
    after = np.concatenate([known[1:], [False]])
    alone = known & ~before & ~after
    if alone.any():
        ax.errorbar(x[alone], est[alone], yerr=[(est - low)[alone], (high - est)[alone]],
                    fmt="none", ecolor=_POINT, capsize=4, linewidth=1.5)  # fmt: skip
    finite = np.isfinite(np.concatenate([low, high]))
    if finite.any():
        values = np.concatenate([low, high])[finite]
        pad = max(float(np.ptp(values)) * 0.15, 3.0)
        ax.set_ylim(max(0.0, values.min() - pad), min(100.0, values.max() + pad))
    else:
        ax.set_ylim(0, 100)
    bottom = ax.get_ylim()[0]
    for xi in x[hidden]:
        ax.annotate(t(text["too_few"]), (xi, bottom), xytext=(0, 6), textcoords="offset points",
                    ha="center", va="bottom", rotation=90, fontsize=8, color=_SUPPRESSED,
                    fontproperties=font)  # fmt: skip
    periods = [str(p) for p in points["period"]]
    if lang == "fa":
        periods = [persian_digits(p) for p in periods]
    # at most 12 labels, the latest period always labelled; the points stay
    step = -(-len(periods) // 12)
    shown = [p if (len(periods) - 1 - i) % step == 0 else "" for i, p in enumerate(periods)]
    ax.set_xticks(x, shown)
    ax.set_xlim(-0.5, len(points) - 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.grid(axis="y", color="#eeeeee")
    ax.spines["top"].set_visible(False)
    if lang == "fa":
        ax.yaxis.tick_right()
        ax.yaxis.set_label_position("right")
        ax.spines["left"].set_visible(False)
        _persian_ticks(ax, font, "y")
    else:
        ax.spines["right"].set_visible(False)
    for tick in ax.get_xticklabels():
        tick.set_fontproperties(font)
    return fig


def driver_figure(
    items: pd.DataFrame,
    agency: str = "",
    lang: Lang = "fa",
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Figure:
    """Each driver's importance (share of explained variance) beside its score.

    ``items`` is a release's items table; the rows of ``agency`` (``""`` = national) are
    drawn, most important first. Without importance (too few responses, collinear drivers)
    the scores are drawn and the reason is written where the importance would be.
    Suppressed scores are labelled "too few responses".
    """
    text = _check_lang(lang)
    _require(items, ["agency", "item", "estimate", "importance"], "items")
    t = _texter(lang)
    font = _font(lang)
    rows = items[items["agency"].fillna("").astype(str) == agency].copy()
    names = {str(k): str(v) for k, v in (labels or {}).items()}
    fig = _figure(9, max(2.8, 1.4 + 0.55 * max(len(rows), 1)))
    fig.suptitle(t(title or text["drivers_title"]), fontproperties=font, fontsize=13)
    if rows.empty:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, t(text["nothing"]), ha="center", va="center", fontproperties=font,
                transform=ax.transAxes)  # fmt: skip
        ax.set_axis_off()
        return fig
    rows["_order"] = rows["importance"].astype(float).fillna(-1.0)
    rows = rows.sort_values(["_order", "estimate"], ascending=True, kind="stable")
    y = np.arange(len(rows), dtype=float)
    importance = rows["importance"].to_numpy(dtype=float) * 100
    score = rows["estimate"].to_numpy(dtype=float)
    # Persian reads from the right: the item names and the importance panel sit on the right
    if lang == "fa":
        ax_score = fig.add_subplot(1, 2, 1)
        ax_imp = fig.add_subplot(1, 2, 2, sharey=ax_score)
    else:
        ax_imp = fig.add_subplot(1, 2, 1)
        ax_score = fig.add_subplot(1, 2, 2, sharey=ax_imp)
    has_importance = np.isfinite(importance)
    ax_imp.barh(y[has_importance], importance[has_importance], color=_POINT, height=0.6)
    if {"importance_low", "importance_high"} <= set(rows.columns) and has_importance.any():
        lo = rows["importance_low"].to_numpy(dtype=float)[has_importance] * 100
        hi = rows["importance_high"].to_numpy(dtype=float)[has_importance] * 100
        imp = importance[has_importance]
        ax_imp.errorbar(imp, y[has_importance], xerr=[imp - lo, hi - imp], fmt="none",
                        ecolor="#555555", capsize=3, linewidth=1)  # fmt: skip
    top = float(np.nanmax(rows.get("importance_high", rows["importance"]).astype(float)) * 100) \
        if has_importance.any() else 100.0  # fmt: skip
    ax_imp.set_xlim(0, max(top * 1.1, 10.0))
    if not has_importance.all():
        note = ""
        if "importance_note" in rows.columns:
            notes = rows["importance_note"].fillna("").astype(str)
            note = next((n for n in notes if n), "")
        if lang == "fa":
            note = _NOTES_FA.get(note, note)
        message = "\n".join(textwrap.wrap(text["no_importance"].format(note=note), 40))
        ax_imp.text(0.5, 0.5, t(message), ha="center", va="center", fontsize=9,
                    color=_SUPPRESSED, fontproperties=font, transform=ax_imp.transAxes,
                    bbox={"facecolor": "white", "edgecolor": "none"})  # fmt: skip
    shown = np.isfinite(score)
    ax_score.barh(y[shown], score[shown], color="#4a90c2", height=0.6)
    if {"ci_low", "ci_high"} <= set(rows.columns) and shown.any():
        lo = rows["ci_low"].to_numpy(dtype=float)[shown]
        hi = rows["ci_high"].to_numpy(dtype=float)[shown]
        ax_score.errorbar(score[shown], y[shown], xerr=[score[shown] - lo, hi - score[shown]],
                          fmt="none", ecolor="#555555", capsize=3, linewidth=1)  # fmt: skip
    for yi in y[~shown]:
        ax_score.text(50, yi, t(text["too_few"]), ha="center", va="center", fontsize=9,
                      color=_SUPPRESSED, fontproperties=font)  # fmt: skip
    ax_score.set_xlim(0, 100)
    ax_score.set_ylim(-0.6, len(rows) - 0.4)
    ax_imp.set_xlabel(t(text["importance"]), fontproperties=font, fontsize=9)
    ax_score.set_xlabel(t(text["score"]), fontproperties=font, fontsize=9)
    codes = rows["item"].astype(str).tolist()
    ax_imp.set_yticks(y, [t(names.get(c, c)) for c in codes])
    for ax in (ax_imp, ax_score):
        ax.grid(axis="x", color="#eeeeee")
        ax.set_axisbelow(True)
        ax.spines["top"].set_visible(False)
    if lang == "fa":
        # the importance panel is on the right: its bars grow leftwards, names on the right
        ax_imp.invert_xaxis()
        ax_imp.yaxis.tick_right()
        ax_imp.tick_params(axis="y", right=True, labelright=True, left=False, labelleft=False)
        ax_score.invert_xaxis()
        ax_imp.spines["left"].set_visible(False)
        ax_score.spines["left"].set_visible(False)
        ax_score.tick_params(axis="y", left=False, labelleft=False)
        _persian_ticks(ax_imp, font, "x")
        _persian_ticks(ax_score, font, "x")
    else:
        ax_imp.spines["right"].set_visible(False)
        ax_score.spines["right"].set_visible(False)
        ax_score.tick_params(axis="y", labelleft=False)
    for tick in ax_imp.get_yticklabels():
        tick.set_fontproperties(font)
    return fig


def forest_plot(
    estimates: pd.DataFrame,
    measure: str = "index",
    lang: Lang = "fa",
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    format: Format = "png",
    level: float = 0.95,
) -> bytes:
    """:func:`forest_figure` as PNG or SVG bytes."""
    _check_format(format)
    return render(forest_figure(estimates, measure, lang, labels, title, level), format)


def trend_chart(
    points: pd.DataFrame,
    measure: str = "index",
    lang: Lang = "fa",
    title: str | None = None,
    format: Format = "png",
) -> bytes:
    """:func:`trend_figure` as PNG or SVG bytes."""
    _check_format(format)
    return render(trend_figure(points, measure, lang, title), format)


def driver_bars(
    items: pd.DataFrame,
    agency: str = "",
    lang: Lang = "fa",
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    format: Format = "png",
) -> bytes:
    """:func:`driver_figure` as PNG or SVG bytes."""
    _check_format(format)
    return render(driver_figure(items, agency, lang, labels, title), format)
