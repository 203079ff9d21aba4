"""Key-driver analysis and its importance x performance chart."""

from __future__ import annotations

import io
from itertools import permutations
from math import factorial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from matplotlib.figure import Figure

from analysis.charts import ChartError, importance_performance
from analysis.design import SurveyDesign
from analysis.drivers import DriverError, key_drivers
from analysis.errors import AnalysisError

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
    texts = {t.get_text() for t in [*ax.texts, *fig.texts]}
    # phone-wide: the points are numbered, the names listed under the chart
    assert {"Fix first", "Keep it up", "1", "4", "1. q_time", "4. q_outcome"} <= texts


def test_persian_chart_uses_persian_labels_font_and_digits() -> None:
    fig = importance_performance(driver_table(), lang="fa", labels=LABELS_FA)
    ax = fig.axes[0]
    fig.canvas.draw()
    assert "۱. زمان انتظار" in {t.get_text() for t in fig.texts}
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
    assert any("too few complete responses" in t.get_text() for t in ax.texts)
    fa = importance_performance(driver_table(note).assign(importance=np.nan), lang="fa")
    assert any("پاسخ‌های کامل" in t.get_text() for t in fa.axes[0].texts)
    fa.savefig(io.BytesIO(), format="png")


def test_chart_rejects_tables_of_several_domains() -> None:
    table = pd.concat([driver_table(), driver_table()])
    with pytest.raises(ChartError, match="one row per driver"):
        importance_performance(table, lang="en")
    with pytest.raises(ChartError, match="lang"):
        importance_performance(driver_table(), lang="de")  # type: ignore[arg-type]
    assert issubclass(ChartError, AnalysisError)


# ---- key_drivers on the real design -------------------------------------------------------

DATA = Path(__file__).resolve().parents[1] / "data"
DRIVERS = ["ell", "meals", "mobility", "emer"]


@pytest.fixture(scope="module")
def apistrat() -> pd.DataFrame:
    return pd.read_csv(DATA / "api" / "apistrat.csv")


@pytest.fixture(scope="module")
def dstrat(apistrat: pd.DataFrame) -> SurveyDesign:
    return SurveyDesign(apistrat, weights="pw", strata="stype", fpc="fpc")


def standardised(data: pd.DataFrame, columns: list[str], w: np.ndarray) -> np.ndarray:
    """Columns centred and scaled with weights, times sqrt(w / sum w): X'X is the corr."""
    x = data[columns].to_numpy(dtype=float)
    p = w / w.sum()
    centred = x - p @ x
    sd = np.sqrt(p @ centred**2)
    return centred / sd * np.sqrt(p)[:, None]


def test_relative_weights_match_johnsons_svd_construction(
    apistrat: pd.DataFrame, dstrat: SurveyDesign
) -> None:
    """Independent route: Johnson (2000) via the SVD of the standardised data matrix."""
    got = key_drivers(dstrat, "api00", DRIVERS, replicates=20, seed=1)
    w = apistrat["pw"].to_numpy(dtype=float)
    X = standardised(apistrat, DRIVERS, w)
    y = standardised(apistrat, ["api00"], w)[:, 0]
    P, delta, Qt = np.linalg.svd(X, full_matrices=False)
    Z = P @ Qt  # the orthonormal variables closest to X
    lam = Qt.T @ np.diag(delta) @ Qt
    beta = Z.T @ y
    raw = (lam**2) @ (beta**2)
    np.testing.assert_allclose(got["raw_weight"], raw, rtol=1e-9)
    wls = sm.WLS(apistrat["api00"], sm.add_constant(apistrat[DRIVERS]), weights=w).fit()
    assert got["r2"].iloc[0] == pytest.approx(wls.rsquared, rel=1e-10)
    assert got["importance"].sum() == pytest.approx(1.0)


def test_shapley_values_average_the_r2_added_over_all_orders(
    apistrat: pd.DataFrame, dstrat: SurveyDesign
) -> None:
    got = key_drivers(dstrat, "api00", DRIVERS, method="shapley", replicates=20, seed=1)
    w = apistrat["pw"].to_numpy(dtype=float)

    def r2(subset: tuple[str, ...]) -> float:
        if not subset:
            return 0.0
        X = sm.add_constant(apistrat[list(subset)].astype(float))
        return sm.WLS(apistrat["api00"].astype(float), X, weights=w).fit().rsquared

    p = len(DRIVERS)
    want = np.zeros(p)
    for order in permutations(DRIVERS):
        for k, name in enumerate(order):
            want[DRIVERS.index(name)] += r2(order[: k + 1]) - r2(order[:k])
    want /= factorial(p)
    np.testing.assert_allclose(got["raw_weight"], want, rtol=1e-9)
    relative = key_drivers(dstrat, "api00", DRIVERS, replicates=20, seed=1)
    np.testing.assert_allclose(relative["importance"], got["importance"], atol=0.05)


def test_performance_and_intervals_come_from_the_designs_replicates(
    dstrat: SurveyDesign,
) -> None:
    got = key_drivers(dstrat, "api00", DRIVERS, replicates=50, seed=11)
    again = key_drivers(dstrat, "api00", DRIVERS, replicates=50, seed=11)
    pd.testing.assert_frame_equal(got, again)
    means = dstrat.mean(DRIVERS)
    np.testing.assert_allclose(got["performance"], means["estimate"], rtol=1e-12)
    boot = dstrat.replicate("bootstrap", replicates=50, seed=11)
    np.testing.assert_allclose(got["performance_se"], boot.mean(DRIVERS)["se"], rtol=1e-9)
    assert np.all(got["importance_se"] > 0)
    assert np.all((got["ci_low"] <= got["importance"]) & (got["importance"] <= got["ci_high"]))
    jk = key_drivers(dstrat.replicate("jkn"), "api00", DRIVERS)  # the design's own replicates
    np.testing.assert_allclose(jk["importance"], got["importance"], rtol=1e-12)
    assert np.all(np.abs(jk["importance_se"] / got["importance_se"] - 1) < 0.6)


def test_domains_too_small_get_a_note_and_keep_their_performance(dstrat: SurveyDesign) -> None:
    got = key_drivers(dstrat, "api00", DRIVERS, by="stype", replicates=20, seed=2)
    assert got["scope"].tolist() == ["national"] * 4 + ["domain"] * 12
    assert got["stype"].isna().sum() == 4
    by_domain = got.groupby("stype")
    assert by_domain["n"].first().to_dict() == {"E": 100, "H": 50, "M": 50}
    notes = by_domain["note"].first()
    assert notes["E"] == ""
    assert notes["H"].startswith("too_few_responses") and notes["M"].startswith("too_few")
    small = got[got["stype"] == "H"]
    assert small["importance"].isna().all()
    np.testing.assert_allclose(
        small["performance"], dstrat.mean(DRIVERS, by="stype").query("stype == 'H'")["estimate"]
    )
    lenient = key_drivers(dstrat, "api00", DRIVERS, by="stype", replicates=20, seed=2, min_n=40)
    assert (lenient["note"] == "").all()


def test_collinear_or_constant_drivers_get_a_note(apistrat: pd.DataFrame) -> None:
    rng = np.random.default_rng(5)
    data = apistrat.assign(ell_twin=apistrat["ell"] + rng.normal(0, 0.5, len(apistrat)), same=3.0)
    design = SurveyDesign(data, weights="pw", strata="stype", fpc="fpc")
    twin = key_drivers(design, "api00", ["ell", "ell_twin", "meals"], replicates=10)
    assert twin["note"].iloc[0].startswith("collinear_drivers")
    assert twin["importance"].isna().all() and twin["max_vif"].iloc[0] > 10
    constant = key_drivers(design, "api00", ["ell", "same"], replicates=10)
    assert constant["note"].iloc[0].startswith("constant_driver")


def test_missing_answers_are_left_out_listwise(apistrat: pd.DataFrame) -> None:
    data = apistrat.copy()
    data.loc[[1, 2, 3], "mobility"] = np.nan
    design = SurveyDesign(data, weights="pw", strata="stype", fpc="fpc")
    got = key_drivers(design, "api00", DRIVERS, replicates=10)
    assert got["n"].iloc[0] == 197
    complete = SurveyDesign(
        data.dropna(subset=["mobility"]), weights="pw", strata="stype", fpc="fpc"
    )
    want = key_drivers(complete, "api00", DRIVERS, replicates=10)
    np.testing.assert_allclose(got["raw_weight"], want["raw_weight"], rtol=1e-10)


def test_bad_requests_are_named(dstrat: SurveyDesign) -> None:
    with pytest.raises(DriverError, match="method"):
        key_drivers(dstrat, "api00", DRIVERS, method="dominance")  # type: ignore[arg-type]
    with pytest.raises(DriverError, match="at least 2"):
        key_drivers(dstrat, "api00", ["ell"])
    with pytest.raises(DriverError, match="'q_time' is not in the data"):
        key_drivers(dstrat, "api00", ["ell", "q_time"])
    with pytest.raises(DriverError, match="'stype': expected numeric"):
        key_drivers(dstrat, "api00", ["ell", "stype"])
    assert issubclass(DriverError, AnalysisError)


def test_chart_from_a_key_driver_table(dstrat: SurveyDesign) -> None:
    table = key_drivers(dstrat, "api00", DRIVERS, by="stype", replicates=20, seed=2)
    fig = importance_performance(table[table["scope"] == "national"], lang="en")
    points = fig.axes[0].collections[-1].get_offsets()
    np.testing.assert_allclose(points[:, 0], table["importance"].iloc[:4] * 100)
    fig = importance_performance(table[table["stype"] == "H"], lang="en")
    assert any("too few complete responses" in t.get_text() for t in fig.axes[0].texts)
