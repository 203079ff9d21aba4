"""Property tests on random stratified cluster designs (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import SurveyDesign

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def samples(draw) -> pd.DataFrame:
    """A stratified two-level sample: 1-4 strata of 2-5 PSUs of 1-4 rows, a domain column."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_strata = draw(st.integers(1, 4))
    rows = []
    for h in range(n_strata):
        n_psu = int(rng.integers(2, 6))
        population = n_psu + int(rng.integers(0, 30))
        for p in range(n_psu):
            for _ in range(int(rng.integers(1, 5))):
                rows.append((h, f"{h}-{p}", population))
    frame = pd.DataFrame(rows, columns=["stratum", "psu", "N_h"])
    n = len(frame)
    frame["w"] = rng.uniform(1, 20, n)
    frame["y"] = rng.normal(50, 20, n).round(1)
    frame["yes"] = rng.integers(0, 2, n)
    frame["agency"] = rng.choice(["a", "b", "c"], n)
    frame["cell"] = rng.choice(["u", "v"], n)
    return frame


def design_of(frame: pd.DataFrame) -> SurveyDesign:
    return SurveyDesign(frame, weights="w", strata="stratum", psu="psu", fpc="N_h")


def poststratified(frame: pd.DataFrame) -> SurveyDesign:
    counts = frame.groupby("cell")["w"].sum() * 1.3
    return design_of(frame).poststratify("cell", counts.to_dict())


@SETTINGS
@given(samples(), st.booleans())
def test_domain_total_equals_zeroed_full_total(frame, weighted):
    """svyby(~y, ~agency, d, svytotal) equals svytotal(~I(y * (agency == a)), d)."""
    build = poststratified if weighted else design_of
    by_domain = build(frame).total("y", by="agency").set_index("agency")
    for agency, row in by_domain.iterrows():
        zeroed = frame.assign(y=frame["y"].where(frame["agency"] == agency, 0.0))
        full = build(zeroed).total("y").iloc[0]
        assert row["estimate"] == pytest.approx(full["estimate"], rel=1e-9, abs=1e-9)
        scale = float(np.abs(frame["w"] * frame["y"]).sum())
        assert row["se"] == pytest.approx(full["se"], rel=1e-7, abs=1e-7 * scale)


@SETTINGS
@given(samples(), st.booleans())
def test_domain_mean_equals_zeroed_full_ratio(frame, weighted):
    """svyby(~y, ~agency, d, svymean) equals svyratio(~I(y * in_a), ~in_a, d) on the full
    design: the domain mean is the ratio of the zeroed variable to the domain indicator."""
    build = poststratified if weighted else design_of
    by_domain = build(frame).mean("y", by="agency").set_index("agency")
    for agency, row in by_domain.iterrows():
        inside = (frame["agency"] == agency).astype(float)
        zeroed = frame.assign(y=frame["y"] * inside, inside=inside)
        full = build(zeroed).ratio("y", "inside").iloc[0]
        assert row["estimate"] == pytest.approx(full["estimate"], rel=1e-9)
        assert row["se"] == pytest.approx(full["se"], rel=1e-6, abs=1e-9 * frame["y"].abs().max())


@SETTINGS
@given(samples())
def test_domain_variance_matches_total_covariance(frame):
    """The domain engine and the dense ``total_covariance`` agree (after calibration)."""
    design = poststratified(frame)
    by_domain = design.total("y", by="agency").set_index("agency")
    scores = np.column_stack([frame["y"].where(frame["agency"] == a, 0.0) for a in by_domain.index])
    covariance = design.total_covariance(scores)
    # the domain engine expands the calibrated residuals algebraically: near-zero variances
    # carry rounding of order 1e-8 of the totals' scale
    scale = float(np.abs(frame["w"] * frame["y"]).sum())
    assert np.sqrt(np.diag(covariance)) == pytest.approx(
        by_domain["se"].to_numpy(), rel=1e-7, abs=1e-7 * scale
    )


@SETTINGS
@given(samples())
def test_poststratified_weights_sum_to_frame_counts(frame):
    counts = {"u": 1234.0, "v": 567.5}
    if frame["cell"].nunique() < 2:
        return
    design = design_of(frame).poststratify("cell", counts)
    sums = pd.Series(design.weights).groupby(frame["cell"].to_numpy()).sum()
    assert sums.to_dict() == pytest.approx(counts, rel=1e-12)


@SETTINGS
@given(samples(), st.integers(0, 2**32 - 1))
def test_invariant_to_row_order(frame, seed):
    shuffled = frame.sample(frac=1.0, random_state=np.random.RandomState(seed % 2**31))
    for build in (design_of, poststratified):
        original = build(frame).mean("y", by="agency")
        reordered = build(shuffled).mean("y", by="agency")
        columns = ["estimate", "se", "ci_low", "ci_high", "deff"]
        assert reordered[columns].to_numpy() == pytest.approx(
            original[columns].to_numpy(), rel=1e-9, nan_ok=True
        )
        assert list(reordered["n"]) == list(original["n"])


@SETTINGS
@given(samples(), st.floats(0, 100))
def test_all_equal_answers_have_zero_standard_error(frame, value):
    frame = frame.assign(y=value, yes=1)
    design = design_of(frame)
    means = design.mean("y", by="agency")
    assert means["estimate"].to_numpy() == pytest.approx(value)
    assert np.all(means["se"].to_numpy() <= 1e-9 * max(value, 1.0))
    shares = design.proportion("yes", by="agency")
    assert np.all(shares["se"].to_numpy() <= 1e-12)
    assert shares["estimate"].to_numpy() == pytest.approx(1.0)


@SETTINGS
@given(samples())
def test_two_by_columns_are_their_combination(frame):
    design = design_of(frame.assign(pair=frame["agency"] + "/" + frame["cell"]))
    crossed = design.mean("y", by=["agency", "cell"])
    combined = design.mean("y", by="pair")
    labels = crossed["agency"] + "/" + crossed["cell"]
    assert list(labels) == list(combined["pair"])
    assert crossed["se"].to_numpy() == pytest.approx(combined["se"].to_numpy(), rel=1e-12)
