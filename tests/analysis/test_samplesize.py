"""Sample-size and allocation formulas against hand-worked textbook cases.

Every expected number below is worked by hand in the comment beside it from the formulas in
Cochran (1977, ch. 4 and 5) and Lohr (2022, ch. 2 and 3); none is quoted from a book's table.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.samplesize import (
    SampleDesignError,
    allocate,
    budget_completes,
    completes_for_cv,
    completes_for_margin,
    completes_for_proportion,
    cv_of_mean,
    equal_allocation,
    margin_of_error,
    neyman_allocation,
    optimal_allocation,
    power_allocation,
    proportional_allocation,
    stratified_completes,
    stratified_variance,
    z_value,
)

N = np.array([100.0, 200.0, 300.0])
S = np.array([10.0, 20.0, 5.0])


def test_z_value_is_the_two_sided_normal_quantile() -> None:
    assert z_value(0.95) == pytest.approx(1.959963985, rel=1e-9)
    assert z_value(0.90) == pytest.approx(1.644853627, rel=1e-9)


def test_cochran_proportion_formula_gives_the_familiar_384_and_its_fpc() -> None:
    # n0 = 1.959964^2 * 0.5 * 0.5 / 0.05^2 = 384.146; N = 1000: 384.146 / (1 + 383.146/1000)
    assert completes_for_proportion(0.05, 0.5) == pytest.approx(384.1458821, rel=1e-9)
    assert completes_for_proportion(0.05, 0.5, population=1000) == pytest.approx(
        384.1458821 / 1.3831458821, rel=1e-9
    )
    # the same on the percent scale
    assert completes_for_proportion(5, 50, population=1000, percent=True) == pytest.approx(
        277.7334532, rel=1e-8
    )
    # a percentage passed as a fraction is refused, never guessed
    with pytest.raises(SampleDesignError, match="percent=True"):
        completes_for_proportion(5, 50)


def test_proportion_formula_is_the_continuous_one_with_cochrans_s_squared() -> None:
    # Cochran defines S^2 = N P Q / (N - 1) for a 0/1 variable; then n0/(1+n0/N) equals
    # n0'/(1+(n0'-1)/N) with n0' = z^2 P Q / d^2.
    big_n, p = 500.0, 0.3
    s = np.sqrt(big_n * p * (1 - p) / (big_n - 1))
    assert completes_for_margin(0.04, s, population=big_n) == pytest.approx(
        completes_for_proportion(0.04, p, population=big_n), rel=1e-12
    )


def test_mean_formula_hand_example_and_its_inverse() -> None:
    # S = 25, d = 3: n0 = 3.8414588 * 625 / 9 = 266.768; N = 1000: 266.768 / 1.266768 = 210.589
    n = completes_for_margin(3, 25, population=1000)
    assert n == pytest.approx(210.5894522, rel=1e-9)
    assert margin_of_error(n, 25, population=1000) == pytest.approx(3.0, rel=1e-12)
    # a design effect of 2 doubles n0
    assert completes_for_margin(3, 25, deff=2.0) == pytest.approx(2 * 266.7679737, rel=1e-9)


def test_vectorised_over_strata() -> None:
    n = completes_for_margin([2.0, 3.0, 4.0], 20.0, population=[np.inf, 500.0, 50.0])
    assert n.shape == (3,)
    assert n[0] == pytest.approx(1.959963985**2 * 400 / 4, rel=1e-9)
    assert np.all(n[1:] < [500.0, 50.0])


def test_cv_formula_and_its_inverse() -> None:
    # S = 20, mean 70, CV 2%: n0 = (20 / 1.4)^2 = 204.08
    assert completes_for_cv(0.02, 20, 70) == pytest.approx((20 / 1.4) ** 2, rel=1e-12)
    n = completes_for_cv(0.02, 20, 70, population=800)
    assert cv_of_mean(n, 20, 70, population=800) == pytest.approx(0.02, rel=1e-12)


def test_neyman_and_optimal_hand_example() -> None:
    # N S = (1000, 4000, 1500), sum 6500: n = 65 -> (10, 40, 15)
    assert neyman_allocation(65, N, S) == pytest.approx([10, 40, 15])
    # costs (1, 4, 1): N S / sqrt(c) = (1000, 2000, 1500), sum 4500: n = 90 -> (20, 40, 30)
    assert optimal_allocation(90, N, S, [1, 4, 1]) == pytest.approx([20, 40, 30])
    # that allocation costs 20 + 160 + 30 = 210; a budget of 210 buys n = 90
    assert budget_completes(210, N, S, [1, 4, 1]) == pytest.approx(90.0)
    assert budget_completes(260, N, S, [1, 4, 1], fixed_cost=50) == pytest.approx(90.0)


def test_neyman_variance_is_the_textbook_minimum_and_beats_proportional() -> None:
    # V_min = (sum W S)^2 / n - sum W S^2 / N  (Cochran 1977, section 5.5)
    w = N / N.sum()
    v_min = (w @ S) ** 2 / 65 - (w @ S**2) / N.sum()
    assert stratified_variance(neyman_allocation(65, N, S), N, S) == pytest.approx(v_min)
    # = 1.80556 - 0.27083 = 1.53472 by hand
    assert v_min == pytest.approx(65 / 36 - 97500 / 360000)
    v_prop = stratified_variance(proportional_allocation(65, N), N, S)
    assert v_prop > v_min
    # proportional: (1 - f) / n * sum W S^2 with f = 65/600
    assert v_prop == pytest.approx((1 - 65 / 600) / 65 * (w @ S**2))


def test_stratified_completes_inverts_stratified_variance_per_group() -> None:
    groups = ["a", "a", "a", "b", "b"]
    big_n = np.array([100.0, 200.0, 300.0, 40.0, 60.0])
    sd = np.array([10.0, 20.0, 5.0, 15.0, 15.0])
    shares = np.array([1000, 4000, 1500, 600, 900]) / np.array([6500, 6500, 6500, 1500, 1500])
    totals = stratified_completes([1.0, 4.0], big_n, sd, shares, groups=groups)
    n_h = shares * np.repeat(totals, [3, 2])
    assert stratified_variance(n_h, big_n, sd, groups=groups) == pytest.approx([1.0, 4.0])


def test_allocations_sum_to_the_total_and_respect_capacity() -> None:
    # Neyman asks (50, 50) but the first stratum has 10 units: it takes 10, the other 90
    n = neyman_allocation(100, [10, 1000], [100, 1], capacity=[10, 1000])
    assert n == pytest.approx([10, 90])
    rng = np.random.default_rng(1)
    big_n = rng.integers(1, 400, size=200).astype(float)
    sd = rng.uniform(5, 30, size=200)
    groups = rng.choice(["a", "b", "c"], size=200)
    capacity = 0.3 * big_n
    totals = {g: 0.25 * big_n[groups == g].sum() for g in "abc"}
    n = power_allocation(totals, big_n, sd, 0.3, groups=groups, capacity=capacity)
    assert np.all(n <= capacity + 1e-9)
    for g in "abc":
        assert n[groups == g].sum() == pytest.approx(totals[g])
    assert np.isclose(n, capacity).any()  # some were capped and the rest re-shared


def test_too_large_a_total_is_an_error_naming_the_group() -> None:
    with pytest.raises(SampleDesignError, match="group 'b'"):
        allocate({"a": 5, "b": 50}, [1, 1, 1], groups=["a", "b", "b"], capacity=[10, 10, 10])
    with pytest.raises(SampleDesignError, match="mapping"):
        allocate(5, [1, 1], groups=["a", "b"])


def test_equal_and_proportional() -> None:
    assert equal_allocation(30, [5, 100, 1000]) == pytest.approx([10, 10, 10])
    assert equal_allocation(30, [5, 100, 1000], capacity=[5, 100, 1000]) == pytest.approx(
        [5, 12.5, 12.5]
    )
    assert proportional_allocation(60, N) == pytest.approx([10, 20, 30])


def test_bankier_power_allocation_limits() -> None:
    big_n = np.array([100.0, 400.0, 2500.0])
    sd = np.array([20.0, 20.0, 20.0])
    # q = 0 with equal S: equal allocation; q = 1: Neyman (= proportional with equal S)
    assert power_allocation(90, big_n, sd, 0.0) == pytest.approx([30, 30, 30])
    assert power_allocation(90, big_n, sd, 1.0) == pytest.approx(neyman_allocation(90, big_n, sd))
    assert power_allocation(90, big_n, sd, 1.0) == pytest.approx([3, 12, 75])
    # q = 1/2: square-root allocation, sqrt(N) = (10, 20, 50)
    assert power_allocation(80, big_n, sd, 0.5) == pytest.approx([10, 20, 50])
    # unequal S: q = 0 gives n_h proportional to S_h, which minimises the unweighted sum of
    # the areas' variances sum S_h^2 / n_h: any other split of 60 does worse
    sd2 = np.array([10.0, 20.0, 30.0])
    n0 = power_allocation(60, big_n, sd2, 0.0)
    assert n0 == pytest.approx([10, 20, 30])
    for other in ([12, 20, 28], [10, 22, 28], [8, 20, 32]):
        assert np.sum(sd2**2 / n0) < np.sum(sd2**2 / np.array(other))


def test_bad_inputs_name_the_field() -> None:
    with pytest.raises(SampleDesignError, match="margin: expected values > 0"):
        completes_for_margin(0, 20)
    with pytest.raises(SampleDesignError, match="sd: expected numbers"):
        completes_for_margin(3, [20, np.nan])
    with pytest.raises(SampleDesignError, match="q: expected a number in"):
        power_allocation(10, [1, 2], [1, 1], 1.5)
    with pytest.raises(SampleDesignError, match="confidence"):
        z_value(95)
    with pytest.raises(SampleDesignError, match="shares"):
        stratified_completes(1.0, [10, 10], [1, 1], [0.5, 0.2])
