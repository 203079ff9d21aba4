"""Domains and the assured precision of a domain's estimate under an allocation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats

from analysis.planning.inputs import _Strata
from analysis.planning.targets import NATIONAL, Target
from analysis.samplesize import (
    z_value,
)


@dataclass(frozen=True)
class _Domains:
    """Every reportable domain: national, then each dimension's values (sorted)."""

    dimension: np.ndarray
    value: np.ndarray
    membership: sparse.csr_matrix  # strata x domains, 0/1

    @classmethod
    def of(cls, table: pd.DataFrame, dimensions: Sequence[str]) -> _Domains:
        dims, values, rows, cols = [], [], [], []
        h = len(table)
        for dimension in dimensions:
            if dimension == NATIONAL:
                labels = np.full(h, NATIONAL, dtype=object)
            else:
                labels = table[dimension].to_numpy(dtype=object)
            codes, uniques = pd.factorize(labels, sort=True)
            for code, label in enumerate(uniques):
                if label == "":
                    continue
                members = np.flatnonzero(codes == code)
                dims.append(dimension)
                values.append(label)
                rows.append(members)
                cols.append(np.full(members.size, len(dims) - 1))
        membership = sparse.csr_matrix(
            (np.ones(sum(r.size for r in rows)), (np.concatenate(rows), np.concatenate(cols))),
            shape=(h, len(dims)),
        )
        return cls(np.array(dims, dtype=object), np.array(values, dtype=object), membership)

    def sum(self, per_stratum: np.ndarray) -> np.ndarray:
        """Per-domain sums of a per-stratum array (or of each row of a periods x strata array)."""
        return np.asarray(per_stratum @ self.membership)

    def spread(self, per_domain: np.ndarray) -> np.ndarray:
        """Per stratum, the maximum over the domains it belongs to (0 if none)."""
        m = self.membership.multiply(per_domain[None, :]).tocsr()
        return np.asarray(m.max(axis=1).todense()).ravel()


def _target_variance(target: Target, domains: _Domains, strata: _Strata) -> np.ndarray:
    if target.margin is not None:
        return np.full(domains.value.size, (target.margin / z_value(target.confidence)) ** 2)
    assert strata.mean is not None and target.cv is not None
    domain_mean = domains.sum(strata.volume * strata.mean) / domains.sum(strata.volume)
    return (target.cv * domain_mean) ** 2


_EXACT_BELOW = 400.0


def _respondent_moments(
    completes: np.ndarray, volume: np.ndarray, kurtosis: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and relative variance of ``s^2 (1/r - 1/N)`` over ``r ~ Poisson(n)``, ``r >= 2``.

    A stratum's estimated variance contribution is ``W^2 s^2 (1/r - 1/N)``; given ``r``,
    ``var(s^2) / S^4 = (kappa - 1)/r + 2/(r (r - 1))`` (exact for iid answers). Summed over the
    Poisson distribution of ``r`` (strata with fewer than two respondents are folded away, so
    ``r >= 2``) for ``n`` below 400; above, the first-order forms ``E = (1/n)(1 + 1/n) - 1/N``
    and ``relvar = 1/(n (1 - f)^2) + (kappa - 1)/n`` with ``f = n/N``. The Poisson volume adds
    about ``4/N`` (the weight ``N_h^2``). Small strata matter: at ``n = 10`` the contribution
    is 12% larger on average than ``S^2 / n`` and twice as variable as ``kappa / n`` says;
    sampling fractions near 1 make the ``1/r`` part more variable by ``1/(1 - f)^2``.
    The mean is relative to ``S^2``.
    """
    n = np.asarray(completes, dtype=float)
    big_n = np.asarray(volume, dtype=float)
    mean = np.full(n.shape, np.inf)
    relvar = np.full(n.shape, np.inf)
    large = n >= _EXACT_BELOW
    nl, fl = n[large], np.minimum(n[large] / big_n[large], 0.999)
    mean[large] = np.clip((1.0 + 1.0 / nl) / nl - 1.0 / big_n[large], 1e-300, None)
    relvar[large] = 1.0 / (nl * (1.0 - fl) ** 2) + (kurtosis[large] - 1.0) / nl
    small = (n > 0) & ~large
    if small.any():
        mu = n[small][:, None]
        inverse_n = 1.0 / big_n[small][:, None]
        top = int(np.ceil(mu.max() + 12.0 * np.sqrt(mu.max()) + 12.0))
        r = np.arange(2, top + 1, dtype=float)[None, :]
        pmf = stats.poisson.pmf(r, mu)
        mass = pmf.sum(axis=1)
        part = np.clip(1.0 / r - inverse_n, 0.0, None)
        k = kurtosis[small][:, None]
        e1 = (pmf * part).sum(axis=1) / mass
        e2 = (pmf * part**2 * (1.0 + (k - 1.0) / r + 2.0 / (r * (r - 1.0)))).sum(axis=1) / mass
        mean[small] = e1
        with np.errstate(divide="ignore", invalid="ignore"):
            relvar[small] = np.where(e1 > 0, e2 / e1**2 - 1.0, 0.0)
    relvar = relvar + 4.0 / big_n
    return mean, relvar


@dataclass(frozen=True)
class _Precision:
    """Per domain: the textbook variance at the expected completes, the expected value of its
    estimate under Poisson respondents, and the relative variance of that estimate."""

    variance: np.ndarray
    expected: np.ndarray
    relvar: np.ndarray
    folded: np.ndarray
    extra: np.ndarray | float = 0.0

    @property
    def log_sd(self) -> np.ndarray:
        """SD of the log of the variance estimate (log-normal with this mean and relvar).

        ``extra`` adds to the log-variance: for CV targets the estimated mean's own
        ``var(log ybar^2) ≈ 4 V / Ybar^2`` (the CV's denominator varies too)."""
        return np.sqrt(np.log1p(self.relvar) + self.extra)

    def assured(self, z_assurance: float) -> np.ndarray:
        """The variance estimate not exceeded with the assurance (log-normal approximation)."""
        sigma = self.log_sd
        return self.expected * np.exp(z_assurance * sigma - sigma**2 / 2)

    def p_meet(self, goal_variance: np.ndarray) -> np.ndarray:
        """The probability that the variance estimate is at most ``goal_variance``."""
        sigma = self.log_sd
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (np.log(goal_variance / self.expected) + sigma**2 / 2) / sigma
        z = np.where(sigma > 0, z, np.where(self.expected <= goal_variance, np.inf, -np.inf))
        return np.where(np.isfinite(self.expected), stats.norm.cdf(z), 0.0)


def _domain_variance(
    completes: np.ndarray, strata: _Strata, domains: _Domains, target: Target
) -> _Precision:
    """Precision of each domain's stratified mean when strata give ``completes`` on average."""
    big_n2 = domains.sum(strata.volume) ** 2
    mean_factor, relvar_h = _respondent_moments(completes, strata.volume, strata.kurtosis)
    w2s2 = strata.volume**2 * strata.sd**2
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(completes > 0, 1.0 / completes, np.inf)
        # contribution of stratum h to domain d: (N_h/N_d)^2 S_h^2 (1/n_h - 1/N_h)
        base = w2s2 * np.clip(inverse - 1.0 / strata.volume, 0, None)
        mean_h = w2s2 * mean_factor
        variance = domains.sum(base) / big_n2
        # a stratum with fewer than two respondents (probability e^-n (1 + n)) is folded
        # away: its contribution goes, and the others' weights grow by 1 / (1 - F), F the
        # expected share of the domain's volume folded away
        folded = np.where(completes > 0, np.exp(-completes) * (1.0 + completes), 1.0)
        share = np.clip(domains.sum(folded * strata.volume) / np.sqrt(big_n2), 0.0, 0.99)
        kept = np.where(completes > 0, (1.0 - folded) * mean_h, 0.0)
        expected = domains.sum(kept) / big_n2 / (1.0 - share) ** 2
        spread = domains.sum(np.where(completes > 0, relvar_h * mean_h**2, np.inf)) / big_n2**2
        relvar = np.where(expected > 0, spread / expected**2, 0.0)
    extra: np.ndarray | float = 0.0
    if target.cv is not None and strata.mean is not None:
        domain_mean = domains.sum(strata.volume * strata.mean) / np.sqrt(big_n2)
        extra = np.nan_to_num(4.0 * expected / domain_mean**2, posinf=0.0)
    return _Precision(
        variance=variance, expected=expected, relvar=relvar, folded=share, extra=extra
    )
