"""Charts of a publication release, as PNG or SVG bytes, in Persian (right-to-left) or English.

Each chart is a function returning a matplotlib ``Figure`` (``*_figure``) and one returning
its bytes (``forest_plot``, ``trend_chart``, ``driver_bars``):

* :func:`forest_plot`: agencies' estimates with their intervals, best on top; agencies
  whose estimate is suppressed are listed as "too few responses", never drawn as numbers;
* :func:`trend_chart`: one domain's estimate over periods with its interval as a band;
* :func:`driver_bars`: each driver item's importance, its score beside its name.

Phone-sized: every chart is drawn :data:`analysis.charts.PHONE_WIDTH` inches wide with no text
smaller than :data:`analysis.charts.MIN_FONT` points, so on a 360-pixel phone, where the image
is about 326 pixels wide, no text is smaller than 12 pixels; names stand above their rows
instead of beside them, so a long agency name does not squeeze the plot.

Drawn like :mod:`analysis.charts`: the object API on an Agg canvas (no pyplot global state,
safe in worker threads), Persian shaped by :func:`analysis.charts._shape` in the first
installed Persian font, Persian digits in Persian charts, and in Persian the names on the
right (reading starts there). SVG text is drawn as paths, so a browser needs no font.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.ticker import FuncFormatter, MaxNLocator

from analysis.charts import (
    MIN_FONT,
    PHONE_WIDTH,
    TITLE_FONT,
    ChartError,
    _font,
    _shape,
    legible,
    wrap,
)
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
        "score": "score {value}",
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
        "score": "امتیاز {value}",
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
_SUPPRESSED = "#5f6b6d"
_BAND = "#9ec5e8"
_ROW = 0.7  # inches per agency or item row: its name above, its line or bar below


def _check_format(format: str) -> None:
    if format not in ("png", "svg"):
        raise ChartError(f"format: expected 'png' or 'svg', got {format!r}")


def render(fig: Figure, format: Format = "png") -> bytes:
    """The figure as PNG (200 dpi: sharp at twice a phone's width) or SVG bytes, without
    timestamps (a PNG of identical input is identical bytes, so pages can cache it; SVG
    element ids are random). Text too small for a phone is enlarged first."""
    _check_format(format)
    legible(fig)
    buffer = io.BytesIO()
    metadata = {"Date": None} if format == "svg" else {"Software": None}
    fig.savefig(buffer, format=format, dpi=200, metadata=metadata)
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


def _figure(height: float, bottom: float = 0.0) -> Figure:
    """A phone-wide figure; `bottom` inches are kept free below the axes for notes."""
    room = ConstrainedLayoutEngine(rect=(0, bottom / height, 1, 1 - bottom / height))
    fig = Figure(figsize=(PHONE_WIDTH, height), dpi=100, layout=room)
    FigureCanvasAgg(fig)
    return fig


def _require(table: pd.DataFrame, columns: list[str], role: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ChartError(f"{role}: expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ChartError(f"{role}: expected columns {columns}, missing {missing}")


def _title(ax: Axes, text: str, lang: str, font: FontProperties) -> None:
    ax.set_title(_texter(lang)(wrap(text, 38)), fontproperties=font, fontsize=TITLE_FONT)


def _nothing(ax: Axes, lang: str, font: FontProperties) -> None:
    ax.text(0.5, 0.5, _texter(lang)(_TEXT[lang]["nothing"]), ha="center", va="center",
            fontproperties=font, fontsize=MIN_FONT, transform=ax.transAxes)  # fmt: skip
    ax.set_axis_off()


def _row_names(
    ax: Axes,
    y: np.ndarray,
    names: list[str],
    lang: str,
    font: FontProperties,
    color: str = "#1b1b1b",
) -> None:
    """Each row's name just above its line, from the reading side (right in Persian)."""
    t = _texter(lang)
    x, align = (1.0, "right") if lang == "fa" else (0.0, "left")
    for yi, name in zip(y, names, strict=True):
        ax.annotate(t(name), (x, yi), xycoords=ax.get_yaxis_transform(), xytext=(0, 3),
                    textcoords="offset points", ha=align, va="bottom", fontproperties=font,
                    fontsize=MIN_FONT, color=color)  # fmt: skip


def _short(text: str, width: int) -> str:
    """The text's first line at `width` characters, with an ellipsis when cut."""
    first = wrap(text, width).split("\n")[0]
    return first if first == text else first.rstrip("،,") + "…"


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
    line). ``labels`` maps agency codes to display names, written above each agency's line
    with its estimate.
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
    caution = (
        shown["grade"].astype(str).eq("C").to_numpy()
        if "grade" in shown.columns
        else np.zeros(len(shown), dtype=bool)
    )
    legend = 0.5 if caution.any() else 0.0
    fig = _figure(max(2.6, 1.6 + _ROW * max(count, 1) + legend), bottom=legend)
    ax = fig.add_subplot()
    level_text = _number(lang, level * 100) + ("" if lang == "fa" else "%")
    _title(ax, title or text["forest_title"].format(measure=text[measure], level=level_text),
           lang, font)  # fmt: skip
    ax.set_xlabel(t(text[measure]), fontproperties=font, fontsize=MIN_FONT)
    if count == 0:
        _nothing(ax, lang, font)
        return fig
    # suppressed agencies at the bottom (y = 0..), shown ones above, best at the top
    y_hidden = np.arange(len(hidden), dtype=float)
    y_shown = np.arange(len(shown), dtype=float) + len(hidden)
    est = shown["estimate"].to_numpy(dtype=float)
    low = shown["ci_low"].to_numpy(dtype=float)
    high = shown["ci_high"].to_numpy(dtype=float)
    if len(shown):
        ax.hlines(y_shown, low, high, color=_POINT, linewidth=2.4, zorder=2)
        # grade C ("use with caution") gets a hollow marker, explained under the axis
        ax.plot(est[~caution], y_shown[~caution], "o", color=_POINT, markersize=7, zorder=3)
        if caution.any():
            ax.plot(est[caution], y_shown[caution], "o", markerfacecolor="white",
                    markeredgecolor=_POINT, markeredgewidth=1.8, markersize=7,
                    zorder=3)  # fmt: skip
            fig.text(0.98 if lang == "fa" else 0.02, 0.01, t(text["caution"]),
                     ha="right" if lang == "fa" else "left", va="bottom", fontsize=MIN_FONT,
                     color=_SUPPRESSED, fontproperties=font)  # fmt: skip
    codes = shown["agency"].astype(str).tolist()
    _row_names(ax, y_shown, [names.get(c, c) for c in codes], lang, font)
    x, align = (0.0, "left") if lang == "fa" else (1.0, "right")  # the estimate: the far side
    for yi, value in zip(y_shown, est, strict=True):
        ax.annotate(_number(lang, value, 1), (x, yi), xycoords=ax.get_yaxis_transform(),
                    xytext=(0, 3), textcoords="offset points", ha=align, va="bottom",
                    fontsize=MIN_FONT, fontweight="bold", color=_POINT,
                    fontproperties=font)  # fmt: skip
    national = estimates[(estimates["level"] == "national") & (estimates["measure"] == measure)]
    top = count - 0.45
    if len(national) and np.isfinite(national["estimate"].astype(float)).any():
        value = float(national["estimate"].astype(float).dropna().iloc[0])
        # the line runs over the published agencies only, not the "too few" rows
        ax.vlines(value, len(hidden) - 0.4, count + 0.05, color=_SUPPRESSED, linestyle="--",
                  linewidth=1, zorder=1)  # fmt: skip
        # labelled in a row of its own above the agencies, so it never covers a name
        ax.annotate(t(f"{text['national']} {_number(lang, value, 1)}"), (value, count + 0.1),
                    xytext=(3 if lang == "en" else -3, 0), textcoords="offset points",
                    ha="left" if lang == "en" else "right", va="bottom", fontsize=MIN_FONT,
                    color=_SUPPRESSED, fontproperties=font)  # fmt: skip
        top = count + 0.75
    lo = float(np.nanmin(low)) if len(shown) else 0.0
    hi = float(np.nanmax(high)) if len(shown) else 100.0
    pad = max((hi - lo) * 0.08, 2.0)
    ax.set_xlim(max(0.0, lo - pad), min(100.0, hi + pad))
    if len(hidden):
        hidden_codes = hidden["agency"].astype(str).tolist()
        _row_names(ax, y_hidden, [names.get(c, c) for c in hidden_codes], lang, font,
                   color=_SUPPRESSED)  # fmt: skip
        x, align = (0.0, "left") if lang == "fa" else (1.0, "right")  # where numbers stand
        for yi in y_hidden:
            ax.annotate(t(text["too_few"]), (x, yi), xycoords=ax.get_yaxis_transform(),
                        xytext=(0, 3), textcoords="offset points", ha=align, va="bottom",
                        fontsize=MIN_FONT, color=_SUPPRESSED, fontproperties=font,
                        style="italic")  # fmt: skip
        ax.axhline(len(hidden) - 0.35, color="#d0d7de", linewidth=0.8)
    ax.set_yticks([])
    ax.set_ylim(-0.45, top)
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    for side in ("top", "left", "right"):
        ax.spines[side].set_visible(False)
    if lang == "fa":
        _persian_ticks(ax, font, "x")
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
    fig = _figure(3.6)
    ax = fig.add_subplot()
    _title(ax, title or text["trend_title"].format(measure=text[measure]), lang, font)
    ax.set_ylabel(t(wrap(text[measure], 24)), fontproperties=font, fontsize=MIN_FONT)
    ax.set_xlabel(t(text["period"]), fontproperties=font, fontsize=MIN_FONT)
    if points.empty:
        _nothing(ax, lang, font)
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
                    ha="center", va="bottom", rotation=90, fontsize=MIN_FONT,
                    color=_SUPPRESSED, fontproperties=font)  # fmt: skip
    periods = [str(p) for p in points["period"]]
    if lang == "fa":
        periods = [persian_digits(p) for p in periods]
    # at most 4 labels on a phone, the latest period always labelled; the points stay
    step = -(-len(periods) // 4)
    shown = [p if (len(periods) - 1 - i) % step == 0 else "" for i, p in enumerate(periods)]
    ax.set_xticks(x, shown)
    ax.set_xlim(-0.5, len(points) - 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
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
    """Each driver's importance (share of explained variance), its score beside its name.

    ``items`` is a release's items table; the rows of ``agency`` (``""`` = national) are
    drawn, most important on top. Without importance (too few responses, collinear drivers)
    the names and scores are listed and the reason is written under them. Suppressed
    scores read "too few responses".
    """
    text = _check_lang(lang)
    _require(items, ["agency", "item", "estimate", "importance"], "items")
    t = _texter(lang)
    font = _font(lang)
    rows = items[items["agency"].fillna("").astype(str) == agency].copy()
    names = {str(k): str(v) for k, v in (labels or {}).items()}
    importance = rows["importance"].to_numpy(dtype=float) * 100
    has_importance = np.isfinite(importance)
    note_room = 0.0 if has_importance.all() else 0.75
    fig = _figure(max(2.6, 1.5 + _ROW * max(len(rows), 1) + note_room), bottom=note_room)
    ax = fig.add_subplot()
    _title(ax, title or text["drivers_title"], lang, font)
    if rows.empty:
        _nothing(ax, lang, font)
        return fig
    rows["_order"] = rows["importance"].astype(float).fillna(-1.0)
    rows = rows.sort_values(["_order", "estimate"], ascending=True, kind="stable")
    y = np.arange(len(rows), dtype=float)
    importance = rows["importance"].to_numpy(dtype=float) * 100
    has_importance = np.isfinite(importance)
    score = rows["estimate"].to_numpy(dtype=float)
    ax.barh(y[has_importance], importance[has_importance], color=_POINT, height=0.34)
    if {"importance_low", "importance_high"} <= set(rows.columns) and has_importance.any():
        lo = rows["importance_low"].to_numpy(dtype=float)[has_importance] * 100
        hi = rows["importance_high"].to_numpy(dtype=float)[has_importance] * 100
        imp = importance[has_importance]
        ax.errorbar(imp, y[has_importance], xerr=[imp - lo, hi - imp], fmt="none",
                    ecolor="#555555", capsize=3, linewidth=1)  # fmt: skip
    top = (
        float(np.nanmax(rows.get("importance_high", rows["importance"]).astype(float)) * 100)
        if has_importance.any()
        else 100.0
    )
    ax.set_xlim(0, max(top * 1.1, 10.0))
    codes = rows["item"].astype(str).tolist()
    _row_names(ax, y, [_short(names.get(c, c), 30) for c in codes], lang, font)
    x, align = (0.0, "left") if lang == "fa" else (1.0, "right")  # the score: the far side
    for yi, value in zip(y, score, strict=True):
        label = text["too_few"] if not np.isfinite(value) else text["score"].format(
            value=_number(lang, value, 1))  # fmt: skip
        ax.annotate(t(label), (x, yi), xycoords=ax.get_yaxis_transform(), xytext=(0, 5),
                    textcoords="offset points", ha=align, va="bottom", fontsize=MIN_FONT,
                    color=_SUPPRESSED, fontproperties=font)  # fmt: skip
    if not has_importance.all():
        note = ""
        if "importance_note" in rows.columns:
            notes = rows["importance_note"].fillna("").astype(str)
            note = next((n for n in notes if n), "")
        if lang == "fa":
            note = _NOTES_FA.get(note, note)
        message = wrap(text["no_importance"].format(note=note), 44)
        fig.text(0.5, 0.02, t(message), ha="center", va="bottom", fontsize=MIN_FONT,
                 color=_SUPPRESSED, fontproperties=font)  # fmt: skip
    ax.set_ylim(-0.5, len(rows) - 0.2)
    ax.set_yticks([])
    ax.set_xlabel(t(wrap(text["importance"], 40)), fontproperties=font, fontsize=MIN_FONT)
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    for side in ("top", "left", "right"):
        ax.spines[side].set_visible(False)
    if lang == "fa":
        ax.invert_xaxis()  # bars grow from the right, where the names start
        _persian_ticks(ax, font, "x")
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
