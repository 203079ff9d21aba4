"""Contrasts with the joint covariance agree with R ``survey`` 4.1-1 (``svyby(covmat=TRUE)``,
``svycontrast``).

Data and numbers: tests/data/contrasts, made by ``contrasts_ref.R`` beside them (R 4.2.2): a
stratified one-stage cluster sample with fpc whose PSUs were each observed in two periods
(the periods share PSUs), a persistent PSU effect, three domains ``g`` crossing the PSUs and
two regions. Three designs: the Taylor design ``d``, ``rake(d, list(~g, ~region), ...)`` and
R's JKn replicate weights of ``d``::

    b <- svyby(~y, ~g, d, svymean, covmat=TRUE); vcov(b)
    svycontrast(b, list(a_minus_b=c(1,-1,0), a_minus_c=c(1,0,-1), avg_bc=c(0,.5,.5)))
    svycontrast(svyby(~y, ~period, d, svymean, covmat=TRUE), list(change=c(-1, 1)))
    t <- svytotal(~y + one + y_a + n_a + ..., d)          # y_a = y * (g == "a"), n_a = ...
    svycontrast(t, list(a=quote(y_a/n_a - y/one), ...))   # each domain against the whole
    svycontrast(svytotal(~..., subset(d, region == r)), ...)   # against its region

(on the raked design, where survey 4.1's ``svyby(covmat=TRUE)`` fails, the domain means and
their covariance come from ``svycontrast`` of the totals: the same linearisation).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import analysis.contrasts
from analysis import (
    EstimationError,
    MethodError,
    SurveyDesign,
    combine,
    compare_domains,
    joint_estimates,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "contrasts"
EXACT = 1e-9
DESIGNS = ("taylor", "raked", "jkn")


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(DATA / "contrasts_data.csv")


@pytest.fixture(scope="module")
def designs(data: pd.DataFrame) -> dict[str, SurveyDesign]:
    taylor = SurveyDesign(data, weights="pw", strata="stratum", psu="psu", fpc="N_h")
    replicates = pd.read_csv(DATA / "contrasts_replicates.csv")
    return {
        "taylor": taylor,
        "raked": taylor.rake(
            {"g": {"a": 2600, "b": 1500, "c": 1100}, "region": {"north": 2900, "south": 2300}}
        ),
        "jkn": SurveyDesign(
            data,
            weights="pw",
            repweights=list(replicates["column"]),
            rep_method="jkn",
            rep_rscales=replicates["rscale"].to_numpy(),
            rep_scale=float(replicates["scale"].iloc[0]),
        ),
    }


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(DATA / "contrasts_reference.csv")


def expect(reference: pd.DataFrame, case: str, labels, estimate, se) -> None:
    rows = reference[reference["case"] == case].set_index("label").loc[list(labels)]
    np.testing.assert_allclose(estimate, rows["estimate"], rtol=EXACT, atol=1e-12, err_msg=case)
    np.testing.assert_allclose(se, rows["se"], rtol=EXACT, err_msg=case)


@pytest.mark.parametrize("name", DESIGNS)
def test_joint_covariance_of_domain_means_is_svyby_covmat(designs, name) -> None:
    covariance = pd.read_csv(DATA / "contrasts_covariance.csv")
    for statistic, variable, case in (
        ("mean", "y", "mean_by_g"),
        ("proportion", "y01", "proportion_by_g"),
        ("mean", "y", "mean_by_period"),
    ):
        by = "period" if "period" in case else "g"
        got = joint_estimates(designs[name], statistic, variable, by=by)
        expected = covariance[covariance["case"] == f"{name}_{case}"].pivot(
            index="row", columns="column", values="value"
        )
        expected = expected.loc[list(got.labels), list(got.labels)]
        np.testing.assert_allclose(got.covariance, expected, rtol=EXACT, err_msg=case)
        assert got.vcov().index.tolist() == list(got.labels)
        np.testing.assert_allclose(got.se, got.table["se"], rtol=1e-9)  # the estimators' SEs


@pytest.mark.parametrize("name", DESIGNS)
def test_contrasts_of_domains_and_periods(designs, reference, name) -> None:
    design = designs[name]
    means = joint_estimates(design, "mean", "y", by="g")
    got = means.contrast(
        {
            "a_minus_b": {"a": 1, "b": -1},
            "a_minus_c": {"a": 1, "c": -1},
            "avg_bc": {"b": 0.5, "c": 0.5},
        }
    )
    expect(reference, f"{name}_mean_by_g_contrasts", got["contrast"], got["estimate"], got["se"])
    positional = means.contrast([1, -1, 0])  # R's c(1, -1, 0)
    assert positional["estimate"].iloc[0] == got["estimate"].iloc[0]
    share = joint_estimates(design, "proportion", "y01", by="g").contrast([1, -1, 0])
    case = f"{name}_proportion_by_g_contrasts"
    expect(reference, case, ["a_minus_b"], share["estimate"], share["se"])
    periods = joint_estimates(design, "mean", "y", by="period")
    change = periods.contrast({"1405-01": 1, "1404-12": -1})
    expect(reference, f"{name}_period_change", ["change"], change["estimate"], change["se"])


@pytest.mark.parametrize("name", DESIGNS)
def test_every_domain_against_the_whole_and_against_its_region(designs, reference, name) -> None:
    design = designs[name]
    for statistic, variable in (("mean", "y"), ("proportion", "y01")):
        got = compare_domains(design, statistic, variable, "g")
        expect(reference, f"{name}_{statistic}_vs_overall", got["g"], got["difference"], got["se"])
        np.testing.assert_allclose(got["difference"], got["estimate"] - got["reference"])
    got = compare_domains(design, "mean", "y", ["region", "g"], within="region")
    for region in ("north", "south"):
        part = got[got["region"] == region]
        case = f"{name}_mean_vs_region_{region}"
        expect(reference, case, part["g"], part["difference"], part["se"])


def test_periods_sharing_psus_are_not_independent(designs, reference) -> None:
    """The tested case: treating the two periods as independent samples overstates the
    standard error of the change by 66% (the PSU effect persists from one period to the
    next, so the two means move together)."""
    design = designs["taylor"]
    means = design.mean("y", by="period").set_index("period")
    joint = joint_estimates(design, "mean", "y", by="period").contrast([-1, 1])
    independent = np.hypot(*means["se"])
    assert independent / joint["se"].iloc[0] == pytest.approx(1.6569, abs=1e-4)
    expect(reference, "taylor_period_change", ["change"], joint["estimate"], joint["se"])


def test_combine_treats_separate_samples_as_independent(data) -> None:
    """Two periods drawn as separate samples: the change has se sqrt(v1 + v0) and Welch df."""
    parts = {}
    for period, rows in data.groupby("period"):
        design = SurveyDesign(rows, weights="pw", strata="stratum", psu="psu", fpc="N_h")
        parts[period] = joint_estimates(design, "mean", "y")
    both = combine(parts["1405-01"], parts["1404-12"], names=["now", "before"])
    assert both.labels == ("now:(all)", "before:(all)")
    got = both.contrast({"now:(all)": 1, "before:(all)": -1}).iloc[0]
    v1, v0 = (part.covariance[0, 0] for part in (parts["1405-01"], parts["1404-12"]))
    df1, df0 = (part.block_df[0] for part in (parts["1405-01"], parts["1404-12"]))
    assert got["se"] == pytest.approx(np.sqrt(v1 + v0), rel=1e-12)
    welch = (v1 + v0) ** 2 / (v1**2 / df1 + v0**2 / df0)
    assert got["df"] == pytest.approx(welch, rel=1e-12)
    assert got["ci_high"] - got["estimate"] == pytest.approx(stats.t.ppf(0.975, welch) * got["se"])
    assert both.covariance[0, 1] == 0.0


def test_wald_intervals_and_p_values_use_the_design_df(designs) -> None:
    means = joint_estimates(designs["taylor"], "mean", "y", by="g")
    got = means.contrast([1, -1, 0]).iloc[0]
    df = designs["taylor"].degrees_of_freedom
    assert got["df"] == df
    assert got["p_value"] == pytest.approx(2 * stats.t.sf(abs(got["estimate"] / got["se"]), df))
    normal = means.contrast([1, -1, 0], method="normal").iloc[0]
    assert np.isinf(normal["df"])
    half = normal["ci_high"] - normal["estimate"]
    assert half == pytest.approx(stats.norm.ppf(0.975) * got["se"])


def test_compare_domains_equals_the_contrast_of_the_full_covariance(data) -> None:
    """The O(n) rounds of compare_domains give the same standard errors as the dense joint
    covariance, also with a lonely PSU centred on the grand mean ("adjust")."""
    lonely = data[~((data["stratum"] == "h1") & (data["psu"] != "h1p1"))]
    design = SurveyDesign(
        lonely, weights="pw", strata="stratum", psu="psu", fpc="N_h", lonely_psu="adjust"
    )
    fast = compare_domains(design, "mean", "y", "g", method="wald")
    joint = joint_estimates(design, "mean", "y", by="g", overall=True)
    dense = joint.contrast({g: {g: 1, "(all)": -1} for g in ("a", "b", "c")})
    np.testing.assert_allclose(fast["se"], dense["se"], rtol=1e-10)
    np.testing.assert_allclose(fast["difference"], dense["estimate"], rtol=1e-12)
    independent = np.hypot(joint.se[:3], joint.se[3])
    assert np.all(independent > fast["se"])  # a domain moves with the whole it is part of


def _lonely(data: pd.DataFrame, rule: str) -> SurveyDesign:
    """The contrasts design with stratum h1 cut to one PSU."""
    rows = data[~((data["stratum"] == "h1") & (data["psu"] != "h1p1"))]
    return SurveyDesign(rows, weights="pw", strata="stratum", psu="psu", fpc="N_h", lonely_psu=rule)


CALIBRATED = {
    "raked, lonely adjust": lambda data: _lonely(data, "adjust").rake(
        {"g": {"a": 2600, "b": 1500, "c": 1100}, "region": {"north": 2900, "south": 2300}}
    ),
    "post-stratified, lonely average": lambda data: _lonely(data, "average").poststratify(
        "region", {"north": 2900, "south": 2300}
    ),
    "two-stage with fpc, post-stratified": lambda data: SurveyDesign(
        pd.read_csv(DATA.parent / "api" / "apiclus2.csv").rename(columns={"stype": "g"}),
        psu=["dnum", "snum"],
        fpc=["fpc1", "fpc2"],
    ).poststratify("g", {"E": 4421, "H": 755, "M": 1018}),
}


@pytest.mark.parametrize("make", list(CALIBRATED.values()), ids=list(CALIBRATED))
def test_the_national_comparison_of_a_calibrated_design_equals_the_full_covariance(
    data, make
) -> None:
    """Against the whole population a calibrated design takes one pass (the image of the
    national scores under the design's quadratic form); it equals the dense covariance."""
    design = make(data)
    variable = "api00" if "api00" in design.data.columns else "y"
    fast = compare_domains(design, "mean", variable, "g", method="wald")
    joint = joint_estimates(design, "mean", variable, by="g", overall=True)
    labels = [label for label in joint.labels if label != "(all)"]
    dense = joint.contrast({g: {g: 1, "(all)": -1} for g in labels})
    np.testing.assert_allclose(fast["se"], dense["se"], rtol=1e-9)


def test_several_variables_are_labelled_domain_colon_variable(designs) -> None:
    got = joint_estimates(designs["taylor"], "mean", ["y", "y01"], by="g")
    assert got.labels == ("a:y", "b:y", "c:y", "a:y01", "b:y01", "c:y01")
    assert got.covariance.shape == (6, 6)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda d: joint_estimates(d, "median", "y"), MethodError, "statistic: expected"),
        (
            lambda d: joint_estimates(d, "mean", "y", by="g").contrast({"z": 1}),
            EstimationError,
            "no estimate labelled 'z'",
        ),
        (
            lambda d: joint_estimates(d, "mean", "y", by="g").contrast([1, -1]),
            EstimationError,
            "expected 3 coefficients",
        ),
        (
            lambda d: joint_estimates(d, "mean", "y", by="g").contrast({"a": "x"}),
            EstimationError,
            "must be a number",
        ),
        (
            lambda d: compare_domains(d, "mean", "y", "g", within="region"),
            MethodError,
            "every column must also be a by column",
        ),
        (
            lambda d: compare_domains(d, "mean", "y", "g", within="g"),
            MethodError,
            "fewer columns than by",
        ),
        (lambda d: joint_estimates(d, "ratio", "y", by="g"), MethodError, "needs the denominator"),
    ],
)
def test_mistakes_are_named(designs, call, error, message) -> None:
    with pytest.raises(error, match=message):
        call(designs["taylor"])


def test_too_many_domains_for_a_dense_covariance_is_an_error(designs, monkeypatch) -> None:
    monkeypatch.setattr(analysis.contrasts, "MAX_INFLUENCE_CELLS", 100)
    with pytest.raises(EstimationError, match="use compare_domains"):
        joint_estimates(designs["taylor"], "mean", "y", by="g")
