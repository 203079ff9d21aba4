"""Replicate-weight variance engine (R ``svrepdesign`` / ``svrVar``).

Replicate weights are held in factored form so that 200 bootstrap replicates of a million
rows stay small: the weight of row ``i`` in replicate ``r`` is

    row_weight[i] * (offset[u] + multiplier[u] * factors[u, r]),   u = unit[i]

``factors`` is ``(n_units, R)`` -- ``uint8`` resampling counts for a bootstrap built here,
``float64`` jackknife factors, or the ``(n, R)`` matrix of a file's replicate weights (then
``unit`` is the row itself). Estimators only ever need replicate *totals* per domain, which
are ``(domain x unit)`` sums of ``row_weight * value`` multiplied by ``factors`` in blocks
of units, so the ``n x R`` weight matrix is never materialised unless asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from analysis._stages import Stage
from analysis.errors import DesignError, LonelyPSUError, MethodError

REPLICATE_METHODS = ("brr", "fay", "jk1", "jkn", "bootstrap")
_BLOCK_UNITS = 8_192


@dataclass(frozen=True, eq=False)
class ReplicateScheme:
    """Replicate weights in factored form plus R's ``scale``, ``rscales`` and ``mse``."""

    method: str
    unit: np.ndarray | None
    factors: np.ndarray
    offset: np.ndarray | None
    multiplier: np.ndarray | None
    row_weight: np.ndarray
    scale: float
    rscales: np.ndarray
    mse: bool
    df: int

    @property
    def replicates(self) -> int:
        return self.factors.shape[1]

    def weights(self, columns: slice | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """The ``(n, R)`` replicate weights (allocates ``8 n R`` bytes); ``columns`` and
        ``rows`` select a block of them without building the rest.

        Factors are gathered to rows in their compact dtype (``uint8`` bootstrap counts)
        before the float arithmetic: a quarter of the memory traffic."""
        columns = slice(None) if columns is None else columns
        if self.unit is None:
            index = slice(None) if rows is None else rows
        else:
            index = self.unit if rows is None else self.unit[rows]
        factors = self.factors[index, columns].astype(float)
        if self.multiplier is not None:
            factors *= self.multiplier[index][:, None]
        if self.offset is not None:
            factors += self.offset[index][:, None]
        row_weight = self.row_weight if rows is None else self.row_weight[rows]
        factors *= row_weight[:, None]
        return factors

    def domain_totals(
        self,
        values: np.ndarray,
        domain: np.ndarray,
        n_domain: int,
        pairs: tuple | None = None,
    ) -> np.ndarray:
        """Replicate totals ``sum_{i in d} W[i, r] values[i, j]`` as ``(n_domain, k, R)``.

        ``pairs`` is the cached ``(codes, unit, domain)`` factorisation of the
        (unit, domain) pairs (see :func:`unit_domain_pairs`); computed when omitted.
        """
        values = np.asarray(values, dtype=float)
        if values.ndim == 1:
            values = values[:, None]
        k = values.shape[1]
        weighted = values * self.row_weight[:, None]
        if self.unit is None:
            n_units = values.shape[0]
            pair_codes = pair_unit = np.arange(n_units)
            pair_domain = domain
        else:
            n_units = self.factors.shape[0]
            if pairs is None:
                pairs = unit_domain_pairs(self.unit, domain, n_domain)
            pair_codes, pair_unit, pair_domain = pairs
        n_pairs = pair_unit.shape[0]
        sums = np.empty((n_pairs, k))
        for j in range(k):
            sums[:, j] = np.bincount(pair_codes, weights=weighted[:, j], minlength=n_pairs)
        out = np.zeros((n_domain * k, self.replicates))
        rows = (pair_domain[:, None] * k + np.arange(k)[None, :]).ravel()
        if self.offset is not None:
            base = sums * self.offset[pair_unit][:, None]
            out += np.bincount(rows, weights=base.ravel(), minlength=n_domain * k)[:, None]
        if self.multiplier is not None:
            sums = sums * self.multiplier[pair_unit][:, None]
        order = np.argsort(pair_unit, kind="stable")
        sorted_unit = pair_unit[order]
        for start in range(0, n_units, _BLOCK_UNITS):
            stop = min(n_units, start + _BLOCK_UNITS)
            lo, hi = np.searchsorted(sorted_unit, [start, stop])
            chosen = order[lo:hi]
            if chosen.size == 0:
                continue
            block = sparse.csr_matrix(
                (
                    sums[chosen].ravel(),
                    (
                        (pair_domain[chosen][:, None] * k + np.arange(k)[None, :]).ravel(),
                        np.repeat(pair_unit[chosen] - start, k),
                    ),
                ),
                shape=(n_domain * k, stop - start),
            )
            out += block @ self.factors[start:stop].astype(float)
        return out.reshape(n_domain, k, self.replicates)

    def variance(self, theta_full: np.ndarray, theta_reps: np.ndarray) -> np.ndarray:
        """Element-wise variance for ``theta_reps`` of shape ``(..., R)`` (R's ``svrVar``)."""
        if self.mse:
            centre = theta_full
        else:
            use = self.rscales > 0
            centre = theta_reps[..., use].mean(axis=-1)
        dev = theta_reps - centre[..., None]
        return self.scale * (dev**2 * self.rscales).sum(axis=-1)

    def covariance(self, theta_full: np.ndarray, theta_reps: np.ndarray) -> np.ndarray:
        """``k x k`` covariance from ``theta_reps`` of shape ``(R, k)``."""
        theta_reps = np.atleast_2d(np.asarray(theta_reps, dtype=float))
        theta_full = np.atleast_1d(np.asarray(theta_full, dtype=float))
        centre = theta_full if self.mse else theta_reps[self.rscales > 0].mean(axis=0)
        dev = theta_reps - centre
        return self.scale * (dev * self.rscales[:, None]).T @ dev

    def with_weights(self, replicate_weights: np.ndarray) -> ReplicateScheme:
        """The same variance rule on new, materialised replicate weights."""
        return ReplicateScheme(
            method=self.method,
            unit=None,
            factors=replicate_weights,
            offset=None,
            multiplier=None,
            row_weight=np.ones(replicate_weights.shape[0]),
            scale=self.scale,
            rscales=self.rscales,
            mse=self.mse,
            df=self.df,
        )


def unit_domain_pairs(unit: np.ndarray, domain: np.ndarray, n_domain: int) -> tuple:
    """Factorise (unit, domain) pairs: ``(row codes, pair unit, pair domain)``."""
    uniques, codes = np.unique(unit * n_domain + domain, return_inverse=True)
    return codes, uniques // n_domain, uniques % n_domain


def default_scale(method: str, replicates: int, fay_rho: float) -> float:
    """R's default ``scale`` for a replicate type."""
    if method == "brr":
        return 1.0 / replicates
    if method == "fay":
        return 1.0 / (replicates * (1.0 - fay_rho) ** 2)
    if method == "jk1":
        return (replicates - 1.0) / replicates
    if method == "bootstrap":
        return 1.0 / (replicates - 1.0)
    return 1.0


def from_columns(
    replicate_weights: np.ndarray,
    weights: np.ndarray,
    method: str,
    *,
    fay_rho: float,
    scale: float | None,
    rscales: np.ndarray | None,
    mse: bool,
    combined: bool,
) -> ReplicateScheme:
    """A scheme from a file's replicate-weight columns (``svrepdesign``)."""
    if method not in REPLICATE_METHODS:
        raise MethodError(f"rep_method: expected one of {REPLICATE_METHODS}, got {method!r}")
    r = replicate_weights.shape[1]
    if not combined:
        replicate_weights = replicate_weights * weights[:, None]
    if rscales is None:
        if method == "jkn":
            raise DesignError(
                "rep_rscales: JKn replicate weights need the per-replicate factors "
                "(n_h - 1) / n_h of the stratum each replicate drops; got none"
            )
        rscales = np.ones(r)
    rscales = np.broadcast_to(np.asarray(rscales, dtype=float), (r,)).copy()
    if scale is None:
        scale = default_scale(method, r, fay_rho)
    unique_rows = np.unique(replicate_weights, axis=0)
    rank = int(np.linalg.matrix_rank(unique_rows))
    return ReplicateScheme(
        method=method,
        unit=None,
        factors=replicate_weights,
        offset=None,
        multiplier=None,
        row_weight=np.ones(replicate_weights.shape[0]),
        scale=float(scale),
        rscales=rscales,
        mse=mse,
        df=rank - 1,
    )


def _check_lonely(stage: Stage, lonely_psu: str, method: str) -> np.ndarray:
    lonely = (stage.units_per_stratum == 1) & (stage.sampling_fraction < 1)
    if lonely.any() and lonely_psu == "fail":
        raise LonelyPSUError(
            f"{method}: {int(lonely.sum())} stratum/strata have only one PSU; "
            "pass lonely_psu='certainty' or collapse strata"
        )
    return lonely


def jackknife(
    stage: Stage, weights: np.ndarray, method: str, lonely_psu: str, mse: bool
) -> ReplicateScheme:
    """JK1 (unstratified) or JKn (stratified) delete-one-PSU replicates of a Taylor design.

    As R's ``as.svrepdesign``, the finite population correction enters the variance:
    JK1's scale is ``(n - 1) / n * (1 - f)``, JKn's rscales ``(n_h - 1) / n_h * (1 - f_h)``.
    """
    if method == "jk1" and stage.n_strata > 1:
        raise DesignError("jk1: the design is stratified; use 'jkn' for stratified designs")
    n_psu = stage.n_unit
    if n_psu * n_psu > 50_000_000:
        raise DesignError(
            f"{method}: {n_psu} PSUs would need {n_psu} replicates of {n_psu} PSUs; "
            "use 'bootstrap' for designs this large"
        )
    lonely = _check_lonely(stage, lonely_psu, method)
    n_h = stage.units_per_stratum[stage.stratum].astype(float)
    same = stage.stratum[:, None] == stage.stratum[None, :]
    factor = np.where(same, (n_h / np.maximum(n_h - 1, 1))[:, None], 1.0)
    np.fill_diagonal(factor, 0.0)
    keep = ~lonely[stage.stratum]
    factor = factor[:, keep]
    finite = 1.0 - stage.sampling_fraction[stage.stratum]
    if method == "jk1":
        scale = (n_psu - 1.0) / n_psu * float(finite[0])
        rscales = np.ones(factor.shape[1])
    else:
        scale = 1.0
        rscales = ((n_h - 1) / n_h * finite)[keep]
    return ReplicateScheme(
        method=method,
        unit=stage.unit,
        factors=factor,
        offset=None,
        multiplier=None,
        row_weight=weights,
        scale=scale,
        rscales=rscales,
        mse=mse,
        df=factor.shape[1] - 1,
    )


def bootstrap(
    stage: Stage,
    weights: np.ndarray,
    replicates: int,
    seed: int | None,
    lonely_psu: str,
    mse: bool,
) -> ReplicateScheme:
    """Rao-Wu rescaled bootstrap: resample ``n_h - 1`` of the ``n_h`` PSUs with replacement.

    Multipliers are ``n_h / (n_h - 1) * count``; counts are stored as ``uint8`` per PSU.
    Strata with one PSU keep multiplier 1 (no variance contribution) unless they fail.
    """
    lonely = _check_lonely(stage, lonely_psu, "bootstrap")
    rng = np.random.default_rng(seed)
    # Units are stored in stratum order (position p = rank of the unit), so each
    # replicate's counts are one bincount over positions, written as a contiguous row.
    order = np.argsort(stage.stratum, kind="stable")
    position = np.empty(stage.n_unit, dtype=np.int64)
    position[order] = np.arange(stage.n_unit)
    n_h = stage.units_per_stratum
    starts = np.concatenate([[0], np.cumsum(n_h)[:-1]])
    draws_per = np.where(n_h > 1, n_h - 1, 0)
    draw_start = np.repeat(starts, draws_per)
    draw_size = np.repeat(n_h, draws_per).astype(float)
    counts = np.empty((replicates, stage.n_unit), dtype=np.uint8)
    for r in range(replicates):
        picks = draw_start + (rng.random(draw_start.shape[0]) * draw_size).astype(np.int64)
        column = np.bincount(picks, minlength=stage.n_unit)
        if column.max() > 255:
            raise DesignError("bootstrap: a PSU was drawn more than 255 times; stratum too big")
        counts[r] = column
    sorted_stratum = stage.stratum[order]
    unit_n = n_h[sorted_stratum].astype(float)
    multiplier = np.where(unit_n > 1, unit_n / np.maximum(unit_n - 1, 1), 0.0)
    offset = np.where(lonely[sorted_stratum] | (unit_n <= 1), 1.0, 0.0)
    return ReplicateScheme(
        method="bootstrap",
        unit=position[stage.unit],
        factors=np.ascontiguousarray(counts.T),
        offset=offset,
        multiplier=multiplier,
        row_weight=weights,
        scale=1.0 / (replicates - 1.0),
        rscales=np.ones(replicates),
        mse=mse,
        df=min(replicates, stage.n_unit) - 1,
    )
