"""Replicate designs built here: bootstrap, jackknife, and the replicate contract."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import DesignError


def test_bootstrap_is_reproducible_and_close_to_taylor(dstrat):
    first = dstrat.replicate("bootstrap", replicates=400, seed=3)
    second = dstrat.replicate("bootstrap", replicates=400, seed=3)
    assert first.replicate_weights.shape == (200, 400)
    assert np.array_equal(first.replicate_weights, second.replicate_weights)
    taylor = dstrat.mean("api00", by="stype", method="wald")
    boot = first.mean("api00", by="stype", method="wald")
    assert boot["estimate"].to_numpy() == pytest.approx(taylor["estimate"].to_numpy())
    # no fpc in the bootstrap (R's default): compare with the with-replacement SE
    fpc = np.sqrt(1 - np.array([100 / 4421, 50 / 755, 50 / 1018]))
    assert boot["se"].to_numpy() == pytest.approx(taylor["se"].to_numpy() / fpc, rel=0.15)
    # R's degf: the rank of the weights - 1; each stratum's counts sum to n_h - 1 in every
    # replicate, so 200 PSUs in 3 strata give rank 198, not 200
    assert first.degrees_of_freedom == 197 == np.linalg.matrix_rank(first.replicate_weights) - 1


def test_bootstrap_weights_resample_within_strata(dstrat):
    design = dstrat.replicate("bootstrap", replicates=50, seed=1)
    weights = design.replicate_weights
    stype = design.data["stype"].to_numpy()
    for level, n in (("E", 100), ("H", 50), ("M", 50)):
        rows = stype == level
        multipliers = weights[rows] / dstrat.weights[rows][:, None]
        # n - 1 draws rescaled by n / (n - 1): multipliers sum to n in every replicate
        assert multipliers.sum(axis=0) == pytest.approx(np.full(50, n))


def test_replicate_contract(dclus1):
    design = dclus1.replicate("jk1")
    assert design.is_replicate and not dclus1.is_replicate
    assert dclus1.replicate_weights is None
    y = design.data["api00"].to_numpy(float)
    cov = design.total_covariance(np.column_stack([y, np.ones_like(y)]))
    full = design.total("api00").iloc[0]
    assert np.sqrt(cov[0, 0]) == pytest.approx(full["se"])
    reps = design.replicate_weights.T @ y
    var = design.replicate_variance(np.array([full["estimate"]]), reps[:, None])
    assert np.sqrt(var[0, 0]) == pytest.approx(full["se"])
    with pytest.raises(DesignError, match="already has replicate weights"):
        design.replicate("jk1")
    with pytest.raises(DesignError, match="Taylor design"):
        dclus1.replicate_variance(np.zeros(1), np.zeros((3, 1)))


def test_taylor_total_covariance_contract(dstrat):
    """total_covariance applies the weights itself and matches svytotal's SE."""
    y = dstrat.data["enroll"].to_numpy(float)
    cov = dstrat.total_covariance(y[:, None])
    assert cov.shape == (1, 1)
    assert np.sqrt(cov[0, 0]) == pytest.approx(dstrat.total("enroll")["se"].iloc[0], rel=1e-12)
    assert dstrat.degrees_of_freedom == 197


def test_fay_matches_brr_for_a_total():
    """Fay's perturbation (rho) scales replicate deviations by (1 - rho) and the scale by
    1 / (1 - rho)^2: for a linear statistic the variance equals BRR's exactly."""
    from pathlib import Path

    import pandas as pd

    from analysis import SurveyDesign

    data = pd.read_csv(
        Path(__file__).resolve().parents[1] / "data" / "replicate" / "nhanes2brr_subset.csv"
    )
    columns = [c for c in data.columns if c.startswith("brr_")]
    rho = 0.3
    fay = data.copy()
    multipliers = data[columns].to_numpy() / data[["finalwgt"]].to_numpy()
    fay[columns] = data[["finalwgt"]].to_numpy() * (rho + (1 - rho) * multipliers)
    brr = SurveyDesign(data, weights="finalwgt", repweights=columns, rep_method="brr")
    fay_design = SurveyDesign(
        fay, weights="finalwgt", repweights=columns, rep_method="fay", fay_rho=rho
    )
    assert fay_design.total("weight")["se"].iloc[0] == pytest.approx(
        brr.total("weight")["se"].iloc[0], rel=1e-10
    )


def test_replicate_weight_blocks_are_slices_of_the_matrix(dstrat, dclus1):
    """Models refit replicates block by block: the blocks are the matrix's columns."""
    for design in (dstrat.replicate("bootstrap", replicates=50, seed=2), dclus1.replicate("jk1")):
        whole = design.replicate_weights
        blocks = list(design.replicate_weight_blocks(16))
        assert [b.shape[1] for b in blocks][:-1] == [16] * (len(blocks) - 1)
        np.testing.assert_array_equal(np.hstack(blocks), whole)
        rows = np.array([3, 0, 7])
        np.testing.assert_array_equal(
            np.hstack(list(design.replicate_weight_blocks(7, rows))), whole[rows]
        )
    with pytest.raises(DesignError, match="no replicate weights"):
        dstrat.replicate_weight_blocks()


def test_replicate_files_of_every_type_reproduce_r(apiclus1, apistrat, api_reference):
    """svrepdesign on files: JK1 columns (as written by as.svrepdesign(dclus1, "JK1")) with
    its scale (n-1)/n (1-f), and a combined.weights=FALSE file; both give R's SE."""
    from analysis import SurveyDesign

    jk1 = SurveyDesign(apiclus1, weights="pw", psu="dnum", fpc="fpc").replicate("jk1")
    columns = [f"rep_{r}" for r in range(jk1.replicate_weights.shape[1])]
    file = apiclus1.assign(**dict(zip(columns, jk1.replicate_weights.T, strict=True)))
    n, fraction = len(columns), 15 / 757
    from_file = SurveyDesign(
        file,
        weights="pw",
        repweights="rep_[0-9]+",
        rep_method="jk1",
        rep_scale=(n - 1) / n * (1 - fraction),
    )
    reference = api_reference.loc["clus1_jk1_mean_api00"]
    row = from_file.mean("api00").iloc[0]
    assert (row["estimate"], row["se"]) == pytest.approx(
        (reference["estimate"], reference["se"]), rel=1e-8
    )
    assert from_file.degrees_of_freedom == 14
    factors = file[columns].to_numpy() / file[["pw"]].to_numpy()
    uncombined = SurveyDesign(
        file.assign(**dict(zip(columns, factors.T, strict=True))),
        weights="pw",
        repweights=columns,
        rep_method="jk1",
        rep_scale=(n - 1) / n * (1 - fraction),
        combined_weights=False,
    )
    assert uncombined.mean("api00")["se"].iloc[0] == pytest.approx(reference["se"], rel=1e-8)


def test_bootstrap_columns_from_a_file_match_the_built_design(dstrat, apistrat):
    """A file of bootstrap weights (rep_method="bootstrap", R's scale 1/(R-1)) gives the
    same SEs as the design that made them."""
    from analysis import SurveyDesign

    built = dstrat.replicate("bootstrap", replicates=60, seed=5)
    columns = [f"b{r}" for r in range(60)]
    file = apistrat.assign(**dict(zip(columns, built.replicate_weights.T, strict=True)))
    from_file = SurveyDesign(file, weights="pw", repweights=columns, rep_method="bootstrap")
    for statistic in ("mean", "total"):
        assert getattr(from_file, statistic)("api00")["se"].iloc[0] == pytest.approx(
            getattr(built, statistic)("api00")["se"].iloc[0], rel=1e-10
        )


def test_fpc_as_sampling_fraction_equals_population_size(apistrat, apiclus1):
    """fpc may hold population sizes (all >= 1) or sampling fractions (all <= 1), as R."""
    from analysis import SurveyDesign

    sizes = SurveyDesign(apistrat, weights="pw", strata="stype", fpc="fpc")
    n_h = apistrat.groupby("stype")["stype"].transform("size")
    fractions = SurveyDesign(
        apistrat.assign(f=n_h / apistrat["fpc"]), weights="pw", strata="stype", fpc="f"
    )
    for design in (sizes, fractions):
        row = design.mean("api00", by="stype").iloc[0]
        assert row["se"] == pytest.approx(sizes.mean("api00", by="stype")["se"].iloc[0])
    assert fractions.total("enroll")["se"].iloc[0] == pytest.approx(
        sizes.total("enroll")["se"].iloc[0], rel=1e-12
    )
    # without weights, they come from the fpcs: N_h / n_h
    derived = SurveyDesign(apistrat, strata="stype", fpc="fpc")
    np.testing.assert_allclose(derived.weights, apistrat["fpc"] / n_h, rtol=1e-12)
