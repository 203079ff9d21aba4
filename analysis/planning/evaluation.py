"""What a set of rates delivers per domain (`evaluate`), and a proposal as text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from analysis.planning.inputs import _check_range, _numeric, _read_strata, _Strata
from analysis.planning.precision import _domain_variance, _Domains, _target_variance
from analysis.planning.targets import DIMENSIONS, MAX_FOLDED_SHARE, NATIONAL, Proposal, Target
from analysis.samplesize import (
    SampleDesignError,
    z_value,
)


def evaluate(
    strata: pd.DataFrame, target: Target, *, method: Mapping[str, Any] | None = None
) -> Proposal:
    """What plan ``strata`` (inputs plus a ``rate`` column) delivers against ``target``."""
    data = _read_strata(strata, target)
    if "rate" not in data.table.columns:
        raise SampleDesignError("rate: expected a 'rate' column (invitation probability)")
    rates = _numeric(data.table, "rate")
    _check_range(data.table, "rate", rates, (rates >= 0) & (rates <= 1), "a rate in [0, 1]")
    invitations = rates * data.volume
    completes = invitations * data.response_rate
    table = data.table.copy()
    table["rate"] = rates
    table["invitations"] = invitations
    table["completes"] = completes
    table["capped"] = rates >= 1.0 - 1e-12
    table["sms_parts"] = invitations * data.parts
    table["cost"] = invitations * data.cost_per_invitation
    domains = _domain_table(data, target, completes, invitations)
    return Proposal(target=target, strata=table, domains=domains, method=dict(method or {}))


def _domain_table(
    strata: _Strata, target: Target, completes: np.ndarray, invitations: np.ndarray
) -> pd.DataFrame:
    domains = _Domains.of(strata.table, (NATIONAL, *DIMENSIONS))
    z = z_value(target.confidence)
    precision = _domain_variance(completes, strata, domains, target)
    assured_variance = precision.assured(float(stats.norm.ppf(target.assurance)))
    margin = z * np.sqrt(precision.variance)
    assured_margin = z * np.sqrt(assured_variance)
    volume = domains.sum(strata.volume)
    if strata.mean is not None:
        domain_mean = domains.sum(strata.volume * strata.mean) / volume
        cv = np.sqrt(precision.variance) / domain_mean
        assured_cv = np.sqrt(assured_variance) / domain_mean
    else:
        domain_mean = np.full(volume.shape, np.nan)
        cv = assured_cv = np.full(volume.shape, np.nan)
    is_target = np.isin(domains.dimension, target.by)
    goal = target.cv if target.cv is not None else target.margin
    assert goal is not None
    goal_variance = _target_variance(target, domains, strata)
    assured = assured_cv if target.cv is not None else assured_margin
    p_meet = precision.p_meet(goal_variance)
    n = domains.sum(completes)
    enough = n >= target.min_completes * (1 - 1e-9)
    within = assured <= goal * (1 + 1e-6)
    whole = precision.folded <= MAX_FOLDED_SHARE
    publishable = is_target & enough & within & whole
    full = domains.sum((invitations < strata.volume * (1 - 1e-9)).astype(float)) == 0
    notes = np.select(
        [~is_target, publishable, ~enough, ~whole, full],
        [
            "",
            "publishable",
            f"fewer than {target.min_completes:g} completes",
            "strata too small: use coarser strata",
            "not reachable: misses the target even inviting everyone",
        ],
        default="misses the target",
    )
    table = pd.DataFrame(
        {
            "dimension": domains.dimension,
            "domain": domains.value,
            "strata": np.asarray(domains.membership.sum(axis=0)).ravel().astype(int),
            "volume": volume,
            "invitations": domains.sum(invitations),
            "completes": n,
            "mean": domain_mean,
            "margin": margin,
            "assured_margin": assured_margin,
            "cv": cv,
            "assured_cv": assured_cv,
            "target": np.where(is_target, goal, np.nan),
            "p_meet": np.where(is_target, p_meet, np.nan),
            "folded": precision.folded,
            "publishable": publishable,
            "note": notes,
        }
    )
    return table
