"""Weighting steps: what each guarantees about the weights, and that variances follow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import SurveyDesign, WeightingError

STYPE = {"E": 4421, "H": 755, "M": 1018}
SCHWIDE = {"No": 1072, "Yes": 5122}


def margin_sums(design: SurveyDesign, column: str) -> dict:
    return pd.Series(design.weights).groupby(design.data[column].to_numpy()).sum().to_dict()


def test_rake_default_converges_on_every_margin(dclus1):
    raked = dclus1.rake({"stype": STYPE, "sch.wide": SCHWIDE})
    assert margin_sums(raked, "stype") == pytest.approx(STYPE, rel=1e-9)
    assert margin_sums(raked, "sch.wide") == pytest.approx(SCHWIDE, rel=1e-9)
    assert np.all(dclus1.weights == dclus1.data["pw"].to_numpy())  # input untouched


def test_calibration_meets_totals_within_bounds(dclus1):
    totals = {"stype": STYPE, "api99": 3914069}
    bounded = dclus1.calibrate(totals, bounds=(0.6, 1.7))
    g = bounded.weights / dclus1.weights
    assert g.min() >= 0.6 - 1e-12 and g.max() <= 1.7 + 1e-12
    assert margin_sums(bounded, "stype") == pytest.approx(STYPE, rel=1e-8)
    assert (bounded.weights * bounded.data["api99"]).sum() == pytest.approx(3914069, rel=1e-8)
    unbounded = dclus1.calibrate(totals)
    assert (unbounded.weights / dclus1.weights).max() > 1.7  # the bounds did bind
    # 14 high schools weighing 474 cannot reach 755 with g <= 1.5: a clear error
    with pytest.raises(WeightingError, match="cannot be met"):
        dclus1.calibrate(totals, bounds=(0.5, 1.5))


def test_calibration_with_population_size_only(dstrat):
    calibrated = dstrat.calibrate({"api99": 3_900_000}, population=6194)
    assert calibrated.weights.sum() == pytest.approx(6194)
    assert (calibrated.weights * calibrated.data["api99"]).sum() == pytest.approx(3_900_000)


def test_trim_caps_and_keeps_the_total(dstrat):
    trimmed = dstrat.trim(upper=40, redistribute="proportional", strict=True)
    assert trimmed.weights.max() <= 40 + 1e-9
    assert trimmed.weights.sum() == pytest.approx(dstrat.weights.sum())
    untouched = dstrat.weights < 40
    ratio = trimmed.weights[untouched] / dstrat.weights[untouched]
    assert np.ptp(ratio) == pytest.approx(0, abs=1e-12)  # spread in proportion


def test_nonresponse_adjustment(apistrat):
    data = apistrat.assign(responded=(apistrat["api00"] > 600).astype(int))
    design = SurveyDesign(data, weights="pw", strata="stype", fpc="fpc")
    adjusted = design.adjust_nonresponse("responded", "stype")
    assert margin_sums(adjusted, "stype") == pytest.approx(margin_sums(design, "stype"))
    assert np.all(adjusted.weights[data["responded"] == 0] == 0)
    mean = adjusted.mean("api99").iloc[0]
    respondents = data[data["responded"] == 1]
    by_class = respondents.groupby("stype")["api99"].mean()
    expected = (by_class * pd.Series(margin_sums(design, "stype"))).sum() / 6194
    assert mean["estimate"] == pytest.approx(expected)
    assert mean["n"] == len(respondents)
    # the linearisation (class totals estimated from the whole sample) agrees with the
    # jackknife that redoes the adjustment in every replicate
    jackknife = design.replicate("jkn").adjust_nonresponse("responded", "stype")
    assert jackknife.mean("api99")["se"].iloc[0] == pytest.approx(mean["se"], rel=0.05)


def test_trim_infeasible_cap_is_an_error(dstrat):
    with pytest.raises(WeightingError, match="every weight hits a bound"):
        dstrat.trim(upper=30)  # 200 weights of at most 30 cannot total 6194


def test_weighting_is_redone_in_every_replicate(dclus1):
    replicated = dclus1.replicate("jk1").poststratify("stype", STYPE)
    weights = replicated.replicate_weights
    stype = replicated.data["stype"].to_numpy()
    for level, count in STYPE.items():
        assert weights[stype == level].sum(axis=0) == pytest.approx(count)
    taylor = dclus1.poststratify("stype", STYPE).mean("api00").iloc[0]
    jackknife = replicated.mean("api00").iloc[0]
    assert jackknife["estimate"] == pytest.approx(taylor["estimate"])
    assert jackknife["se"] == pytest.approx(taylor["se"], rel=0.25)


def test_replicate_replays_earlier_weighting(dclus1):
    raked = dclus1.rake({"stype": STYPE, "sch.wide": SCHWIDE})
    replicated = raked.replicate("jk1")
    assert replicated.weights == pytest.approx(raked.weights)
    weights = replicated.replicate_weights
    stype = replicated.data["stype"].to_numpy()
    assert weights[stype == "H"].sum(axis=0) == pytest.approx(755, rel=1e-8)
