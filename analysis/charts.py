"""Charts for analysis results. The only module of ``analysis`` that imports matplotlib.

Figures are built with the object API on the Agg canvas and returned; nothing touches
pyplot's global state, so charts can be drawn from worker threads and tests.

Persian text is shaped: matplotlib 3.11+ does it itself (libraqm); for older versions
``arabic_reshaper`` joins the letters and ``python-bidi`` puts them in visual order before
matplotlib draws them. It is set in the first installed font with
Persian glyphs: Vazirmatn, Noto Sans Arabic or Noto Naskh Arabic (Debian's fonts-vazirmatn
or fonts-noto-core), with DejaVu Sans for Latin text. DejaVu Sans alone is not enough: it
lacks most Arabic presentation forms and garbles Persian, so a Persian chart without one of
those fonts raises ``ChartError``. Numbers use Persian digits in Persian charts.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from arabic_reshaper import reshape
from bidi.algorithm import get_display
from matplotlib import font_manager, ft2font
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter

from analysis.errors import AnalysisError

__all__ = [
    "MIN_FONT",
    "PHONE_WIDTH",
    "TITLE_FONT",
    "ChartError",
    "importance_performance",
    "legible",
    "wrap",
]

Lang = Literal["fa", "en"]
_PERSIAN_FONTS = ("Vazirmatn", "Noto Sans Arabic", "Noto Naskh Arabic")
_NATIVE_SHAPING = hasattr(ft2font.FT2Font, "_layout")  # libraqm text layout, matplotlib >= 3.11
_PERSIAN_DIGITS = str.maketrans("0123456789.-", "۰۱۲۳۴۵۶۷۸۹٫−")
# Charts are drawn for a phone: 4 inches (288 points) wide, shown about 326 pixels wide on a
# 360-pixel screen, so 11-point text is 12.4 pixels there; wider screens show them at most
# 30rem wide. No text is drawn smaller than MIN_FONT (see legible).
PHONE_WIDTH = 4.0
MIN_FONT = 11.0
TITLE_FONT = 12.5

# Chart furniture in both languages. Driver names come from the caller (instrument files).
_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "x": "Importance (share of explained variance, %)",
        "y": "Performance (mean score)",
        "fix": "Fix first",
        "keep": "Keep it up",
        "low": "Lower priority",
        "over": "Possible overinvestment",
        "title": "What to improve first",
        "no_data": "No driver analysis: {note}",
        "too_few_responses": "too few complete responses for a reliable ranking",
        "collinear_drivers": "the drivers move together too closely to be told apart",
        "constant_driver": "the overall score or a driver does not vary",
    },
    "fa": {
        "x": "اهمیت (سهم از واریانس تبیین‌شده، درصد)",
        "y": "عملکرد (میانگین امتیاز)",
        "fix": "اولویت اصلاح",
        "keep": "حفظ وضع موجود",
        "low": "اولویت کمتر",
        "over": "سرمایه‌گذاری بیش از نیاز",
        "title": "چه چیزی را اول بهبود دهیم",
        "no_data": "تحلیل محرک‌ها ممکن نیست: {note}",
        "too_few_responses": "پاسخ‌های کامل برای رتبه‌بندی قابل اتکا کافی نیست",
        "collinear_drivers": "محرک‌ها آن‌قدر با هم تغییر می‌کنند که از هم جدا نمی‌شوند",
        "constant_driver": "امتیاز کلی یا یکی از محرک‌ها تغییری ندارد",
    },
}


# analysis.release.IMPORTANCE_NOTES (the sentences a release stores) -> the keys above
_NOTE_KEYS = {
    "too few complete responses to rank the drivers": "too_few_responses",
    "the drivers move together too closely to be told apart": "collinear_drivers",
    "the index or a driver does not vary": "constant_driver",
}


class ChartError(AnalysisError, ValueError):
    """A chart cannot be drawn from the given table (names the field, expected and got)."""


def importance_performance(
    table: pd.DataFrame,
    lang: Lang = "fa",
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Figure:
    """Quadrant chart of driver importance (x) against performance (y) for one domain.

    ``table`` is the part of ``analysis.drivers.key_drivers``'s result for one scope/domain
    (columns driver, importance, ci_low, ci_high, performance, note). The dashed lines sit
    at the average importance (1/p) and the average performance of the drivers; drivers in
    the lower right (important, scoring low) are the ones to fix first. ``labels`` maps
    driver columns to display names. The chart is phone-wide: the points carry numbers and
    the names are listed under the chart. A domain whose analysis carries a note gets a figure
    stating the note instead of points.
    """
    if lang not in _TEXT:
        raise ChartError(f"lang: expected 'fa' or 'en', got {lang!r}")
    needed = ["driver", "importance", "performance"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ChartError(f"table: expected columns {needed}, missing {missing}")
    if table["driver"].duplicated().any():
        raise ChartError(
            "table: expected one row per driver (filter key_drivers' result to one domain), "
            f"got {len(table)} rows for {table['driver'].nunique()} drivers"
        )
    text = _TEXT[lang]
    font = _font(lang)

    def t(value: str) -> str:
        return _shape(value) if lang == "fa" else value

    names = [str((labels or {}).get(d, d)) for d in table["driver"]]
    notes = table["note"].fillna("") if "note" in table.columns else pd.Series([""])
    importance = table["importance"].to_numpy(dtype=float) * 100
    performance = table["performance"].to_numpy(dtype=float)
    drawable = not notes.astype(bool).any() and np.isfinite(importance).all()
    legend = 0.3 * len(names) + 0.15 if drawable else 0.0
    height = 4.2 + legend
    room = ConstrainedLayoutEngine(rect=(0, legend / height, 1, 1 - legend / height))
    fig = Figure(figsize=(PHONE_WIDTH, height), dpi=100, layout=room)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(t(wrap(title or text["title"], 38)), fontproperties=font, fontsize=TITLE_FONT)
    if not drawable:
        note = next((n for n in notes if n), "missing importance")
        key = _NOTE_KEYS.get(note, note.split(":", 1)[0])
        note = text.get(key, note)
        ax.text(0.5, 0.5, t(text["no_data"].format(note=note)), ha="center", va="center",
                wrap=True, fontproperties=font, fontsize=MIN_FONT,
                transform=ax.transAxes)  # fmt: skip
        ax.set_axis_off()
        return fig

    x_mid = 100.0 / len(names)
    y_mid = float(np.mean(performance))
    fix = (importance >= x_mid) & (performance < y_mid)
    colors = np.where(fix, "#c0392b", "#2c3e50")
    if {"ci_low", "ci_high"} <= set(table.columns):
        low = table["ci_low"].to_numpy(dtype=float) * 100
        high = table["ci_high"].to_numpy(dtype=float) * 100
        ax.errorbar(
            importance,
            performance,
            xerr=[importance - low, high - importance],
            fmt="none",
            ecolor="#95a5a6",
            elinewidth=1,
            capsize=3,
            zorder=1,
        )
    ax.scatter(importance, performance, s=70, c=colors, zorder=2)
    # points carry numbers; the names are listed under the chart (a phone has no room for
    # names beside the points)
    numbers = [_digits(str(i + 1), lang) for i in range(len(names))]
    for x, y, number in zip(importance, performance, numbers, strict=True):
        ax.annotate(number, (x, y), xytext=(6, 4), textcoords="offset points",
                    fontproperties=font, fontsize=MIN_FONT)  # fmt: skip
    for i, (number, name) in enumerate(zip(numbers, names, strict=True)):
        line = t(f"{number}. {wrap(name, 40).splitlines()[0]}")
        fig.text(0.97 if lang == "fa" else 0.03, legend / height - (i + 1) * 0.3 / height,
                 line, ha="right" if lang == "fa" else "left", va="bottom",
                 fontproperties=font, fontsize=MIN_FONT)  # fmt: skip
    ax.axvline(x_mid, color="#7f8c8d", linestyle="--", linewidth=1)
    ax.axhline(y_mid, color="#7f8c8d", linestyle="--", linewidth=1)
    corners = {
        "fix": (0.98, 0.02, "right", "bottom"),
        "keep": (0.98, 0.98, "right", "top"),
        "low": (0.02, 0.02, "left", "bottom"),
        "over": (0.02, 0.98, "left", "top"),
    }
    for key, (cx, cy, ha, va) in corners.items():
        ax.text(
            cx,
            cy,
            t(wrap(text[key], 16)),
            transform=ax.transAxes,
            ha=ha,
            va=va,
            fontsize=MIN_FONT,
            fontproperties=font,
            color="#c0392b" if key == "fix" else "#5f6b6d",
        )
    ax.set_xlabel(t(wrap(text["x"], 36)), fontproperties=font, fontsize=MIN_FONT)
    ax.set_ylabel(t(text["y"]), fontproperties=font, fontsize=MIN_FONT)
    ax.set_xlim(0, max(float(np.nanmax(high if "ci_high" in table else importance)), x_mid) * 1.15)
    pad = max(float(np.ptp(performance)), 1.0) * 0.3
    ax.set_ylim(performance.min() - pad, performance.max() + pad)
    ax.tick_params(labelsize=MIN_FONT)
    if lang == "fa":
        persian = FuncFormatter(lambda v, _pos: f"{v:g}".translate(_PERSIAN_DIGITS))
        ax.xaxis.set_major_formatter(persian)
        ax.yaxis.set_major_formatter(persian)
        for tick in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
            tick.set_fontproperties(font)
    return fig


def _digits(text: str, lang: str) -> str:
    return text.translate(_PERSIAN_DIGITS) if lang == "fa" else text


def wrap(text: str, width: int) -> str:
    """Text broken into lines of at most `width` characters at spaces (a phone-wide chart)."""
    return "\n".join(textwrap.wrap(text, width, break_long_words=False)) or text


def legible(fig: Figure) -> None:
    """No text of the figure smaller than MIN_FONT points (tick labels included, also those
    drawn later), so that a phone-wide chart is readable on a phone."""
    for ax in fig.axes:
        ax.tick_params(labelsize=MIN_FONT)
    for text in fig.findobj(Text):
        if text.get_fontproperties().get_size_in_points() < MIN_FONT:
            text.set_fontsize(MIN_FONT)


def _shape(value: str) -> str:
    """Persian text ready for matplotlib.

    Matplotlib 3.11 and later shape text themselves (libraqm: joining and right-to-left
    order), and shaping twice garbles it; older versions draw code points one by one, so
    the letters are joined (arabic-reshaper) and put in visual order (python-bidi) first.
    """
    if _NATIVE_SHAPING:
        return value
    return get_display(reshape(value))


@cache
def _font(lang: str) -> font_manager.FontProperties:
    """The chart font; for Persian the first installed family with Persian glyphs.

    DejaVu Sans is the fallback for Latin text only: it lacks most Arabic presentation
    forms, so Persian drawn with it is garbled. Without a Persian font this fails loudly.
    """
    if lang != "fa":
        return font_manager.FontProperties(family="DejaVu Sans")
    family = _persian_families()
    if not family:
        for path in font_manager.findSystemFonts():  # fonts installed after the cache
            name = path.rsplit("/", 1)[-1].lower()
            if name.startswith(("vazirmatn", "notosansarabic", "notonaskharabic")):
                font_manager.fontManager.addfont(path)
        family = _persian_families()
    if not family:  # the copy shipped with the package (OFL), so a bare machine draws Persian
        for font_file in sorted((Path(__file__).parent / "fonts").glob("*.ttf")):
            font_manager.fontManager.addfont(str(font_file))
        family = _persian_families()
    if not family:
        raise ChartError(
            "no font with Persian glyphs: install Debian's fonts-noto-core (Noto Sans Arabic) "
            "or fonts-vazirmatn"
        )
    return font_manager.FontProperties(family=[*family, "DejaVu Sans"])


def _persian_families() -> list[str]:
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return [name for name in _PERSIAN_FONTS if name in installed]
