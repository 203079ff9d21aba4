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

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg, sparse

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
        """Element-wise variance for ``theta_reps`` of shape ``(..., R)`` (R's ``svrVar``).

        Replicates whose estimate is undefined (NaN: a domain with no weight in that
        replicate) are left out, as ``svrVar``'s ``na.omit`` (the scale is kept)."""
        theta_reps = np.asarray(theta_reps, dtype=float)
        defined = ~np.isnan(theta_reps)
        values = np.where(defined, theta_reps, 0.0)
        if self.mse:
            centre = np.asarray(theta_full, dtype=float)
        else:
            use = defined & (self.rscales > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                centre = (values * use).sum(axis=-1) / use.sum(axis=-1)
        dev = np.where(defined, values - centre[..., None], 0.0)
        variance = self.scale * (dev**2 * self.rscales).sum(axis=-1)
        return np.where(defined.any(axis=-1), variance, np.nan)

    def covariance(self, theta_full: np.ndarray, theta_reps: np.ndarray) -> np.ndarray:
        """``k x k`` covariance from ``theta_reps`` of shape ``(R, k)``; replicates with an
        undefined (NaN) estimate are left out, as ``svrVar``."""
        theta_reps = np.atleast_2d(np.asarray(theta_reps, dtype=float))
        theta_full = np.atleast_1d(np.asarray(theta_full, dtype=float))
        defined = ~np.isnan(theta_reps).any(axis=1)
        theta_reps, rscales = theta_reps[defined], self.rscales[defined]
        centre = theta_full if self.mse else theta_reps[rscales > 0].mean(axis=0)
        dev = theta_reps - centre
        return self.scale * (dev * rscales[:, None]).T @ dev

    def domain_df(self, domain: np.ndarray, n_domain: int, counted: np.ndarray) -> np.ndarray:
        """R's ``degf`` of each domain's subset: the rank of the replicate weights of the
        domain's ``counted`` rows, minus 1 (``n_domain`` values; -1 for an empty domain).

        Rows are reduced to their distinct weight patterns first (a PSU's rows share one:
        the unit of a factored scheme, identical rows of a file's weights), and identical
        columns are merged (a jackknife replicate that drops a PSU outside the domain is
        the full-sample weight there), so the cost is that of an SVD of a (domain PSUs x
        distinct replicates) matrix per domain; computed once per design and ``by``.
        """
        rows = np.flatnonzero(counted & (domain >= 0) & (domain < n_domain))
        if self.unit is None:
            _, pattern = np.unique(self.factors[rows], axis=0, return_inverse=True)
            pattern = pattern.reshape(-1)
            first = np.zeros(int(pattern.max()) + 1 if rows.size else 0, dtype=np.int64)
            first[pattern[::-1]] = rows[::-1]
            source = first  # a representative row of every pattern
        else:
            pattern = self.unit[rows]
        key = np.unique(pattern.astype(np.int64) * n_domain + domain[rows])
        key_pattern, key_domain = key // n_domain, key % n_domain
        order = np.argsort(key_domain, kind="stable")
        key_pattern, key_domain = key_pattern[order], key_domain[order]
        bounds = np.searchsorted(key_domain, np.arange(n_domain + 1))
        df = np.full(n_domain, -1.0)
        for d in range(n_domain):
            members = key_pattern[bounds[d] : bounds[d + 1]]
            if members.size == 0:
                continue
            if self.unit is None:
                matrix = self.factors[source[members]].astype(float)
            else:
                matrix = self.factors[members].astype(float)
                if self.multiplier is not None:
                    matrix *= self.multiplier[members][:, None]
                if self.offset is not None:
                    matrix += self.offset[members][:, None]
            if matrix.shape[1] > matrix.shape[0]:
                matrix = np.unique(matrix, axis=1)
            df[d] = _rank(matrix) - 1
        return df

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


def _rank(matrix: np.ndarray) -> int:
    """Numerical rank (numpy's SVD cutoff).

    A tall matrix (more PSUs than replicates: a bootstrap domain) is most often of full
    column rank, which an LU factorisation of evenly spread rows proves at the cost of one
    square matrix (its pivots all clearly non-zero); otherwise it is reduced by QR first."""
    if not matrix.size:
        return 0
    rows, columns = matrix.shape
    if rows > columns:
        # a step of at least 1 between the chosen rows: they are distinct
        square = matrix[np.linspace(0, rows - 1, columns).round().astype(np.int64)]
        with warnings.catch_warnings():  # an exactly singular square is expected here
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            pivots = np.abs(np.diagonal(linalg.lu_factor(square, check_finite=False)[0]))
        if pivots.min() > 1e-10 * pivots.max():
            return columns
        matrix = linalg.qr(matrix, mode="r", check_finite=False)[0]
    return int(np.linalg.matrix_rank(matrix))


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
            "pass lonely_psu='adjust', 'average', 'certainty' or 'remove', or collapse strata"
        )
    return lonely


def jackknife(
    stage: Stage, weights: np.ndarray, method: str, lonely_psu: str, mse: bool
) -> ReplicateScheme:
    """JK1 (unstratified) or JKn (stratified) delete-one-PSU replicates of a Taylor design,
    as R's ``as.svrepdesign`` (``jk1weights``, ``jknweights``).

    The finite population correction enters the variance: JK1's scale is
    ``(n - 1) / n * (1 - f)``, JKn's rscales ``(n_h - 1) / n_h * (1 - f_h)``. Strata taken
    whole (``f_h = 1``) get no replicate (R's ``survey.drop.replicates``). A lonely stratum
    (one PSU, not taken whole) gets, as R's ``jknweights`` under ``survey.lonely.psu``:

    * ``"certainty"``, ``"remove"``: no replicate;
    * ``"average"``: no replicate, and the scale becomes PSUs / replicates (R's rule: every
      PSU without a replicate, lonely or taken whole, counts as missing);
    * ``"adjust"``: one replicate that drops it and multiplies every other PSU by
      ``H / (H - 1)`` (``H`` strata), with rscale ``(H - 1) / H``.
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
    finite = 1.0 - stage.sampling_fraction[stage.stratum]
    keep = ~lonely[stage.stratum] & (finite > 0)
    factor = factor[:, keep]
    if method == "jk1":
        scale = (n_psu - 1.0) / n_psu * float(finite[0])
        rscales = np.ones(factor.shape[1])
    else:
        scale = 1.0
        rscales = ((n_h - 1) / n_h * finite)[keep]
    # R's degf: rank of the replicate weights - 1. The delete-one columns of a stratum sum
    # to n_h times a column of ones, so each stratum with replicates loses one dimension
    # (the ones direction is shared by all); an "adjust" column adds one.
    strata_with_columns = np.unique(stage.stratum[keep]).shape[0]
    rank = factor.shape[1] - strata_with_columns + 1 if factor.shape[1] else 0
    if lonely.any() and method == "jkn":
        if lonely_psu == "adjust":
            n_strata = stage.n_strata
            extra = np.where(
                stage.stratum[:, None] == np.flatnonzero(lonely)[None, :],
                0.0,
                n_strata / max(n_strata - 1, 1),
            )
            factor = np.hstack([factor, extra])
            rscales = np.concatenate([rscales, np.full(extra.shape[1], (n_strata - 1) / n_strata)])
            rank = rank + extra.shape[1] if rank else extra.shape[1] * (extra.shape[1] > 1)
        elif lonely_psu == "average" and factor.shape[1]:
            scale = n_psu / factor.shape[1]
    if factor.shape[1] == 0:
        raise DesignError(
            f"{method}: no stratum can be jackknifed (every stratum is lonely or taken whole)"
        )
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
        df=rank - 1,
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
        # R's degf, the rank of the weights - 1: in every replicate a stratum's counts sum
        # to n_h - 1, so its PSUs add n_h - 1 dimensions to a shared constant one
        df=min(replicates - 1, int(np.maximum(n_h - 1, 0).sum())),
    )
