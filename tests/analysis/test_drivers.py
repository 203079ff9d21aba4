"""Key-driver analysis and its importance x performance chart."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from analysis.charts import ChartError, importance_performance

PERSIAN_FONTS = {"Vazirmatn", "Noto Sans Arabic", "Noto Naskh Arabic"}


def driver_table(note: str = "") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver": ["q_time", "q_courtesy", "q_clarity", "q_outcome"],
            "importance": [0.40, 0.15, 0.10, 0.35],
            "ci_low": [0.30, 0.10, 0.05, 0.25],
            "ci_high": [0.50, 0.20, 0.15, 0.45],
            "performance": [55.0, 80.0, 70.0, 62.0],
            "note": note,
        }
    )


LABELS_FA = {
    "q_time": "زمان انتظار",
    "q_courtesy": "احترام کارکنان",
    "q_clarity": "وضوح راهنمایی",
    "q_outcome": "نتیجه خدمت",
}


def test_chart_marks_important_low_scoring_drivers_to_fix_first() -> None:
    fig = importance_performance(driver_table(), lang="en")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    points = ax.collections[-1]
    np.testing.assert_allclose(points.get_offsets(), [[40, 55], [15, 80], [10, 70], [35, 62]])
    red = np.isclose(points.get_facecolors()[:, 0], 0xC0 / 255)
    assert red.tolist() == [True, False, False, True]  # above-average importance, below par
    texts = {t.get_text() for t in ax.texts}
    assert {"Fix first", "Keep it up", "q_time", "q_outcome"} <= texts


def test_persian_chart_uses_persian_labels_font_and_digits() -> None:
    fig = importance_performance(driver_table(), lang="fa", labels=LABELS_FA)
    ax = fig.axes[0]
    fig.canvas.draw()
    assert "زمان انتظار" in {t.get_text() for t in ax.texts}
    assert ax.xaxis.label.get_fontname() in PERSIAN_FONTS
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "۲۰" in ticks
    png = io.BytesIO()
    fig.savefig(png, format="png")
    assert png.getvalue()[:4] == b"\x89PNG"


def test_chart_leaves_pyplot_alone() -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    importance_performance(driver_table(), lang="en")
    assert plt.get_fignums() == before


def test_domain_with_a_note_gets_the_note_instead_of_points() -> None:
    note = "too_few_responses: 40 complete responses, the minimum is 100"
    fig = importance_performance(driver_table(note).assign(importance=np.nan), lang="en")
    ax = fig.axes[0]
    assert not ax.collections
    assert any(note in t.get_text() for t in ax.texts)


def test_chart_rejects_tables_of_several_domains() -> None:
    table = pd.concat([driver_table(), driver_table()])
    with pytest.raises(ChartError, match="one row per driver"):
        importance_performance(table, lang="en")
    with pytest.raises(ChartError, match="lang"):
        importance_performance(driver_table(), lang="de")  # type: ignore[arg-type]
