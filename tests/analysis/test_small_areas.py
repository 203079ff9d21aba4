"""small_area_estimates: Fay-Herriot cells made from response-level data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import SurveyDesign
from analysis.sae import FayHerriotError, fay_herriot
from analysis.small_areas import small_area_estimates


@pytest.fixture(scope="module")
def responses() -> pd.DataFrame:
    """8 agencies x 6 provinces; cell sizes from 1 to about 150 responses."""
    rng = np.random.default_rng(5)
    n = 3000
    agency = rng.choice(8, n, p=np.array([30, 20, 15, 12, 10, 8, 4, 1]) / 100)
    province = rng.choice(6, n, p=[0.4, 0.25, 0.15, 0.1, 0.07, 0.03])
    effect = rng.normal(0, 6, 8)[agency] + rng.normal(0, 4, 6)[province]
    return pd.DataFrame(
        {
            "agency": [f"A{a}" for a in agency],
            "province": province,
            "stratum": agency,
            "w": rng.uniform(5, 20, n),
            "index": np.clip(rng.normal(60 + effect, 20), 0, 100),
        }
    )


@pytest.fixture(scope="module")
def design(responses: pd.DataFrame) -> SurveyDesign:
    return SurveyDesign(responses, weights="w", strata="stratum")


def test_cells_are_the_direct_estimates_and_the_model_is_fay_herriot(design):
    result = small_area_estimates(design, "index", ["agency", "province"], parent="agency")
    table = result.table
    direct = design.mean("index", by=["agency", "province"], method="wald")
    np.testing.assert_allclose(table["direct"], direct["estimate"], rtol=1e-12)
    np.testing.assert_array_equal(table["n"], direct["n"])
    # smoothed sampling variances: k / n with k the median of se^2 n (cells with n >= 2)
    usable = (direct["n"] >= 2) & (direct["se"] > 0)
    k = np.median(direct.loc[usable, "se"] ** 2 * direct.loc[usable, "n"])
    np.testing.assert_allclose(table["variance"], k / table["n"], rtol=1e-12)
    assert table["variance_smoothed"].all()
    # the auxiliary: the agency's own direct mean, and the log of the cell's weight sum
    agency = design.mean("index", by="agency").set_index("agency")["estimate"]
    np.testing.assert_allclose(table["agency_index"], table["agency"].map(agency), rtol=1e-12)
    # the same model fitted by hand gives the same EBLUPs and MSEs
    fit = fay_herriot(table["direct"], table["variance"], table[["agency_index", "log_size"]])
    np.testing.assert_allclose(table["eblup"], fit.table["eblup"], rtol=1e-12)
    np.testing.assert_allclose(table["mse"], fit.table["mse"], rtol=1e-12)
    np.testing.assert_allclose(table["rmse"] ** 2, table["mse"], rtol=1e-12)
    assert result.fit.beta["term"].tolist() == ["(Intercept)", "agency_index", "log_size"]


def test_only_cells_that_fail_the_quality_rule_are_model_based(design):
    table = small_area_estimates(
        design, "index", ["agency", "province"], parent="agency", min_n=30, max_cv=0.05
    ).table
    passes = (table["n"] >= 30) & (table["direct_cv"] <= 0.05)
    np.testing.assert_array_equal(table["direct_ok"], passes)
    np.testing.assert_array_equal(table["model_based"], ~passes)
    np.testing.assert_allclose(table.loc[passes, "estimate"], table.loc[passes, "direct"])
    np.testing.assert_allclose(table.loc[~passes, "estimate"], table.loc[~passes, "eblup"])
    # thin cells lean on the model: their EBLUP's MSE is well below their direct variance
    thin = table["n"] < 10
    assert thin.sum() >= 3
    assert (table.loc[thin, "mse"] < table.loc[thin, "variance"]).all()


def test_direct_variances_are_kept_where_usable(design):
    table = small_area_estimates(
        design, "index", ["agency", "province"], parent="agency", variance="direct"
    ).table
    usable = (table["n"] >= 2) & (table["direct_se"] > 0)
    np.testing.assert_allclose(
        table.loc[usable, "variance"], table.loc[usable, "direct_se"] ** 2, rtol=1e-12
    )
    np.testing.assert_array_equal(table["variance_smoothed"], ~usable)
    assert (~usable).any()  # single-response cells exist and are smoothed, not dropped


def test_bootstrap_mse_is_reproducible(design):
    first = small_area_estimates(design, "index", "agency", bootstrap=50, seed=3).table
    again = small_area_estimates(design, "index", "agency", bootstrap=50, seed=3).table
    np.testing.assert_array_equal(first["mse"], again["mse"])
    assert (first["mse"] > 0).all()


def test_bad_requests_are_named(design, responses):
    with pytest.raises(FayHerriotError, match="column 'district' is not in the data"):
        small_area_estimates(design, "index", ["agency", "district"])
    with pytest.raises(FayHerriotError, match="several values within a cell"):
        small_area_estimates(design, "index", "agency", parent="province")
    with pytest.raises(FayHerriotError, match="auxiliary variables: none"):
        small_area_estimates(design, "index", "agency", log_size=False)
    with pytest.raises(FayHerriotError, match="variance: expected"):
        small_area_estimates(design, "index", "agency", variance="raw")
    with pytest.raises(FayHerriotError, match="min_n"):
        small_area_estimates(design, "index", "agency", min_n=0)
    cells = pd.DataFrame({"agency": ["A0", "A0"], "x": [1.0, 2.0]})
    with pytest.raises(FayHerriotError, match="one row per cell"):
        small_area_estimates(design, "index", "agency", auxiliary=cells, covariates=["x"])
    cells = pd.DataFrame({"agency": [f"A{a}" for a in range(8)], "x": list("abcdefgh")})
    with pytest.raises(FayHerriotError, match="'x' must be numeric"):
        small_area_estimates(design, "index", "agency", auxiliary=cells, covariates=["x"])
    with pytest.raises(FayHerriotError, match="size: column 'N'"):
        small_area_estimates(design, "index", "agency", size="N")


def test_a_single_response_is_never_a_precise_direct_estimate(design):
    """One response has a linearised SE of 0 up to rounding: smoothed, and it fails the
    quality rule even when min_n allows one response."""
    table = small_area_estimates(
        design, "index", ["agency", "province"], variance="direct", min_n=1, max_cv=1.0
    ).table
    single = table["n"] == 1
    assert single.any()
    assert table.loc[single, "variance_smoothed"].all()
    assert not table.loc[single, "direct_ok"].any() and table.loc[single, "model_based"].all()
    assert (table.loc[single, "gamma"] < 0.9).all()
