"""Reproduce R ``survey`` 4.1-1 on replicate-weight designs.

Files with replicate weights (tests/data/replicate, made by tests/data/rep_ref.R)::

    d <- svrepdesign(weights=~finalwgt, repweights="brr_[0-9]+", type="BRR", data=b,
                     combined.weights=TRUE, mse=mse)
    svymean(~height+weight, d); svyratio(~weight, ~height, d); svytotal(~weight, d)
    d <- svrepdesign(weights=~finalwgt, repweights="jkw_[0-9]+", type="JKn",
                     rscales=rep(0.5, R), scale=1, data=j, combined.weights=TRUE, mse=mse)
    svymean(~height+weight, d); svytotal(~weight, d)

Replicate designs built from Taylor designs (tests/data/api_ref.R)::

    rjk1 <- as.svrepdesign(dclus1, type="JK1"); svymean(~api00, rjk1)
    svyby(~api00, ~stype, rjk1, svymean)
    rjkn <- as.svrepdesign(dstrat, type="JKn"); svymean(~api00, rjkn)
    svyquantile(~api00, dstrat, c(0.5), ci=TRUE)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis import SurveyDesign

DATA = Path(__file__).resolve().parents[1] / "data"

EXACT = 1e-8


@pytest.fixture(scope="module")
def replicate_reference() -> pd.DataFrame:
    return pd.read_csv(DATA / "replicate" / "replicate_reference.csv")


def reference_row(table: pd.DataFrame, case: str, variable: str) -> pd.Series:
    rows = table[(table["case"] == case) & (table["variable"] == variable)]
    assert len(rows) == 1, (case, variable)
    return rows.iloc[0]


@pytest.fixture(scope="module")
def nhanes_brr() -> pd.DataFrame:
    return pd.read_csv(DATA / "replicate" / "nhanes2brr_subset.csv")


@pytest.fixture(scope="module")
def nhanes_jk() -> pd.DataFrame:
    return pd.read_csv(DATA / "replicate" / "nhanes2jk_subset.csv")


@pytest.mark.parametrize("mse", [False, True])
def test_brr(mse, nhanes_brr, replicate_reference):
    design = SurveyDesign(
        nhanes_brr, weights="finalwgt", repweights="brr_[0-9]+", rep_method="brr", mse=mse
    )
    flag = "TRUE" if mse else "FALSE"
    means = design.mean(["height", "weight"])
    for _, row in means.iterrows():
        ref = reference_row(replicate_reference, f"brr_mean_mse{flag}", row["variable"])
        assert row["estimate"] == pytest.approx(ref["estimate"], rel=EXACT)
        assert row["se"] == pytest.approx(ref["se"], rel=EXACT)
    ratio = design.ratio("weight", "height").iloc[0]
    ref = reference_row(replicate_reference, f"brr_ratio_weight_height_mse{flag}", "weight/height")
    assert (ratio["estimate"], ratio["se"]) == pytest.approx(
        (ref["estimate"], ref["se"]), rel=EXACT
    )
    total = design.total("weight").iloc[0]
    ref = reference_row(replicate_reference, f"brr_total_mse{flag}", "weight")
    assert (total["estimate"], total["se"]) == pytest.approx(
        (ref["estimate"], ref["se"]), rel=EXACT
    )
    assert design.degrees_of_freedom == 31  # rank of 32 BRR replicates - 1


@pytest.mark.parametrize("mse", [False, True])
def test_jkn_with_rscales(mse, nhanes_jk, replicate_reference):
    replicates = sum(c.startswith("jkw_") for c in nhanes_jk.columns)
    design = SurveyDesign(
        nhanes_jk,
        weights="finalwgt",
        repweights="jkw_[0-9]+",
        rep_method="jkn",
        rep_rscales=[0.5] * replicates,
        rep_scale=1,
        mse=mse,
    )
    flag = "TRUE" if mse else "FALSE"
    for variable in ("height", "weight"):
        row = design.mean(variable).iloc[0]
        ref = reference_row(replicate_reference, f"jkn_rscale0.5_mean_mse{flag}", variable)
        assert (row["estimate"], row["se"]) == pytest.approx(
            (ref["estimate"], ref["se"]), rel=EXACT
        )
    total = design.total("weight").iloc[0]
    ref = reference_row(replicate_reference, f"jkn_rscale0.5_total_mse{flag}", "weight")
    assert (total["estimate"], total["se"]) == pytest.approx(
        (ref["estimate"], ref["se"]), rel=EXACT
    )


def test_jk1_from_cluster_design(dclus1, api_reference):
    """as.svrepdesign(dclus1, type="JK1"); svymean and svyby by stype"""
    design = dclus1.replicate("jk1")
    assert design.is_replicate and design.degrees_of_freedom == 14
    row = design.mean("api00").iloc[0]
    ref = api_reference.loc["clus1_jk1_mean_api00"]
    assert (row["estimate"], row["se"]) == pytest.approx((ref["estimate"], ref["se"]), rel=EXACT)
    for _, row in design.mean("api00", by="stype").iterrows():
        ref = api_reference.loc[f"clus1_jk1_by_stype_mean_api00_{row['stype']}"]
        assert (row["estimate"], row["se"]) == pytest.approx(
            (ref["estimate"], ref["se"]), rel=EXACT
        )


def test_jkn_from_stratified_design(dstrat, api_reference):
    """as.svrepdesign(dstrat, type="JKn"); svymean(~api00, rjkn)"""
    row = dstrat.replicate("jkn").mean("api00").iloc[0]
    ref = api_reference.loc["strat_jkn_mean_api00"]
    assert (row["estimate"], row["se"]) == pytest.approx((ref["estimate"], ref["se"]), rel=EXACT)


def test_median_with_woodruff_interval(dstrat, api_reference):
    """svyquantile(~api00, dstrat, c(0.5), ci=TRUE): qrule "math", interval.type "mean"."""
    row = dstrat.quantile("api00", 0.5, method="woodruff").iloc[0]
    ref = api_reference.loc["strat_median_api00"]
    for column in ("estimate", "se", "ci_low", "ci_high"):
        assert row[column] == pytest.approx(ref[column], rel=EXACT), column
