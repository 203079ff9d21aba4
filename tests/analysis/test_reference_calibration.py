"""Calibration and trimming against R ``survey`` 4.1-1 (issue 19), on data made for it.

``tests/data/calibration/calibration_ref.R`` makes the sample (a stratified one-stage
cluster sample of 2,464 rows, 30 PSUs, unequal weights within PSUs, fpc) and R's numbers::

    d <- svydesign(id=~psu, strata=~stratum, fpc=~fpc, weights=~w, data=s)
    calibrate(d, ~region + sex, pop[1:5])                       # linear_two_margins
    calibrate(d, ~region + sex + age + income, pop)             # linear
    calibrate(d, f, pop, calfun="linear", bounds=c(0.7, 1.4), epsilon=1e-12)
    calibrate(d, f, pop, calfun="raking", epsilon=1e-12)
    calibrate(d, f, pop, calfun="raking", bounds=c(0.75, 1.4), epsilon=1e-12)
    calibrate(d, f, pop, calfun="logit", bounds=c(0.7, 1.5), epsilon=1e-12)
    calibrate(d, f, pop, calfun="raking", bounds=c(0.75, 1.4))  # R's epsilon 1e-7
    calibrate(svydesign(id=~psu, strata=~stratum, data=s), ~region + sex, 3 * pop[1:5],
              calfun="raking", bounds=c(0.88, 1.1), epsilon=1e-12)  # rescaled
    calibrate(as.svrepdesign(d, type="JKn"), f, pop, calfun="logit", bounds=c(0.6, 1.6),
              epsilon=1e-12); calibrate(as.svrepdesign(d, type="JKn"), f, pop)
    trimWeights(d, upper=20); trimWeights(d, upper=20, strict=TRUE)
    trimWeights(d, lower=5, upper=20); trimWeights(d, lower=5, upper=20, strict=TRUE)
    trimWeights(calibrate(d, f, pop), upper=20, strict=TRUE)

and for each: ``weights(.)``, ``svymean(~y)``, ``svytotal(~y)``, ``svymean(~sat)``,
``svyby(~y, ~region, ., svymean)``, ``svyby(~y, ~age, ., svytotal)`` and
``vcov(svytotal(~y + sat))``. Every categorical margin is given with all its levels (the
documented form), which makes the auxiliaries exactly collinear: before the fix the GREG
variance kept a ~1e-15 null eigenvalue of the cross products and was off by up to 18%
(``linear_two_margins``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analysis import SurveyDesign, WeightingError

DATA = Path(__file__).resolve().parents[1] / "data" / "calibration"

EXACT = 1e-9

UNKNOWN: Any = "cubic"  # a value the type checker would refuse, as a caller may send


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(DATA / "sample.csv")


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(DATA / "reference.csv").fillna({"domain": ""})


@pytest.fixture(scope="module")
def r_weights() -> pd.DataFrame:
    return pd.read_csv(DATA / "weights.csv")


@pytest.fixture(scope="module")
def totals() -> dict[str, Any]:
    """``{"region": {...}, "sex": {...}, "age": {...}, "income": total}`` (population.csv)."""
    table = pd.read_csv(DATA / "population.csv", keep_default_na=False)
    spec: dict[str, Any] = {}
    for column, rows in table.groupby("column", sort=False):
        if column == "income":
            spec[str(column)] = float(rows["total"].iloc[0])
        else:
            spec[str(column)] = dict(zip(rows["level"], rows["total"].astype(float), strict=True))
    return spec


@pytest.fixture(scope="module")
def design(sample: pd.DataFrame) -> SurveyDesign:
    """svydesign(id=~psu, strata=~stratum, fpc=~fpc, weights=~w, data=s)"""
    return SurveyDesign(sample, weights="w", strata="stratum", psu="psu", fpc="fpc")


def two_margins(totals: dict[str, Any]) -> dict[str, Any]:
    return {"region": totals["region"], "sex": totals["sex"]}


def tripled(totals: dict[str, Any]) -> dict[str, Any]:
    return {name: {k: 3 * v for k, v in totals[name].items()} for name in ("region", "sex")}


CASES: dict[str, Callable[[SurveyDesign, dict[str, Any]], SurveyDesign]] = {
    "linear_two_margins": lambda d, t: d.calibrate(two_margins(t)),
    "linear": lambda d, t: d.calibrate(t),
    "linear_bounded": lambda d, t: d.calibrate(t, bounds=(0.7, 1.4)),
    "raking": lambda d, t: d.calibrate(t, calfun="raking"),
    "raking_bounded": lambda d, t: d.calibrate(t, calfun="raking", bounds=(0.75, 1.4)),
    "logit": lambda d, t: d.calibrate(t, calfun="logit", bounds=(0.7, 1.5)),
    "jkn_logit": lambda d, t: d.replicate("jkn").calibrate(t, calfun="logit", bounds=(0.6, 1.6)),
    "jkn_linear": lambda d, t: d.replicate("jkn").calibrate(t),
    "trim_upper": lambda d, t: d.trim(upper=20),
    "trim_upper_strict": lambda d, t: d.trim(upper=20, strict=True),
    "trim_both": lambda d, t: d.trim(lower=5, upper=20),
    "trim_both_strict": lambda d, t: d.trim(lower=5, upper=20, strict=True),
    "linear_then_trim": lambda d, t: d.calibrate(t).trim(upper=20, strict=True),
}


def rows_of(reference: pd.DataFrame, case: str, statistic: str, variable: str) -> pd.DataFrame:
    chosen = reference[
        (reference["case"] == case)
        & (reference["statistic"] == statistic)
        & (reference["variable"] == variable)
    ]
    assert len(chosen) > 0, (case, statistic, variable)
    return chosen


def check_estimates(ours: SurveyDesign, reference: pd.DataFrame, case: str) -> None:
    """Means, totals, domains and the covariance of totals against R's rows for ``case``."""
    for statistic, variable in (("mean", "y"), ("total", "y"), ("mean", "sat")):
        chosen = rows_of(reference, case, statistic, variable)
        ref = chosen[chosen["domain"] == ""].iloc[0]
        row = getattr(ours, statistic)(variable).iloc[0]
        assert (row["estimate"], row["se"]) == pytest.approx(
            (ref["estimate"], ref["se"]), rel=EXACT
        ), (case, statistic, variable)
    for statistic, by in (("mean", "region"), ("total", "age")):
        rows = rows_of(reference, case, statistic, "y")
        domains = rows[rows["domain"].str.startswith(f"{by}=")]
        table = getattr(ours, statistic)("y", by=by)
        assert [f"{by}={v}" for v in table[by]] == domains["domain"].tolist()
        assert table["estimate"].to_numpy() == pytest.approx(
            domains["estimate"].to_numpy(), rel=EXACT
        )
        assert table["se"].to_numpy() == pytest.approx(domains["se"].to_numpy(), rel=EXACT), (
            case,
            statistic,
            by,
        )
    if not ours.is_replicate:
        covariance = ours.total_covariance(ours.data[["y", "sat"]].to_numpy(dtype=float))
        expected = [
            rows_of(reference, case, "cov_total", pair)["estimate"].iloc[0]
            for pair in ("y:y", "y:sat", "sat:sat")
        ]
        got = [covariance[0, 0], covariance[0, 1], covariance[1, 1]]
        assert got == pytest.approx(expected, rel=EXACT), case


@pytest.mark.parametrize("case", list(CASES))
def test_weights_and_estimates_agree_with_r(case, design, totals, reference, r_weights):
    ours = CASES[case](design, totals)
    if case in r_weights.columns:
        assert ours.weights == pytest.approx(r_weights[case].to_numpy(), rel=1e-11)
    check_estimates(ours, reference, case)


def test_uncalibrated_design_agrees_with_r(design, reference):
    """The base design itself, so a difference above is the weighting step's."""
    check_estimates(design, reference, "base")


def test_rescaled_weights_before_bounded_raking(sample, totals, reference, r_weights):
    """Weights of 1 against totals 30-100 times larger: as R's ``grake`` the weights are
    first scaled by the mean ratio and the bounds apply to g relative to the scaled
    weights (R warns that it did so)."""
    unweighted = SurveyDesign(sample.assign(one=1.0), weights="one", strata="stratum", psu="psu")
    ours = unweighted.calibrate(tripled(totals), calfun="raking", bounds=(0.88, 1.1))
    expected = r_weights["unweighted_raking_bounded"].to_numpy()
    assert ours.weights == pytest.approx(expected, rel=1e-11)
    assert ours.weights.min() > 20  # far beyond 1.4 times the original weights of 1
    check_estimates(ours, reference, "unweighted_raking_bounded")


def test_r_default_epsilon_stops_short_of_the_solution(design, totals, r_weights):
    """R's ``epsilon=1e-7`` stops raking while weights are ~1.5e-7 off the solution (R's
    Newton Jacobian also counts units whose ``g`` is held at a bound, so it converges
    linearly there); ours iterate to ``tol=1e-12`` with the exact Jacobian and meet R's
    tightly converged weights to 1e-11."""
    ours = design.calibrate(totals, calfun="raking", bounds=(0.75, 1.4))
    r_default = r_weights["raking_bounded_eps7"].to_numpy()
    assert ours.weights == pytest.approx(r_default, rel=1e-6)
    assert np.max(np.abs(ours.weights / r_default - 1)) > 1e-8
    assert ours.weights == pytest.approx(r_weights["raking_bounded"].to_numpy(), rel=1e-11)


def r_status(reference: pd.DataFrame, case: str) -> tuple[str, str]:
    row = reference[(reference["case"] == case) & (reference["statistic"] == "status")]
    assert len(row) == 1, case
    return str(row["variable"].iloc[0]), str(row["domain"].iloc[0])


@pytest.mark.parametrize("calfun", ["linear", "raking", "logit"])
def test_bounds_that_cannot_be_met_are_an_error_naming_a_total(calfun, design, totals, reference):
    """R: ``calibrate(d, f, pop, calfun=, bounds=c(0.9, 1.1))`` stops with "Calibration
    failed"; ours says which total is furthest off and what to change."""
    assert r_status(reference, f"infeasible_{calfun}")[0] == "error: Calibration failed"
    with pytest.raises(WeightingError) as caught:
        design.calibrate(totals, calfun=calfun, bounds=(0.9, 1.1))
    message = str(caught.value)
    assert "cannot be met with g-weights within bounds (0.9, 1.1)" in message
    assert f"{calfun} calibration did not converge in 50 iterations" in message
    assert "the total of region=East is 5" in message and "against 4823" in message


def test_logit_needs_finite_bounds(design, totals, reference):
    assert r_status(reference, "logit_unbounded")[0].startswith("error: Logit calibration")
    with pytest.raises(WeightingError, match="calfun='logit' needs finite bounds"):
        design.calibrate(totals, calfun="logit")
    with pytest.raises(WeightingError, match="needs finite bounds"):
        design.calibrate(totals, calfun="logit", bounds=(0.5, float("inf")))
    with pytest.raises(WeightingError, match="calfun expected one of"):
        design.calibrate(totals, calfun=UNKNOWN)


def test_a_replicate_that_cannot_be_calibrated_is_an_error(design, totals, reference):
    """R calibrates the full sample within (0.8, 1.3) but only warns for the 7 JKn
    replicates that miss the totals, keeping their weights (deliberate difference: an
    error naming how many replicates failed)."""
    assert r_status(reference, "raking_0.8_1.3") == ("ok", "0 warnings")
    assert r_status(reference, "jkn_raking_0.8_1.3") == ("ok", "7 warnings")
    design.calibrate(totals, calfun="raking", bounds=(0.8, 1.3))
    with pytest.raises(WeightingError, match=r"in 7 of 30 replicates \(first: replicate 7\)"):
        design.replicate("jkn").calibrate(totals, calfun="raking", bounds=(0.8, 1.3))


def test_margins_must_describe_one_population(design, totals):
    """Dropping a level of the second margin (to avoid collinearity) must not hide a
    margin that adds up to another population size."""
    wrong = {**totals, "sex": {"F": 5000.0, "M": 4000.0}}
    with pytest.raises(WeightingError, match="'sex' add up to 9000 but 'region' gives 27212"):
        design.calibrate(wrong)
    with pytest.raises(WeightingError, match="'region' add up to 27212 but population gives 1000"):
        design.calibrate(totals, population=1000)
    same = design.calibrate(totals, population=27212)
    assert same.weights.sum() == pytest.approx(27212, rel=1e-12)


def test_collinear_numeric_auxiliaries_give_the_full_rank_answer(sample, totals):
    """A numeric auxiliary repeated (consistent totals): the rank-revealing solve gives the
    weights and variances of the calibration without the repeat."""
    data = sample.assign(income_again=sample["income"] * 2)
    design = SurveyDesign(data, weights="w", strata="stratum", psu="psu", fpc="fpc")
    plain = design.calibrate(totals)
    doubled = design.calibrate({**totals, "income_again": 2 * totals["income"]})
    assert doubled.weights == pytest.approx(plain.weights, rel=1e-10)
    for statistic in ("mean", "total"):
        ours = getattr(doubled, statistic)("y", by="region")["se"].to_numpy()
        assert ours == pytest.approx(getattr(plain, statistic)("y", by="region")["se"], rel=1e-9)


def test_trimming_leaves_zero_weights_at_zero(sample):
    """Rows with weight 0 (here nonrespondents after the class adjustment; also PSUs a
    jackknife replicate deletes) are outside the sample: no bound raises them and they
    take no share (R would give them one)."""
    data = sample.assign(responded=(sample["y"] > 55).astype(int))
    design = SurveyDesign(data, weights="w", strata="stratum", psu="psu", fpc="fpc")
    adjusted = design.adjust_nonresponse("responded", "region")
    zero = adjusted.weights == 0
    assert zero.any()
    for strict in (False, True):
        trimmed = adjusted.trim(lower=8, upper=40, strict=strict)
        assert np.all(trimmed.weights[zero] == 0)
        assert trimmed.weights[~zero].min() >= (8 if strict else 7)  # one pass: R's rule
        assert trimmed.weights.sum() == pytest.approx(adjusted.weights.sum(), rel=1e-12)


def test_replicate_designs_trim_every_replicate(design):
    """R 4.1's ``trimWeights`` for replicate designs leaves the full-sample weights as they
    were and mangles the replicates (deliberate difference): each column is trimmed by
    the same rule, keeping its total, and deleted PSUs keep weight 0."""
    replicated = design.replicate("jkn")
    trimmed = replicated.trim(upper=20, strict=True)
    assert trimmed.weights == pytest.approx(design.trim(upper=20, strict=True).weights)
    before, after = replicated.replicate_weights, trimmed.replicate_weights
    assert after.max() <= 20 * (1 + 1e-12)
    assert after.sum(axis=0) == pytest.approx(before.sum(axis=0), rel=1e-12)
    assert np.all(after[before == 0] == 0)


def test_proportional_trimming_is_an_explicit_option(design):
    """``redistribute="proportional"``: untrimmed weights keep their ratios; one pass by
    default, until within bounds with ``strict=True``."""
    weights = design.weights
    for strict in (False, True):
        trimmed = design.trim(upper=20, redistribute="proportional", strict=strict).weights
        untouched = trimmed < 20
        assert np.ptp(trimmed[untouched] / weights[untouched]) < 1e-12
        assert trimmed.sum() == pytest.approx(weights.sum(), rel=1e-12)
    assert trimmed.max() <= 20 * (1 + 1e-12)
    with pytest.raises(WeightingError, match="redistribute expected one of"):
        design.trim(upper=20, redistribute=UNKNOWN)
