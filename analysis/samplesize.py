"""Sample sizes and allocations for stratified designs: pure, vectorised over strata.

Everything here is a textbook formula, applied with numpy to all strata (or domains) at once.
Sizes are *expected* numbers of completed interviews and are returned as floats: under Poisson
sampling a plan sets each stratum's rate, not a fixed count, so rounding belongs to whoever
turns sizes into counts.

Notation (Cochran 1977; Lohr 2022): ``N_h`` stratum population (frame count per period),
``S_h`` the item's standard deviation in the stratum, ``W_h = N_h / N``, ``n_h`` completes,
``f_h = n_h / N_h``, ``z`` the normal quantile for the confidence level, ``deff`` a design
effect multiplying the variance (Kish 1965) for what the formulas do not model (weighting
adjustments, clustering of answers).

Simple random sampling (Cochran 1977, ch. 4 "The estimation of sample size"; Lohr 2022, ch. 2,
the section on estimating the sample size):

    V(ybar) = deff * (1 - n/N) * S^2 / n
    margin d = z * sqrt(V)               n0 = deff * z^2 * S^2 / d^2,   n = n0 / (1 + n0 / N)
    proportion (Cochran 1977, section 4.4):  n0 = z^2 * P * Q / d^2,  n = n0 / (1 + (n0 - 1) / N)
    coefficient of variation c = sqrt(V) / Ybar:   n0 = deff * S^2 / (c * Ybar)^2

The proportion formula is the continuous one with ``S^2 = N P Q / (N - 1)`` (Cochran's
definition of S^2 for a 0/1 variable); :func:`completes_for_proportion` uses it exactly.

Stratified random sampling (Cochran 1977, ch. 5; Lohr 2022, ch. 3, the section on allocating
observations to strata):

    V(ybar_st) = sum_h W_h^2 * deff_h * S_h^2 * (1/n_h - 1/N_h)
    with n_h = a_h * n (shares a_h summing to 1) the n meeting a variance V is
        n = sum_h W_h^2 deff_h S_h^2 / a_h  /  (V + sum_h W_h deff_h S_h^2 / N)

Allocations of a total ``n`` (each ``n_h`` proportional to a score):

    proportional   n_h ∝ N_h
    equal          n_h = n / H
    Neyman         n_h ∝ N_h S_h                 minimum variance for fixed n
    optimal        n_h ∝ N_h S_h / sqrt(c_h)     minimum variance for a fixed cost
                   C - c0 = sum c_h n_h, or minimum cost for a fixed variance
                   (Cochran 1977, section 5.5 "Optimum allocation"); for a budget the total is
                   n = (C - c0) sum N_h S_h / sqrt(c_h) / sum N_h S_h sqrt(c_h)
    power          n_h ∝ N_h^q S_h               Bankier (1988), see :func:`power_allocation`

Capacity. A stratum cannot give more completes than it has units (or, for invitations, than
its units times its response rate). When a rule asks for more, the stratum gets its capacity
and the excess is shared among the other strata of its group by the same rule (in proportion
to their scores), repeating until nothing exceeds capacity. This is the usual remedy when an
optimum allocation gives ``n_h > N_h`` (Cochran 1977, ch. 5): the capped strata are taken
whole and the rest of the sample is allocated optimally among the others.

Hand-worked example used by the tests: strata with ``N = (100, 200, 300)``, ``S = (10, 20, 5)``
and ``n = 65``: ``N_h S_h = (1000, 4000, 1500)``, total 6500, so Neyman gives ``(10, 40, 15)``.
With costs ``c = (1, 4, 1)`` the optimal scores are ``(1000, 2000, 1500)``: ``n = 90`` gives
``(20, 40, 30)``, which costs ``20 + 160 + 30 = 210``; a budget of 210 gives back ``n = 90``.

References:
    Bankier, M. D. (1988). Power allocations: determining sample sizes for subnational areas.
        The American Statistician 42(3), 174-177.
    Cochran, W. G. (1977). Sampling Techniques, 3rd ed. Wiley.
    Kish, L. (1965). Survey Sampling. Wiley.
    Lohr, S. L. (2022). Sampling: Design and Analysis, 3rd ed. CRC Press.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "SampleDesignError",
    "allocate",
    "budget_completes",
    "completes_for_cv",
    "completes_for_margin",
    "completes_for_proportion",
    "completes_for_variance",
    "cv_of_mean",
    "equal_allocation",
    "margin_of_error",
    "neyman_allocation",
    "optimal_allocation",
    "power_allocation",
    "proportional_allocation",
    "stratified_completes",
    "stratified_variance",
    "z_value",
]

ArrayLike = float | Sequence[float] | np.ndarray
Labels = Sequence[Hashable] | np.ndarray | None
Totals = float | Mapping[Hashable, float]


class SampleDesignError(ValueError):
    """Inputs to a sample-size or allocation formula are unusable (field, expected, got)."""


# ---------------------------------------------------------------------------- validation


def _array(name: str, values: ArrayLike, *, positive: bool = False) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if np.any(np.isnan(array)) or np.any(array == -np.inf):
        raise SampleDesignError(f"{name}: expected numbers, got a missing or -inf value")
    if positive and np.any(array <= 0):
        raise SampleDesignError(f"{name}: expected values > 0, got {float(array.min()):g}")
    if not positive and np.any(array < 0):
        raise SampleDesignError(f"{name}: expected values >= 0, got {float(array.min()):g}")
    return array


def z_value(confidence: float = 0.95) -> float:
    """The two-sided normal quantile ``z`` for ``confidence`` (1.959964 for 0.95)."""
    if not 0.0 < confidence < 1.0:
        raise SampleDesignError(f"confidence: expected a number in (0, 1), got {confidence!r}")
    return float(stats.norm.ppf(0.5 + confidence / 2.0))


# ----------------------------------------------------------------- simple random sampling


def completes_for_variance(
    variance: ArrayLike, sd: ArrayLike, *, population: ArrayLike = np.inf, deff: ArrayLike = 1.0
) -> np.ndarray:
    """Completes giving the mean a variance of at most ``variance``, with the fpc.

    ``n = n0 / (1 + n0 / N)`` with ``n0 = deff * S^2 / V``: the solution of
    ``V = deff * (1 - n/N) * S^2 / n``. ``population=inf`` drops the fpc.
    """
    v = _array("variance", variance, positive=True)
    s = _array("sd", sd)
    big_n = _array("population", population, positive=True)
    d = _array("deff", deff, positive=True)
    n0 = d * s**2 / v
    return n0 / (1.0 + n0 / big_n)


def completes_for_margin(
    margin: ArrayLike,
    sd: ArrayLike,
    *,
    population: ArrayLike = np.inf,
    confidence: float = 0.95,
    deff: ArrayLike = 1.0,
) -> np.ndarray:
    """Completes for a margin of error (half-width of the interval) of at most ``margin``.

    Cochran (1977), ch. 4: ``n0 = deff * z^2 S^2 / d^2`` and ``n = n0 / (1 + n0 / N)``.
    Example by hand: ``S = 25`` on the 0-100 index and ``d = 3`` at 95% give
    ``n0 = 1.959964^2 * 625 / 9 = 266.77``; with ``N = 1000``, ``n = 266.77 / 1.26677 = 210.59``.
    """
    d = _array("margin", margin, positive=True)
    return completes_for_variance(
        (d / z_value(confidence)) ** 2, sd, population=population, deff=deff
    )


def completes_for_proportion(
    margin: ArrayLike,
    proportion: ArrayLike,
    *,
    population: ArrayLike = np.inf,
    confidence: float = 0.95,
    deff: ArrayLike = 1.0,
    percent: bool = False,
) -> np.ndarray:
    """Completes for a margin ``d`` on a proportion ``P``: both fractions, or both in percent
    with ``percent=True`` (``P = 50``, ``d = 5``; Q is then ``100 - P``).

    Cochran (1977), section 4.4: ``n0 = deff * z^2 P Q / d^2`` and
    ``n = n0 / (1 + (n0 - 1) / N)``. Example by hand (the familiar 384): ``P = 0.5``,
    ``d = 0.05`` at 95% give ``n0 = 3.841459 * 0.25 / 0.0025 = 384.15``; with ``N = 1000``,
    ``n = 384.15 / 1.38315 = 277.73``.
    """
    d = _array("margin", margin, positive=True)
    p = _array("proportion", proportion)
    scale = 100.0 if percent else 1.0
    unit = "percentages in [0, 100]" if percent else "fractions in [0, 1] (or percent=True)"
    if np.any(p > scale):
        raise SampleDesignError(f"proportion: expected {unit}, got {p.max():g}")
    if np.any(d >= scale):
        raise SampleDesignError(f"margin: expected {unit} below {scale:g}, got {d.max():g}")
    big_n = _array("population", population, positive=True)
    deffs = _array("deff", deff, positive=True)
    n0 = deffs * z_value(confidence) ** 2 * p * (scale - p) / d**2
    return n0 / (1.0 + (n0 - 1.0) / big_n)


def completes_for_cv(
    cv: ArrayLike,
    sd: ArrayLike,
    mean: ArrayLike,
    *,
    population: ArrayLike = np.inf,
    deff: ArrayLike = 1.0,
) -> np.ndarray:
    """Completes for a coefficient of variation (SE / mean) of at most ``cv``.

    Cochran (1977), ch. 4, relative error: ``n0 = deff * (S / (c * Ybar))^2``, fpc as above.
    """
    c = _array("cv", cv, positive=True)
    m = _array("mean", mean, positive=True)
    return completes_for_variance((c * m) ** 2, sd, population=population, deff=deff)


def margin_of_error(
    completes: ArrayLike,
    sd: ArrayLike,
    *,
    population: ArrayLike = np.inf,
    confidence: float = 0.95,
    deff: ArrayLike = 1.0,
) -> np.ndarray:
    """The margin ``z * sqrt(deff * (1 - n/N) * S^2 / n)`` that ``n`` completes deliver."""
    n = _array("completes", completes, positive=True)
    s = _array("sd", sd)
    big_n = _array("population", population, positive=True)
    d = _array("deff", deff, positive=True)
    fpc = np.clip(1.0 - n / big_n, 0.0, None)
    return z_value(confidence) * np.sqrt(d * fpc * s**2 / n)


def cv_of_mean(
    completes: ArrayLike,
    sd: ArrayLike,
    mean: ArrayLike,
    *,
    population: ArrayLike = np.inf,
    deff: ArrayLike = 1.0,
) -> np.ndarray:
    """The coefficient of variation ``SE / mean`` that ``n`` completes deliver."""
    n = _array("completes", completes, positive=True)
    s = _array("sd", sd)
    m = _array("mean", mean, positive=True)
    big_n = _array("population", population, positive=True)
    d = _array("deff", deff, positive=True)
    fpc = np.clip(1.0 - n / big_n, 0.0, None)
    return np.sqrt(d * fpc * s**2 / n) / m


# ------------------------------------------------------------------ stratified sampling


def _codes(groups: Labels, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..G-1 for the group labels (one group when ``groups`` is None)."""
    if groups is None:
        return np.zeros(size, dtype=np.intp), np.array([None], dtype=object)
    labels = np.asarray(groups, dtype=object)
    if labels.shape != (size,):
        raise SampleDesignError(
            f"groups: expected {size} labels (one per stratum), got {labels.size}"
        )
    if pd.isna(labels).any():
        raise SampleDesignError("groups: expected a label for every stratum, got a missing one")
    codes, uniques = pd.factorize(labels, sort=True)
    return codes.astype(np.intp), np.asarray(uniques, dtype=object)


def stratified_variance(
    completes: ArrayLike,
    population: ArrayLike,
    sd: ArrayLike,
    *,
    deff: ArrayLike = 1.0,
    groups: Labels = None,
) -> np.ndarray:
    """Variance of the stratified mean of each group (domain) of strata.

    ``V_g = sum_{h in g} W_h^2 deff_h S_h^2 (1/n_h - 1/N_h)`` with ``W_h = N_h / N_g``
    (Cochran 1977, ch. 5; Lohr 2022, ch. 3). One value per group, groups in the sorted order
    of their labels (one value when ``groups`` is None). A stratum with ``n_h = 0`` and
    ``N_h > 0`` makes the variance infinite: its mean is not estimated.
    """
    n = _array("completes", completes)
    big_n = _array("population", population)
    s = _array("sd", sd)
    d = _array("deff", deff, positive=True)
    n, big_n, s, d = np.broadcast_arrays(n, big_n, s, d)
    codes, _ = _codes(groups, n.size)
    group_n = np.bincount(codes, weights=big_n)
    w = np.divide(big_n, group_n[codes], out=np.zeros_like(big_n), where=group_n[codes] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(n > 0, 1.0 / n, np.where(big_n > 0, np.inf, 0.0))
        finite_n = np.where(big_n > 0, 1.0 / np.where(big_n > 0, big_n, 1.0), 0.0)
        term = np.where(w > 0, w**2 * d * s**2 * np.clip(inverse - finite_n, 0.0, None), 0.0)
    return np.bincount(codes, weights=term)


def stratified_completes(
    variance: ArrayLike,
    population: ArrayLike,
    sd: ArrayLike,
    shares: ArrayLike,
    *,
    deff: ArrayLike = 1.0,
    groups: Labels = None,
) -> np.ndarray:
    """Total completes per group meeting ``variance`` when group totals are split by ``shares``.

    ``n_g = sum W_h^2 deff_h S_h^2 / a_h / (V_g + sum W_h deff_h S_h^2 / N_g)`` (Cochran 1977,
    ch. 5, estimation of sample size with continuous data), where ``a_h`` are the strata's
    shares of their group's total (they must sum to 1 within each group). ``variance`` is one
    value, or one per group in the sorted order of the labels. Capacity is not considered:
    allocate the result with :func:`allocate`.
    """
    big_n = _array("population", population)
    s = _array("sd", sd)
    a = _array("shares", shares)
    d = _array("deff", deff, positive=True)
    big_n, s, a, d = np.broadcast_arrays(big_n, s, a, d)
    codes, labels = _codes(groups, big_n.size)
    v = np.broadcast_to(_array("variance", variance, positive=True), labels.shape)
    share_sum = np.bincount(codes, weights=a, minlength=labels.size)
    if not np.allclose(share_sum, 1.0, atol=1e-9):
        bad = int(np.argmax(np.abs(share_sum - 1.0)))
        raise SampleDesignError(
            f"shares: expected shares summing to 1 in each group, got {share_sum[bad]:g}"
            + ("" if groups is None else f" for group {labels[bad]!r}")
        )
    group_n = np.bincount(codes, weights=big_n, minlength=labels.size)
    w = np.divide(big_n, group_n[codes], out=np.zeros_like(big_n), where=group_n[codes] > 0)
    needs = (w > 0) & (s > 0)
    if np.any(needs & (a <= 0)):
        raise SampleDesignError(
            "shares: expected a share > 0 for every stratum with units and a positive sd, "
            "got 0 (that stratum's mean could not be estimated)"
        )
    safe_a = np.where(a > 0, a, 1.0)
    numerator = np.bincount(codes, weights=np.where(needs, w**2 * d * s**2 / safe_a, 0.0))
    finite = np.bincount(codes, weights=np.where(w > 0, w * d * s**2, 0.0)) / np.where(
        group_n > 0, group_n, 1.0
    )
    return numerator / (v + finite)


# ---------------------------------------------------------------------------- allocation


def _group_totals(total: Totals, labels: np.ndarray, grouped: bool) -> np.ndarray:
    if isinstance(total, Mapping):
        if not grouped:
            raise SampleDesignError(
                "total: expected a number when no groups are given, got a mapping"
            )
        missing = [label for label in labels if label not in total]
        if missing:
            raise SampleDesignError(f"total: no total given for group {missing[0]!r}")
        values = np.array([float(total[label]) for label in labels])
    else:
        if grouped:
            raise SampleDesignError(
                "total: expected a mapping {group: total} when groups are given, got a number"
            )
        values = np.array([float(total)])
    return _array("total", values)


def allocate(
    total: Totals,
    score: ArrayLike,
    *,
    groups: Labels = None,
    capacity: ArrayLike | None = None,
) -> np.ndarray:
    """Share each group's ``total`` among its strata in proportion to ``score``, within capacity.

    Strata whose share exceeds ``capacity`` get their capacity; what that frees goes to the
    group's uncapped strata in proportion to their scores, until no stratum exceeds capacity.
    With ``groups``, ``total`` maps each group label to its total. A total larger than its
    group's capacity is an error (it cannot be delivered); so is a positive total for a group
    whose scores are all 0.
    """
    s = _array("score", score)
    codes, labels = _codes(groups, s.size)
    totals = _group_totals(total, labels, groups is not None)
    cap = (
        np.full(s.shape, np.inf)
        if capacity is None
        else np.broadcast_to(_array("capacity", capacity), s.shape).astype(float)
    )
    group_capacity = np.bincount(codes, weights=np.where(s > 0, cap, 0.0), minlength=labels.size)
    over = totals > group_capacity * (1.0 + 1e-12) + 1e-9
    if np.any(over):
        bad = int(np.flatnonzero(over)[0])
        where = "" if groups is None else f" of group {labels[bad]!r}"
        raise SampleDesignError(
            f"total{where}: expected at most the capacity of its strata "
            f"({group_capacity[bad]:g}), got {totals[bad]:g}"
        )
    fixed = np.zeros(s.shape, dtype=bool)
    result = np.zeros(s.shape)
    for _ in range(s.size + 1):
        free_score = np.where(fixed, 0.0, s)
        remaining = totals - np.bincount(
            codes, weights=np.where(fixed, cap, 0.0), minlength=labels.size
        )
        score_sum = np.bincount(codes, weights=free_score, minlength=labels.size)
        share = np.divide(
            free_score, score_sum[codes], out=np.zeros_like(s), where=score_sum[codes] > 0
        )
        result = np.where(fixed, cap, np.clip(remaining[codes], 0.0, None) * share)
        newly = ~fixed & (result > cap)
        if not np.any(newly):
            break
        fixed |= newly
    unplaced = (totals > 0) & (np.bincount(codes, weights=s, minlength=labels.size) <= 0)
    if np.any(unplaced):
        bad = int(np.flatnonzero(unplaced)[0])
        where = "" if groups is None else f" for group {labels[bad]!r}"
        raise SampleDesignError(
            f"score: every stratum{where} has score 0; the total cannot be placed"
        )
    return result


def proportional_allocation(
    total: Totals,
    population: ArrayLike,
    *,
    groups: Labels = None,
    capacity: ArrayLike | None = None,
) -> np.ndarray:
    """``n_h ∝ N_h`` (Cochran 1977, ch. 5; Lohr 2022, ch. 3)."""
    return allocate(total, _array("population", population), groups=groups, capacity=capacity)


def equal_allocation(
    total: Totals,
    population: ArrayLike,
    *,
    groups: Labels = None,
    capacity: ArrayLike | None = None,
) -> np.ndarray:
    """``n_h = n / H`` over the strata with units (``N_h > 0``)."""
    big_n = _array("population", population)
    return allocate(total, (big_n > 0).astype(float), groups=groups, capacity=capacity)


def neyman_allocation(
    total: Totals,
    population: ArrayLike,
    sd: ArrayLike,
    *,
    groups: Labels = None,
    capacity: ArrayLike | None = None,
) -> np.ndarray:
    """``n_h ∝ N_h S_h``: the minimum variance of the stratified mean for a fixed total."""
    big_n, s = np.broadcast_arrays(_array("population", population), _array("sd", sd))
    return allocate(total, big_n * s, groups=groups, capacity=capacity)


def optimal_allocation(
    total: Totals,
    population: ArrayLike,
    sd: ArrayLike,
    cost: ArrayLike,
    *,
    groups: Labels = None,
    capacity: ArrayLike | None = None,
) -> np.ndarray:
    """``n_h ∝ N_h S_h / sqrt(c_h)`` with ``c_h`` the cost of one complete in stratum h.

    Under the linear cost ``C = c0 + sum c_h n_h`` this minimises the variance for a fixed
    cost and the cost for a fixed variance (Cochran 1977, section 5.5).
    """
    big_n, s, c = np.broadcast_arrays(
        _array("population", population), _array("sd", sd), _array("cost", cost, positive=True)
    )
    return allocate(total, big_n * s / np.sqrt(c), groups=groups, capacity=capacity)


def budget_completes(
    budget: float, population: ArrayLike, sd: ArrayLike, cost: ArrayLike, *, fixed_cost: float = 0.0
) -> float:
    """Total completes that an optimal allocation buys for ``budget`` (without capacity).

    ``n = (C - c0) * sum N_h S_h / sqrt(c_h) / sum N_h S_h sqrt(c_h)`` (Cochran 1977,
    section 5.5): substitute ``n_h = n N_h S_h/sqrt(c_h) / sum N_h S_h/sqrt(c_h)`` in the
    cost function and solve for ``n``.
    """
    big_n, s, c = np.broadcast_arrays(
        _array("population", population), _array("sd", sd), _array("cost", cost, positive=True)
    )
    available = float(budget) - float(fixed_cost)
    if available <= 0:
        raise SampleDesignError(
            f"budget: expected more than the fixed cost ({fixed_cost:g}), got {budget:g}"
        )
    denominator = float(np.sum(big_n * s * np.sqrt(c)))
    if denominator <= 0:
        raise SampleDesignError("sd: every stratum has N_h * S_h = 0; nothing to buy precision for")
    return available * float(np.sum(big_n * s / np.sqrt(c))) / denominator


def power_allocation(
    total: Totals,
    population: ArrayLike,
    sd: ArrayLike,
    q: float,
    *,
    groups: Labels = None,
    capacity: ArrayLike | None = None,
) -> np.ndarray:
    """Bankier's (1988) power allocation ``n_h ∝ N_h^q S_h``, with ``0 <= q <= 1``.

    Bankier minimises ``sum_h X_h^(2q) CV_h^2`` (``X_h`` a size measure, ``CV_h`` the
    coefficient of variation of area h's estimate), which gives ``n_h ∝ X_h^q S_h / Ybar_h``.
    Our indices are published with margins in points, not relative ones, so we use the same
    criterion with absolute variances and ``X_h = N_h``: minimise ``sum N_h^(2q) V(ybar_h)``,
    giving ``n_h ∝ N_h^q S_h`` (ignoring finite-population corrections). Then
    ``q = 1`` is the Neyman allocation (best for the national mean of these areas),
    ``q = 0`` weights every area alike (it minimises the plain sum of the areas' variances,
    ``n_h ∝ S_h``; the equal allocation when the ``S_h`` are equal), and ``q = 1/2`` with
    equal ``S_h`` is the square-root allocation, the usual compromise.
    """
    if not 0.0 <= q <= 1.0:
        raise SampleDesignError(f"q: expected a number in [0, 1], got {q!r}")
    big_n, s = np.broadcast_arrays(_array("population", population), _array("sd", sd))
    score = np.where(big_n > 0, np.power(big_n, q), 0.0) * s
    return allocate(total, score, groups=groups, capacity=capacity)
