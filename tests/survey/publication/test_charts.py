"""Publication charts: valid PNG/SVG bytes, Persian shaped and in a Persian font, both languages."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from PIL import Image

from analysis.release import ReleaseTables, compute_release
from survey.publication.charts import (
    ChartError,
    driver_bars,
    driver_figure,
    forest_figure,
    forest_plot,
    trend_chart,
    trend_figure,
)
from tests.analysis.test_release import ITEMS, make_export

NAMES_FA = {"TAX": "سازمان امور مالیاتی", "EDU": "آموزش و پرورش", "HLT": "وزارت بهداشت",
            "POS": "شرکت ملی پست"}  # fmt: skip


@pytest.fixture(scope="module")
def release() -> ReleaseTables:
    return compute_release(*make_export(), drivers=ITEMS)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.verify()
    return Image.open(io.BytesIO(data)).size


def svg_root(data: bytes) -> ET.Element:
    root = ET.fromstring(data)
    assert root.tag.endswith("svg")
    return root


def glyphs_after(svg: str, label: str) -> list[str]:
    """Glyph ids drawn for the text whose comment is ``label`` (matplotlib writes one)."""
    start = svg.index(f"<!-- {label} -->")
    block = svg[start : svg.index("</g>", svg.index("<use", start))]
    return re.findall(r'<use xlink:href="#([^"]+)"', block)


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_forest_plot_png_and_svg(release: ReleaseTables, lang: str) -> None:
    labels = NAMES_FA if lang == "fa" else None
    png = forest_plot(release.estimates, lang=lang, labels=labels)
    width, height = png_size(png)
    assert width == 800 and height > 300  # drawn 4 inches wide (a phone), at 200 dpi
    svg = forest_plot(release.estimates, lang=lang, labels=labels, format="svg").decode()
    svg_root(svg.encode())
    too_few = "پاسخ کافی نیست" if lang == "fa" else "too few responses"
    assert f"<!-- {too_few} -->" in svg  # POS is suppressed: listed, not drawn
    if lang == "fa":
        assert "<!-- شرکت ملی پست -->" in svg
        assert "NotoSansArabic" in svg or "Vazirmatn" in svg
        assert "<!-- ۶۰ -->" in svg or "<!-- ۷۰ -->" in svg  # Persian digits on the axis


def test_persian_letters_are_joined(release: ReleaseTables) -> None:
    """Shaped text uses a different glyph for a letter at the start, middle and end of a
    word; unshaped text would repeat the isolated form."""
    svg = forest_plot(release.estimates, lang="fa", labels={"TAX": "ممم"}, format="svg").decode()
    glyphs = glyphs_after(svg, "ممم")
    assert len(glyphs) == 3
    assert len(set(glyphs)) == 3


def test_suppressed_agency_has_no_number_in_the_chart(release: ReleaseTables) -> None:
    est = release.estimates.copy()
    pick = (est["level"] == "agency") & (est["measure"] == "index") & (est["agency"] == "POS")
    assert est.loc[pick, "suppressed"].all()
    svg = forest_plot(est, lang="en", format="svg").decode()
    assert svg.count("<!-- too few responses -->") == 1


def test_trend_chart_with_a_suppressed_period() -> None:
    points = pd.DataFrame(
        {
            "period": ["1404-10", "1404-11", "1404-12", "1405-01"],
            "estimate": [60.0, 62.0, np.nan, 70.0],
            "ci_low": [55.0, 58.0, np.nan, 66.0],
            "ci_high": [65.0, 66.0, np.nan, 74.0],
            "suppressed": [False, False, True, False],
        }
    )
    for lang in ("fa", "en"):
        png_size(trend_chart(points, lang=lang))
        svg = trend_chart(points, lang=lang, format="svg").decode()
        svg_root(svg.encode())
    assert "<!-- ۱۴۰۴-۱۲ -->" in trend_chart(points, lang="fa", format="svg").decode()
    assert "<!-- too few responses -->" in svg


def test_driver_bars_national_and_without_importance(release: ReleaseTables) -> None:
    names = {"q_time": "زمان انتظار", "q_information": "اطلاع‌رسانی", "q_ease": "سهولت انجام کار"}
    for lang in ("fa", "en"):
        png_size(driver_bars(release.items, lang=lang, labels=names if lang == "fa" else None))
    svg = driver_bars(release.items, agency="POS", lang="fa", labels=names, format="svg").decode()
    assert "<!-- زمان انتظار -->" in svg
    assert "اهمیت در دسترس نیست" in svg  # the note, in Persian


def test_empty_inputs_give_a_chart_not_a_crash(release: ReleaseTables) -> None:
    png_size(forest_plot(release.estimates.iloc[:0], lang="fa"))
    png_size(trend_chart(pd.DataFrame(columns=["period", "estimate", "ci_low", "ci_high"])))
    png_size(driver_bars(release.items, agency="NOPE", lang="en"))


def test_same_input_same_png_bytes(release: ReleaseTables) -> None:
    assert forest_plot(release.estimates) == forest_plot(release.estimates)


def test_bad_arguments_are_named(release: ReleaseTables) -> None:
    with pytest.raises(ChartError, match="lang"):
        forest_plot(release.estimates, lang="de")  # type: ignore[arg-type]
    with pytest.raises(ChartError, match="format"):
        forest_plot(release.estimates, format="gif")  # type: ignore[arg-type]
    with pytest.raises(ChartError, match="measure"):
        forest_plot(release.estimates, measure="mood")
    with pytest.raises(ChartError, match="missing"):
        trend_chart(pd.DataFrame({"period": ["1405-01"]}))


def test_grade_c_is_marked_use_with_caution(release: ReleaseTables) -> None:
    est = release.estimates.copy()
    svg = forest_plot(est, lang="en", format="svg").decode()
    assert "use with caution" not in svg
    pick = (est["level"] == "agency") & (est["agency"] == "HLT")
    est.loc[pick, "grade"] = "C"
    assert (
        "<!-- ○ grade C: use with caution -->" in forest_plot(est, lang="en", format="svg").decode()
    )
    assert "با احتیاط" in forest_plot(est, lang="fa", format="svg").decode()


def visible_texts(fig: Figure) -> list[tuple[str, Bbox]]:
    """Every drawn text of the figure with its box in pixels (tick labels inside the view)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    texts: list[Text] = list(fig.texts)  # holds the figure's suptitle too
    for ax in fig.axes:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks():
                if low - 1e-9 <= tick.get_loc() <= high + 1e-9:
                    texts += [t for t in (tick.label1, tick.label2) if t.get_visible()]
    out = []
    for text in texts:
        if text.get_visible() and text.get_text().strip():
            out.append((text.get_text(), text.get_window_extent(renderer)))
    return out


def overlaps(fig: Figure) -> list[tuple[str, str]]:
    boxes = visible_texts(fig)
    found = []
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            shrunk = Bbox.from_extents(box_a.x0 + 1, box_a.y0 + 1, box_a.x1 - 1, box_a.y1 - 1)
            if shrunk.overlaps(box_b):
                found.append((a, b))
    return found


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_no_text_overlaps_another(release: ReleaseTables, lang: str) -> None:
    est = release.estimates.copy()
    est.loc[(est["level"] == "agency") & (est["agency"] == "HLT"), "grade"] = "C"
    labels = NAMES_FA if lang == "fa" else {"TAX": "Tax Affairs Organisation"}
    assert overlaps(forest_figure(est, lang=lang, labels=labels)) == []
    points = pd.DataFrame(
        {
            "period": [f"{1403 + i // 12}-{i % 12 + 1:02d}" for i in range(18)],
            "estimate": np.linspace(60, 70, 18),
            "ci_low": np.linspace(55, 66, 18),
            "ci_high": np.linspace(65, 74, 18),
            "suppressed": [False] * 17 + [True],
        }
    )
    assert overlaps(trend_figure(points, lang=lang)) == []
    names = {"q_time": "مدت زمانی که انجام خدمت طول کشید", "q_ease": "سهولت کل فرایند"}
    assert overlaps(driver_figure(release.items, "TAX", lang=lang, labels=names)) == []
    assert overlaps(driver_figure(release.items, "POS", lang=lang, labels=names)) == []


def test_no_overlap_with_twenty_agencies() -> None:
    rng = np.random.default_rng(4)
    agencies = {
        f"A{i:02d}": (float(rng.uniform(45, 85)), int(rng.choice([3, 12, 30]))) for i in range(20)
    }
    estimates = compute_release(*make_export(agencies=agencies)).estimates
    names = {code: f"سازمان شماره {i} استان" for i, code in enumerate(agencies)}
    for lang, labels in (("fa", names), ("en", None)):
        fig = forest_figure(estimates, lang=lang, labels=labels)
        assert overlaps(fig) == []
        assert fig.get_size_inches()[1] > 8  # grows with the number of agencies
