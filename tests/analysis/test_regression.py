"""Design-based regression reproduces R's ``svyglm`` (survey 4.1-1, R 4.2.2).

The reference (tests/data/glm/glm_reference.csv) was made by tests/data/glm_ref.R::

    dstrat <- svydesign(id=~1, strata=~stype, weights=~pw, data=apistrat, fpc=~fpc)
    dclus1 <- svydesign(id=~dnum, weights=~pw, data=apiclus1, fpc=~fpc)
    svyglm(api00 ~ ell + meals + mobility, design=dstrat)             # and design=dclus1
    svyglm(I(sch.wide=="Yes") ~ ell + meals, design=dstrat, family=quasibinomial())
    # case, term, coef(m), SE(m), m$df.residual

Agreement required: relative 1e-7 for estimates and standard errors, df exact. (The
logistic standard errors differ from R's by 5e-8 relative: R's glm stops at a deviance
change of 1e-8 and evaluates the bread one iteration early; we iterate to convergence.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis.design import SurveyDesign
from analysis.errors import AnalysisError
from analysis.regression import RegressionError, regress

DATA = Path(__file__).resolve().parents[1] / "data"
REFERENCE = pd.read_csv(DATA / "glm" / "glm_reference.csv")
LINEAR = "api00 ~ ell + meals + mobility"
LOGIT = 'I(sch.wide == "Yes") ~ ell + meals'


@pytest.fixture(scope="module")
def apistrat() -> pd.DataFrame:
    return pd.read_csv(DATA / "api" / "apistrat.csv")


@pytest.fixture(scope="module")
def dstrat(apistrat: pd.DataFrame) -> SurveyDesign:
    return SurveyDesign(apistrat, weights="pw", strata="stype", fpc="fpc")


@pytest.fixture(scope="module")
def dclus1() -> SurveyDesign:
    data = pd.read_csv(DATA / "api" / "apiclus1.csv")
    return SurveyDesign(data, weights="pw", psu="dnum", fpc="fpc")


def reference(case: str) -> pd.DataFrame:
    return REFERENCE[REFERENCE["case"] == case].reset_index(drop=True)


@pytest.mark.parametrize(
    ("case", "design_name", "formula", "family"),
    [
        ("strat_lm_api00_ell_meals_mobility", "dstrat", LINEAR, "gaussian"),
        ("clus1_lm_api00_ell_meals_mobility", "dclus1", LINEAR, "gaussian"),
        ("strat_logit_schwide_ell_meals", "dstrat", LOGIT, "binomial"),
    ],
)
def test_reproduces_svyglm(
    request: pytest.FixtureRequest, case: str, design_name: str, formula: str, family: str
) -> None:
    design = request.getfixturevalue(design_name)
    got = regress(design, formula, family=family)
    want = reference(case)
    assert got["term"].tolist() == want["term"].tolist()
    np.testing.assert_allclose(got["estimate"], want["estimate"], rtol=1e-7)
    np.testing.assert_allclose(got["se"], want["se"], rtol=1e-7)
    np.testing.assert_array_equal(got["df"], want["df"])


def test_intervals_and_p_values_use_t_with_residual_df(dstrat: SurveyDesign) -> None:
    from scipy import stats

    got = dstrat.regress(LINEAR)  # the design method delegates here
    q = stats.t.ppf(0.975, 194)
    np.testing.assert_allclose(got["ci_low"], got["estimate"] - q * got["se"], rtol=1e-12)
    np.testing.assert_allclose(got["ci_high"], got["estimate"] + q * got["se"], rtol=1e-12)
    t = got["estimate"] / got["se"]
    np.testing.assert_allclose(got["p_value"], 2 * stats.t.sf(np.abs(t), 194), rtol=1e-10)
    assert got["n"].unique().tolist() == [200]
    assert got["dropped"].unique().tolist() == [0]


def test_point_estimates_equal_weighted_least_squares_and_glm(apistrat: pd.DataFrame) -> None:
    """Independent check of the point estimates with statsmodels."""
    design = SurveyDesign(apistrat, weights="pw", strata="stype", fpc="fpc")
    X = sm.add_constant(apistrat[["ell", "meals", "mobility"]].astype(float))
    wls = sm.WLS(apistrat["api00"].astype(float), X, weights=apistrat["pw"]).fit()
    np.testing.assert_allclose(regress(design, LINEAR)["estimate"], wls.params, rtol=1e-10)
    y = (apistrat["sch.wide"] == "Yes").astype(float)
    glm = sm.GLM(
        y, X[["const", "ell", "meals"]], family=sm.families.Binomial(), var_weights=apistrat["pw"]
    ).fit(tol=1e-12)
    got = regress(design, LOGIT, family="binomial")
    np.testing.assert_allclose(got["estimate"], glm.params, rtol=1e-8)


def test_rows_with_missing_values_are_dropped_and_counted(apistrat: pd.DataFrame) -> None:
    data = apistrat.copy()
    data.loc[[3, 10, 50], "mobility"] = np.nan
    data.loc[[10, 77], "api00"] = np.nan
    design = SurveyDesign(data, weights="pw", strata="stype", fpc="fpc")
    got = regress(design, LINEAR)
    assert got["dropped"].unique().tolist() == [4]
    assert got["n"].unique().tolist() == [196]
    keep = data.dropna(subset=["api00", "mobility"])
    X = sm.add_constant(keep[["ell", "meals", "mobility"]].astype(float))
    wls = sm.WLS(keep["api00"], X, weights=keep["pw"]).fit()
    np.testing.assert_allclose(got["estimate"], wls.params, rtol=1e-10)
    # dropped rows keep their strata: same result as zero scores on the full design
    assert np.all(np.isfinite(got["se"])) and np.all(got["se"] > 0)


def test_replicate_design_refits_every_replicate(dstrat: SurveyDesign) -> None:
    jk = dstrat.replicate("jkn")
    got = regress(jk, LINEAR)
    data = jk.data
    X = sm.add_constant(data[["ell", "meals", "mobility"]].astype(float)).to_numpy()
    y = data["api00"].to_numpy(dtype=float)
    reps = jk.replicate_weights
    betas = np.array([sm.WLS(y, X, weights=reps[:, r]).fit().params for r in range(reps.shape[1])])
    full = got["estimate"].to_numpy()
    want = np.sqrt(np.diag(jk.replicate_variance(full, betas)))
    np.testing.assert_allclose(got["se"], want, rtol=1e-9)
    taylor = regress(dstrat, LINEAR)["se"]
    assert np.all(np.abs(got["se"] / taylor - 1) < 0.2)  # jackknife ~ linearisation
    assert got["df"].unique().tolist() == [jk.degrees_of_freedom + 1 - 4]


def test_logistic_model_on_a_bootstrap_design(dstrat: SurveyDesign) -> None:
    boot = dstrat.replicate("bootstrap", replicates=60, seed=3)
    got = regress(boot, LOGIT, family="binomial")
    taylor = regress(dstrat, LOGIT, family="binomial")
    np.testing.assert_allclose(got["estimate"], taylor["estimate"], rtol=1e-12)
    assert np.all(np.abs(got["se"] / taylor["se"] - 1) < 0.35)


def test_by_fits_each_domain_with_the_whole_design(dclus1: SurveyDesign) -> None:
    """Each domain's df is its own PSUs minus strata + 1 - p, as R's
    ``svyglm(api00 ~ ell + meals, subset(dclus1, stype == s))$df.residual`` (12, 5, 9)."""
    got = regress(dclus1, "api00 ~ ell + meals", by="stype")
    assert got["stype"].unique().tolist() == ["E", "H", "M"]
    data = dclus1.data
    for stype, rows in got.groupby("stype"):
        part = data[data["stype"] == stype]
        X = sm.add_constant(part[["ell", "meals"]].astype(float))
        wls = sm.WLS(part["api00"].astype(float), X, weights=part["pw"]).fit()
        np.testing.assert_allclose(rows["estimate"], wls.params, rtol=1e-9)
        assert rows["n"].iloc[0] == len(part)
    assert got.groupby("stype")["df"].first().tolist() == [12, 5, 9]


def test_domains_where_the_model_cannot_be_fitted_get_a_note(dclus1: SurveyDesign) -> None:
    got = regress(dclus1, "api00 ~ ell + C(stype)", by="stype")  # stype is constant within
    notes = got.groupby("stype")["note"].first()
    assert notes.tolist() == ["a term is zero on every row"] * 3  # another type's dummy
    assert got["estimate"].isna().all()
    fine = regress(dclus1, "api00 ~ ell", by="stype")
    assert (fine["note"] == "").all()
    with pytest.raises(RegressionError, match="linearly dependent"):
        regress(dclus1, "api00 ~ ell + I(ell / 2)")


def test_domain_variance_equals_zeroed_scores_on_the_full_design(dclus1: SurveyDesign) -> None:
    """A domain fit is the full-design fit of a model whose scores vanish outside it."""
    got = regress(dclus1, "api00 ~ ell", by="stype")
    rows = got[got["stype"] == "E"]
    data = dclus1.data
    inside = (data["stype"] == "E").to_numpy()
    X = np.column_stack([np.ones(len(data)), data["ell"].to_numpy(dtype=float)])
    y = data["api00"].to_numpy(dtype=float)
    w = dclus1.weights * inside
    beta = np.linalg.solve((X * w[:, None]).T @ X, (X * w[:, None]).T @ y)
    bread = np.linalg.inv((X * w[:, None]).T @ X)
    scores = X * ((y - X @ beta) * inside)[:, None]
    cov = bread @ dclus1.total_covariance(scores) @ bread
    np.testing.assert_allclose(rows["se"], np.sqrt(np.diag(cov)), rtol=1e-10)


def test_bad_requests_are_named(dstrat: SurveyDesign) -> None:
    with pytest.raises(RegressionError, match="family"):
        regress(dstrat, LINEAR, family="gamma")  # type: ignore[arg-type]
    with pytest.raises(RegressionError, match="formula"):
        regress(dstrat, "api00 ell")
    with pytest.raises(RegressionError, match="0/1 response"):
        regress(dstrat, LINEAR, family="binomial")
    with pytest.raises(RegressionError, match="true/false response"):
        regress(dstrat, "stype ~ ell")
    with pytest.raises(RegressionError, match="nonexistent"):
        regress(dstrat, "api00 ~ nonexistent")
    with pytest.raises(RegressionError, match="by: column 'agency'"):
        regress(dstrat, LINEAR, by="agency")
    with pytest.raises(RegressionError, match="linearly dependent"):
        regress(dstrat, "api00 ~ ell + I(2 * ell)")
    assert issubclass(RegressionError, AnalysisError)


def test_replicate_fits_that_lose_a_whole_domain_get_a_note(dclus1: SurveyDesign) -> None:
    """Each district is one PSU: its jackknife replicate leaves the domain empty."""
    got = regress(dclus1.replicate("jk1"), "api00 ~ ell", by="dnum")
    notes = got.groupby("dnum")["note"].first()
    assert notes.str.startswith("a replicate's fit is singular").sum() == 12
    assert notes.str.startswith("too few rows").sum() == 3
    assert got["estimate"].isna().all()
    tiny = SurveyDesign(dclus1.data.head(2), weights="pw")
    with pytest.raises(RegressionError, match="need more than 1 design degrees of freedom"):
        regress(tiny, "api00 ~ ell")
