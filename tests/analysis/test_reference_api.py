"""Reproduce R ``survey`` 4.1-1 on the ``api`` samples (tests/data/api/api_reference.csv).

The R code (tests/data/api_ref.R) that made each reference row::

    dstrat <- svydesign(id=~1, strata=~stype, weights=~pw, data=apistrat, fpc=~fpc)
    dclus1 <- svydesign(id=~dnum, weights=~pw, data=apiclus1, fpc=~fpc)
    dclus2 <- svydesign(id=~dnum+snum, fpc=~fpc1+fpc2, data=apiclus2)
    dsrs   <- svydesign(id=~1, fpc=~fpc, data=apisrs)
    svymean(~api00, d, deff=TRUE); degf(d); confint(m, df=degf(dstrat))
    svytotal(~enroll, d)                      # na.rm=TRUE for clus2
    svyratio(~api.stu, ~enroll, d)
    svyby(~api00, ~stype, d, svymean)
    svyciprop(~I(sch.wide=="Yes"), d, method=M)   # M = logit, likelihood, beta, mean, xlogit
    postStratify(dclus1, ~stype, data.frame(stype=c("E","H","M"), Freq=c(4421,755,1018)))
    rake(dclus1, list(~stype, ~sch.wide), list(pop.types, data.frame(sch.wide=c("No","Yes"),
         Freq=c(1072,5122))))
    calibrate(dclus1, ~stype+api99, c(`(Intercept)`=6194, stypeH=755, stypeM=1018,
              api99=3914069))
    as.svrepdesign(dclus1, type="JK1"); as.svrepdesign(dstrat, type="JKn")
    svyquantile(~api00, dstrat, c(0.5), ci=TRUE)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import DesignError, SurveyDesign

EXACT = 1e-8


def check(row: pd.Series, reference: pd.Series, columns: tuple[str, ...], rel: float = EXACT):
    for column in columns:
        assert row[column] == pytest.approx(float(reference[column]), rel=rel), column


@pytest.mark.parametrize("name", ["strat", "clus1", "clus2", "srs"])
def test_mean_api00(name, request, api_reference):
    """svymean(~api00, d, deff=TRUE); degf(d)"""
    design: SurveyDesign = request.getfixturevalue(f"d{name}")
    row = design.mean("api00", method="wald").iloc[0]
    reference = api_reference.loc[f"{name}_mean_api00"]
    check(row, reference, ("estimate", "se"))
    if not pd.isna(reference["deff"]):
        check(row, reference, ("deff",))
    if not pd.isna(reference["df"]):
        assert row["df"] == float(reference["df"]) == design.degrees_of_freedom


def test_strat_mean_t_interval(dstrat, api_reference):
    """confint(svymean(~api00, dstrat), df=degf(dstrat))"""
    row = dstrat.mean("api00", method="wald").iloc[0]
    check(row, api_reference.loc["strat_mean_api00_ci_t"], ("ci_low", "ci_high"))


@pytest.mark.parametrize("name", ["strat", "clus1", "clus2"])
def test_total_enroll(name, request, api_reference):
    """svytotal(~enroll, d) (na.rm=TRUE for clus2, which has a missing enroll)"""
    design: SurveyDesign = request.getfixturevalue(f"d{name}")
    row = design.total("enroll", dropna=True).iloc[0]
    check(row, api_reference.loc[f"{name}_total_enroll"], ("estimate", "se"))


@pytest.mark.parametrize("name", ["strat", "clus1"])
def test_ratio(name, request, api_reference):
    """svyratio(~api.stu, ~enroll, d)"""
    design: SurveyDesign = request.getfixturevalue(f"d{name}")
    row = design.ratio("api.stu", "enroll").iloc[0]
    check(row, api_reference.loc[f"{name}_ratio_apistu_enroll"], ("estimate", "se"))


@pytest.mark.parametrize("name", ["strat", "clus1"])
def test_by_stype(name, request, api_reference):
    """svyby(~api00, ~stype, d, svymean)"""
    design: SurveyDesign = request.getfixturevalue(f"d{name}")
    table = design.mean("api00", by="stype")
    assert list(table["stype"]) == ["E", "H", "M"]
    for _, row in table.iterrows():
        check(
            row, api_reference.loc[f"{name}_by_stype_mean_api00_{row['stype']}"], ("estimate", "se")
        )


@pytest.fixture(scope="module")
def schwide_designs(apistrat, apiclus1):
    """Designs whose data carry I(sch.wide == "Yes") as a boolean column ``yes``."""
    strat = apistrat.assign(yes=apistrat["sch.wide"] == "Yes")
    clus1 = apiclus1.assign(yes=apiclus1["sch.wide"] == "Yes")
    return {
        "strat": SurveyDesign(strat, weights="pw", strata="stype", fpc="fpc"),
        "clus1": SurveyDesign(clus1, weights="pw", psu="dnum", fpc="fpc"),
    }


@pytest.mark.parametrize("name", ["strat", "clus1"])
@pytest.mark.parametrize("method", ["logit", "beta", "mean", "xlogit"])
def test_proportion_intervals(name, method, schwide_designs, api_reference):
    """svyciprop(~I(sch.wide=="Yes"), d, method=M); R's logit estimate comes from a glm fit
    (converged to ~5e-10), hence the estimate is checked at 1e-8 like the rest."""
    row = schwide_designs[name].proportion("yes", method=method).iloc[0]
    reference = api_reference.loc[f"{name}_prop_schwide_{method}"]
    check(row, reference, ("estimate", "se", "ci_low", "ci_high"))
    assert row["df"] == schwide_designs[name].degrees_of_freedom


@pytest.mark.parametrize("name", ["strat", "clus1"])
def test_proportion_likelihood_interval(name, schwide_designs, api_reference):
    """svyciprop(~I(sch.wide=="Yes"), d, method="likelihood").

    R profiles the deviance of its glm fit on a grid of up to 19 points and interpolates
    it with a cubic spline; we reproduce that algorithm and R's glm iterations (the
    profile's centre and the Rao-Scott factor come from glm's last two iterations), so
    the limits agree to 1e-8 (observed 7e-11), like everything else.
    """
    row = schwide_designs[name].proportion("yes", method="likelihood").iloc[0]
    reference = api_reference.loc[f"{name}_prop_schwide_likelihood"]
    check(row, reference, ("estimate", "se", "ci_low", "ci_high"))


STYPE = {"E": 4421, "H": 755, "M": 1018}


@pytest.fixture(scope="module")
def weighted_designs(dclus1):
    """postStratify(dclus1, ~stype, pop.types); rake(dclus1, list(~stype, ~sch.wide),
    list(pop.types, pop.schwide)) with R's defaults (maxit=10, epsilon=1);
    calibrate(dclus1, ~stype+api99, c(6194, stypeH=755, stypeM=1018, api99=3914069))"""
    return {
        "poststrat": dclus1.poststratify("stype", STYPE),
        "rake": dclus1.rake(
            {"stype": STYPE, "sch.wide": {"No": 1072, "Yes": 5122}}, max_iter=10, tol=1
        ),
        "greg": dclus1.calibrate({"stype": STYPE, "api99": 3914069}),
    }


@pytest.mark.parametrize("kind", ["poststrat", "rake", "greg"])
def test_weighting_mean_and_total(kind, weighted_designs, api_reference):
    """svymean(~api00, d) and svytotal(~enroll, d) on the weighted dclus1."""
    rel = 1e-6 if kind == "rake" else EXACT
    design = weighted_designs[kind]
    check(
        design.mean("api00").iloc[0],
        api_reference.loc[f"clus1_{kind}_mean_api00"],
        ("estimate", "se"),
        rel,
    )
    check(
        design.total("enroll").iloc[0],
        api_reference.loc[f"clus1_{kind}_total_enroll"],
        ("estimate", "se"),
        rel,
    )


def test_poststratify_accepts_r_style_population_table(dclus1, api_reference):
    """postStratify's population argument as R's data.frame(stype=..., Freq=...)."""
    table = pd.DataFrame({"stype": ["E", "H", "M"], "Freq": [4421, 755, 1018]})
    row = dclus1.poststratify("stype", table).mean("api00").iloc[0]
    check(row, api_reference.loc["clus1_poststrat_mean_api00"], ("estimate", "se"))


def test_total_covariance_on_two_stage_design(dclus2, api_reference):
    """The dense engine behind svyglm-style callers gives svytotal's SE on dclus2."""
    enroll = dclus2.data["enroll"].fillna(0).to_numpy(float)
    covariance = dclus2.total_covariance(enroll[:, None])
    assert covariance[0, 0] ** 0.5 == pytest.approx(
        float(api_reference.loc["clus2_total_enroll", "se"]), rel=EXACT
    )


# every reference row is checked by a test above or in test_reference_replicate.py /
# test_regression.py; a row added to the reference files without a test fails here
STAT_NAMES = ("mean_api00", "total_enroll")
CHECKED_API_ROWS = {
    *(f"{d}_mean_api00" for d in ("strat", "clus1", "clus2", "srs")),
    "strat_mean_api00_ci_t",
    *(f"{d}_total_enroll" for d in ("strat", "clus1", "clus2")),
    *(f"{d}_ratio_apistu_enroll" for d in ("strat", "clus1")),
    *(f"{d}_by_stype_mean_api00_{s}" for d in ("strat", "clus1") for s in "EHM"),
    *(
        f"{d}_prop_schwide_{m}"
        for d in ("strat", "clus1")
        for m in ("logit", "beta", "mean", "xlogit", "likelihood")
    ),
    *(f"clus1_{k}_{s}" for k in ("poststrat", "rake", "greg") for s in STAT_NAMES),
    "clus1_jk1_mean_api00",
    *(f"clus1_jk1_by_stype_mean_api00_{s}" for s in "EHM"),
    "strat_jkn_mean_api00",
    "strat_median_api00",
}
CHECKED_REPLICATE_CASES = {
    f"{case}_mse{flag}"
    for case in (
        "brr_mean",
        "brr_ratio_weight_height",
        "brr_total",
        "jkn_rscale0.5_mean",
        "jkn_rscale0.5_total",
    )
    for flag in ("TRUE", "FALSE")
}
CHECKED_GLM_CASES = {
    "strat_lm_api00_ell_meals_mobility",
    "clus1_lm_api00_ell_meals_mobility",
    "strat_logit_schwide_ell_meals",
}


def test_every_reference_row_has_a_test(api_reference):
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "data"
    assert set(api_reference.index) == CHECKED_API_ROWS
    replicate = pd.read_csv(data / "replicate" / "replicate_reference.csv")
    assert set(replicate["case"]) == CHECKED_REPLICATE_CASES
    glm = pd.read_csv(data / "glm" / "glm_reference.csv")
    assert set(glm["case"]) == CHECKED_GLM_CASES


@pytest.mark.parametrize("kind", ["clus2", "greg"])
def test_domain_total_covariance_is_total_covariance_per_domain(kind, dclus2, dclus1):
    """All domains' covariance matrices at once equal the dense engine on scores zeroed
    outside each domain (two-stage design; GREG-calibrated design)."""
    design = dclus2 if kind == "clus2" else dclus1.calibrate({"stype": STYPE, "api99": 3914069})
    data = design.data
    scores = np.column_stack([data["api00"], data["api99"], np.ones(len(data))])
    codes = pd.Categorical(data["stype"]).codes.copy()
    codes[:3] = -1  # rows in no domain
    together = design.domain_total_covariance(scores, codes, 3)
    for d in range(3):
        alone = design.total_covariance(scores * (codes == d)[:, None])
        np.testing.assert_allclose(together[d], alone, rtol=1e-10, atol=1e-10 * abs(alone).max())
    with pytest.raises(DesignError, match="replicate design"):
        design.replicate("bootstrap", replicates=5, seed=1).domain_total_covariance(
            scores, codes, 3
        )
