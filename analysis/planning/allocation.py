"""From targets (or a fixed total or budget) to completes per stratum: `propose`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.planning.evaluation import evaluate
from analysis.planning.inputs import _read_strata, _Strata
from analysis.planning.precision import _domain_variance, _Domains, _target_variance
from analysis.planning.targets import (
    _ACROSS,
    _MAX_ROUNDS,
    _WITHIN,
    NATIONAL,
    AcrossRule,
    Proposal,
    Target,
    WithinRule,
)
from analysis.samplesize import (
    SampleDesignError,
    allocate,
    stratified_completes,
)


def _within_score(strata: _Strata, within: str) -> np.ndarray:
    if within == "optimal":
        cost = strata.cost_per_complete
        if np.any(cost <= 0):
            row = int(np.argmax(cost <= 0))
            raise SampleDesignError(
                "within: the 'optimal' allocation needs a positive cost per complete; stratum "
                f"{strata.table['stratum'].iloc[row]!r} costs 0 (give cost_per_part and "
                "parts_per_invitation, or use within='neyman')"
            )
        return strata.volume * strata.sd / np.sqrt(cost)
    if within == "neyman":
        return strata.volume * strata.sd
    if within == "proportional":
        return strata.volume.copy()
    if within == "equal":
        return np.ones_like(strata.volume)
    raise SampleDesignError(f"within: expected one of {_WITHIN}, got {within!r}")


def _primary_codes(strata: _Strata, dimension: str) -> np.ndarray:
    if dimension == NATIONAL:
        return np.zeros(strata.volume.size, dtype=np.intp)
    labels = strata.table[dimension].to_numpy(dtype=object)
    if np.any(labels == ""):
        raise SampleDesignError(
            f"by: the first dimension must give every stratum a domain; stratum "
            f"{strata.table['stratum'][labels == ''].iloc[0]!r} has no {dimension}"
        )
    codes, _ = pd.factorize(labels, sort=True)
    return codes.astype(np.intp)


def _meet_targets(
    strata: _Strata, target: Target, score: np.ndarray, completes: np.ndarray
) -> np.ndarray:
    """Scale strata up until every target domain meets its assured target and minimum."""
    domains = _Domains.of(strata.table, target.by)
    v_target = _target_variance(target, domains, strata)
    z_a = float(stats.norm.ppf(target.assurance))
    capacity = strata.capacity
    w2s2 = strata.volume**2 * strata.sd**2
    big_n2 = domains.sum(strata.volume) ** 2
    n = np.minimum(completes, capacity)
    for _ in range(_MAX_ROUNDS):
        precision = _domain_variance(n, strata, domains, target)
        met = precision.assured(z_a) <= v_target * (1 + 1e-9)
        # the textbook variance that makes the assured variance meet the target
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = precision.variance / precision.assured(z_a)
        planned = v_target * np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1.0)
        free = (n < capacity * (1 - 1e-12)) & (score > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            fixed_part = (
                domains.sum(
                    np.where(
                        free,
                        0.0,
                        w2s2 * np.clip(1 / np.where(n > 0, n, np.nan) - 1 / strata.volume, 0, None),
                    )
                )
                / big_n2
            )
            a_free = (
                domains.sum(np.where(free & (n > 0), w2s2 / np.where(n > 0, n, 1), 0.0)) / big_n2
            )
            b_free = domains.sum(np.where(free, w2s2 / strata.volume, 0.0)) / big_n2
            room = planned - fixed_part + b_free
            factor = np.where(met, 1.0, np.where(room > 0, a_free / room, np.inf))
            # the ratio moves as strata grow: step at least 0.1% so the loop ends
            factor = np.where(met, 1.0, np.maximum(factor, 1.001))
            fixed_n = domains.sum(np.where(free, 0.0, n))
            free_n = domains.sum(np.where(free, n, 0.0))
            floor = np.where(free_n > 0, (target.min_completes - fixed_n) / free_n, np.inf)
            factor = np.maximum(
                factor, np.where(fixed_n + free_n < target.min_completes, floor, 1.0)
            )
        factor = np.nan_to_num(factor, nan=1.0, posinf=np.inf)
        # a domain whose strata are all at capacity cannot grow: leave it (reported unreachable)
        stuck = free_n <= 0
        grow = domains.spread(np.where((factor > 1 + 1e-9) & ~stuck, factor, 1.0))
        if np.all(grow[free] <= 1 + 1e-9):
            break
        n = np.where(free, np.minimum(np.maximum(n, 1e-9) * np.maximum(grow, 1.0), capacity), n)
    return n


def _across_scores(
    strata: _Strata, codes: np.ndarray, across: str, q: float, within_score: np.ndarray
) -> np.ndarray:
    g = int(codes.max()) + 1
    big_n = np.bincount(codes, weights=strata.volume, minlength=g)
    w = strata.volume / big_n[codes]
    pooled_sd = np.sqrt(np.bincount(codes, weights=w * strata.sd**2, minlength=g))
    if across == "power":
        if not 0 <= q <= 1:
            raise SampleDesignError(f"q: expected a number in [0, 1], got {q!r}")
        return big_n**q * pooled_sd
    if across == "neyman":
        return big_n * pooled_sd
    if across == "proportional":
        return big_n
    if across == "equal":
        return np.ones(g)
    if across == "optimal":
        shares = within_score / np.bincount(codes, weights=within_score, minlength=g)[codes]
        cost = np.bincount(codes, weights=shares * strata.cost_per_complete, minlength=g)
        if np.any(cost <= 0):
            raise SampleDesignError("across: the 'optimal' allocation needs positive costs")
        return big_n * pooled_sd / np.sqrt(cost)
    raise SampleDesignError(f"across: expected one of {_ACROSS}, got {across!r}")


def _fixed_total(
    strata: _Strata, codes: np.ndarray, total: float, across: str, q: float, score: np.ndarray
) -> np.ndarray:
    g = int(codes.max()) + 1
    domain_capacity = np.bincount(
        codes, weights=np.where(score > 0, strata.capacity, 0), minlength=g
    )
    if total > domain_capacity.sum():
        total = float(domain_capacity.sum())
    domain_totals = allocate(
        total, _across_scores(strata, codes, across, q, score), capacity=domain_capacity
    )
    return allocate(dict(enumerate(domain_totals)), score, groups=codes, capacity=strata.capacity)


def propose(
    strata: pd.DataFrame,
    target: Target,
    *,
    within: WithinRule = "optimal",
    total: float | None = None,
    budget: float | None = None,
    across: AcrossRule = "power",
    q: float = 0.5,
    min_stratum_completes: float = 5.0,
) -> Proposal:
    """Rates per stratum that meet ``target`` at least cost, or that spend a fixed total.

    Without ``total`` and ``budget``: the cheapest rates meeting the target in every ``by``
    domain with the target's assurance (exactly cheapest for one ``by`` dimension; see the
    module docstring for several), every stratum giving at least ``min_stratum_completes``
    expected completes or inviting everyone. With ``total`` (expected completes per period)
    or ``budget`` (cost per period): that much is shared among the first dimension's domains
    by ``across`` (``"power"`` with exponent ``q``: Bankier 1988) and within them by
    ``within``. A total or budget beyond inviting everyone is cut to inviting everyone.
    """
    if within not in _WITHIN:
        raise SampleDesignError(f"within: expected one of {_WITHIN}, got {within!r}")
    if across not in _ACROSS:
        raise SampleDesignError(f"across: expected one of {_ACROSS}, got {across!r}")
    if total is not None and budget is not None:
        raise SampleDesignError("total, budget: give at most one of them")
    data = _read_strata(strata, target)
    score = _within_score(data, within)
    codes = _primary_codes(data, target.by[0])
    method: dict[str, Any] = {"within": within}
    if total is None and budget is None:
        if not min_stratum_completes >= 0:
            raise SampleDesignError(
                f"min_stratum_completes: expected a number >= 0, got {min_stratum_completes!r}"
            )
        completes = _cheapest(data, target, score, float(min_stratum_completes))
        method["rule"] = "least cost meeting the target"
        method["min_stratum_completes"] = min_stratum_completes
    else:
        method["across"] = across
        if across == "power":
            method["q"] = q
        if total is not None:
            if not total > 0:
                raise SampleDesignError(f"total: expected a number > 0, got {total!r}")
            completes = _fixed_total(data, codes, float(total), across, q, score)
            method["rule"] = f"fixed total of {total:g} completes"
        else:
            assert budget is not None
            if not budget > 0:
                raise SampleDesignError(f"budget: expected a number > 0, got {budget!r}")
            completes = _for_budget(data, codes, float(budget), across, q, score)
            method["rule"] = f"fixed budget of {budget:g}"
    rates = np.minimum(completes / data.capacity, 1.0)
    rates = np.where(rates > 1.0 - 1e-9, 1.0, rates)  # capped strata: exactly everyone
    table = data.table.copy()
    table["rate"] = rates
    return evaluate(table, target, method=method)


def _cheapest(strata: _Strata, target: Target, score: np.ndarray, min_stratum: float) -> np.ndarray:
    """Least-cost completes per stratum: the largest of each ``by`` dimension's own
    least-cost allocation (with the per-stratum floor), then :func:`_meet_targets`."""
    completes = np.minimum(np.full(score.shape, min_stratum), strata.capacity)
    for dimension in target.by:
        completes = np.maximum(completes, _cheapest_for(strata, target, dimension, score))
    return _meet_targets(strata, target, score, completes)


def _cheapest_for(strata: _Strata, target: Target, dimension: str, score: np.ndarray) -> np.ndarray:
    """Step 2 of the module docstring for one dimension (strata outside it get 0)."""
    if dimension == NATIONAL:
        labels = np.full(score.size, NATIONAL, dtype=object)
    else:
        labels = strata.table[dimension].to_numpy(dtype=object)
    sub = labels != ""
    if not sub.any():
        raise SampleDesignError(
            f"by: no stratum has a {dimension}; add it to the strata or drop it from by"
        )
    codes = np.full(score.size, -1, dtype=np.intp)
    codes[sub] = pd.factorize(labels[sub], sort=True)[0]
    g = int(codes.max()) + 1
    own = _Domains.of(strata.table, (dimension,))
    v_target = _target_variance(target, own, strata)
    z_a = float(stats.norm.ppf(target.assurance))
    capacity = np.where(sub, strata.capacity, 0.0)
    c = np.where(sub, codes, 0)
    weight = np.where(sub, score, 0.0)
    domain_capacity = np.bincount(c, weights=capacity, minlength=g)
    shares = weight / np.bincount(c, weights=weight, minlength=g)[c]
    ratio = np.ones(g)
    completes = np.zeros_like(score)
    volume = np.where(sub, strata.volume, 0.0)
    for _ in range(8):  # fixed point in the assurance ratio and the capacity-capped shares
        totals = stratified_completes(v_target * ratio, volume, strata.sd, shares, groups=c)
        totals = np.minimum(np.maximum(totals, target.min_completes), domain_capacity)
        completes = allocate(dict(enumerate(totals)), weight, groups=c, capacity=capacity)
        shares = completes / np.bincount(c, weights=completes, minlength=g)[c]
        precision = _domain_variance(completes, strata, own, target)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = precision.variance / precision.assured(z_a)
        ratio = np.where(np.isfinite(step) & (step > 0), step, ratio)
    return completes


def _for_budget(
    strata: _Strata, codes: np.ndarray, budget: float, across: str, q: float, score: np.ndarray
) -> np.ndarray:
    """The largest fixed total whose cost stays within ``budget`` (bisection: cost is monotone)."""
    cost = strata.cost_per_complete
    if np.all(cost <= 0):
        raise SampleDesignError("budget: every stratum costs 0 per complete; give costs or a total")
    low, high = 0.0, float(np.sum(np.where(score > 0, strata.capacity, 0)))
    if float(cost @ _fixed_total(strata, codes, high, across, q, score)) <= budget:
        return _fixed_total(strata, codes, high, across, q, score)
    for _ in range(60):
        middle = (low + high) / 2
        if float(cost @ _fixed_total(strata, codes, middle, across, q, score)) <= budget:
            low = middle
        else:
            high = middle
    return _fixed_total(strata, codes, max(low, 1e-9), across, q, score)
