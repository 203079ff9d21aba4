"""Key-driver analysis: which parts of a service matter most for overall satisfaction.

For each domain (agency, say) and nationally, every driver (waiting time, courtesy,
clarity, outcome ...) gets

* an **importance**: its share of the explained variance R^2 of the overall score,
  by Johnson's (2000) relative weights (default) or by the Shapley decomposition of R^2
  (Lipovetsky and Conklin 2001; the LMG measure of Lindeman, Merenda and Gold 1980). Both
  split R^2 fairly between correlated drivers, which regression coefficients do not;
  relative weights approximate Shapley values closely at a fraction of the cost
  (Johnson 2000; LeBreton et al. 2004);
* its **performance**: the weighted mean score of the driver;
* design-based uncertainty: every statistic is recomputed with each column of replicate
  weights (the design's own, or bootstrap replicates made with ``design.replicate``) and
  combined with the design's replicate variance formula; the interval is estimate
  +/- t * se, cut at 0 and 1.

All statistics are functions of design-weighted means and cross-products, which are
accumulated for all replicates at once by one matrix product per domain, so the work is
one pass over the data.

Domains where the numbers would mislead get a ``note`` and no numbers:

* ``too_few_responses``: fewer complete responses than ``min_n`` (default 100; with a
  handful of drivers a correlation matrix from fewer responses is too noisy to rank them);
* ``collinear_drivers``: a variance inflation factor above ``max_vif`` (default 10, the
  common rule of thumb; Belsley, Kuh and Welsch 1980): drivers that move together cannot
  be told apart, whatever the method;
* ``constant_driver``: a driver or the outcome does not vary in the domain.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import combinations
from math import factorial
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import EstimationError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["DriverError", "key_drivers"]

Method = Literal["relative_weights", "shapley"]
_METHODS = ("relative_weights", "shapley")
_MAX_SHAPLEY_DRIVERS = 12


class DriverError(EstimationError):
    """Key-driver analysis cannot run as asked (names the field, expected and got)."""


class ReplicableDesign(Protocol):
    """What key-driver analysis needs from a ``SurveyDesign``."""

    @property
    def data(self) -> pd.DataFrame: ...
    @property
    def weights(self) -> NDArray[np.float64]: ...
    @property
    def is_replicate(self) -> bool: ...
    @property
    def replicate_weights(self) -> NDArray[np.float64] | None: ...
    @property
    def degrees_of_freedom(self) -> float: ...
    def replicate_variance(
        self, theta_full: NDArray[np.float64], theta_reps: NDArray[np.float64]
    ) -> NDArray[np.float64]: ...
    def replicate(
        self, method: str, *, replicates: int = ..., seed: int | None = ...
    ) -> ReplicableDesign: ...


def key_drivers(
    design: ReplicableDesign,
    outcome: str,
    drivers: Sequence[str],
    by: str | None = None,
    method: Method = "relative_weights",
    *,
    replicates: int = 200,
    seed: int | None = 0,
    level: float = 0.95,
    min_n: int = 100,
    max_vif: float = 10.0,
) -> pd.DataFrame:
    """Importance and performance of each driver, per domain of ``by`` and nationally.

    Returns one row per scope x driver with columns ``scope`` ("national" or "domain"),
    the ``by`` column (missing on national rows), driver, importance (share of R^2, 0-1),
    importance_se, ci_low, ci_high, raw_weight (importance x R^2), r2, performance,
    performance_se, n (complete responses), max_vif, note (empty when the numbers stand).
    Rows with a missing outcome or driver are left out (listwise). A replicate-weight
    design uses its own replicates; otherwise ``design.replicate("bootstrap",
    replicates=..., seed=...)`` makes them.
    """
    drivers = list(drivers)
    if method not in _METHODS:
        raise DriverError(f"method: expected one of {_METHODS}, got {method!r}")
    if len(drivers) < 2:
        raise DriverError(f"drivers: expected at least 2 driver columns, got {drivers!r}")
    if method == "shapley" and len(drivers) > _MAX_SHAPLEY_DRIVERS:
        raise DriverError(
            f"drivers: the Shapley decomposition takes at most {_MAX_SHAPLEY_DRIVERS} drivers "
            f"(2^p fits), got {len(drivers)}; use method='relative_weights'"
        )
    if not 0 < level < 1:
        raise DriverError(f"level: expected a number between 0 and 1, got {level!r}")
    data: pd.DataFrame = design.data
    columns = [outcome, *drivers]
    for name in [*columns, *([by] if by else [])]:
        if name not in data.columns:
            raise DriverError(f"column {name!r} is not in the data")
    values = np.empty((len(data), len(columns)))
    for j, name in enumerate(columns):
        try:
            values[:, j] = pd.to_numeric(data[name], errors="raise").to_numpy(dtype=float)
        except (TypeError, ValueError):
            raise DriverError(f"column {name!r}: expected numeric scores") from None
    complete = np.asarray(~np.isnan(values).any(axis=1), dtype=bool)
    values = np.where(complete[:, None], values, 0.0)

    rep_design = design
    if not design.is_replicate:
        rep_design = design.replicate("bootstrap", replicates=replicates, seed=seed)
    full_w = np.asarray(design.weights, dtype=float)
    # centre on the national mean: correlations do not change, cancellation does
    shift = (full_w * complete) @ values / max(float((full_w * complete).sum()), 1e-300)
    values = np.where(complete[:, None], values - shift, 0.0)

    if by is None:
        codes = np.zeros(len(data), dtype=np.intp)
        labels: list[Any] = []  # the by column's categories, whatever their type
    else:
        factor = pd.Categorical(data[by])
        labels = list(factor.categories)
        codes = np.where(factor.codes < 0, -1, factor.codes + 1)  # 0 = national, -1 = none
    n_dom = len(labels) + 1  # domain 0 is the nation
    products = _products(values, complete)
    # rows sorted by domain once: each domain is then a contiguous slice (no copies)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_dom + 1))
    slices = [slice(bounds[d], bounds[d + 1]) for d in range(1, n_dom)]
    products = products[order]
    complete_sorted = complete[order]
    counts = np.array(
        [complete.sum(), *(complete_sorted[part].sum() for part in slices)], dtype=float
    )
    full = _statistics(_moment_sums(products, full_w[order][:, None], slices), method)
    rep_sums = np.concatenate(
        [_moment_sums(products, block, slices) for block in _replicate_blocks(rep_design, order)],
        axis=1,
    )
    rep_stats = _statistics(rep_sums, method)
    full["mean"] = full["mean"] + shift
    rep_stats["mean"] = rep_stats["mean"] + shift
    df = float(rep_design.degrees_of_freedom)
    quantile = stats.t.ppf(0.5 + level / 2, df) if df > 0 else np.nan

    p = len(drivers)
    out: list[pd.DataFrame] = []
    for d in range(n_dom):
        share = full["share"][d, 0]
        se_share = _replicate_se(rep_design, share, rep_stats["share"][d])
        perf = full["mean"][d, 0, 1:]
        se_perf = _replicate_se(rep_design, perf, rep_stats["mean"][d][:, 1:])
        vif = full["vif"][d, 0]
        note = _note(counts[d], min_n, vif, max_vif, full["constant"][d, 0])
        frame = pd.DataFrame(
            {
                "scope": "national" if d == 0 else "domain",
                "driver": drivers,
                "importance": share,
                "importance_se": se_share,
                "ci_low": np.clip(share - quantile * se_share, 0, 1),
                "ci_high": np.clip(share + quantile * se_share, 0, 1),
                "raw_weight": full["raw"][d, 0],
                "r2": np.repeat(full["r2"][d, 0], p),
                "performance": perf,
                "performance_se": se_perf,
                "n": int(counts[d]),
                "max_vif": np.repeat(np.nanmax(vif) if np.isfinite(vif).any() else np.nan, p),
                "note": note,
            }
        )
        if note:
            cols = ["importance", "importance_se", "ci_low", "ci_high", "raw_weight", "r2"]
            frame.loc[:, cols] = np.nan
        if by is not None:
            # NA on the national row (Any: pandas-stubs' insert does not take NAType)
            label: Any = pd.NA if d == 0 else labels[d - 1]
            frame.insert(1, by, label)
        out.append(frame)
    return pd.concat(out, ignore_index=True)


def _note(n: float, min_n: int, vif: NDArray[np.float64], max_vif: float, constant: bool) -> str:
    if n < min_n:
        return f"too_few_responses: {int(n)} complete responses, the minimum is {min_n}"
    if constant:
        return "constant_driver: the outcome or a driver does not vary"
    if np.nanmax(vif) > max_vif:
        return f"collinear_drivers: largest VIF {np.nanmax(vif):.1f} exceeds {max_vif:g}"
    return ""


def _replicate_blocks(
    design: ReplicableDesign, rows: NDArray[np.intp]
) -> Iterator[NDArray[np.float64]]:
    """Replicate weights of ``rows``, 32 columns at a time (a million rows x 200 replicates
    would take 1.6 GB at once)."""
    blocks = getattr(design, "replicate_weight_blocks", None)
    if blocks is not None:
        return blocks(32, rows)
    reps = np.asarray(design.replicate_weights, dtype=float)[rows]
    return (reps[:, i : i + 32] for i in range(0, reps.shape[1], 32))


def _replicate_se(
    design: ReplicableDesign, full: NDArray[np.float64], reps: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Replicate standard errors; NaNs (undefined statistics) give NaN."""
    full = np.atleast_1d(full)
    reps = reps.reshape(reps.shape[0], -1)
    if not (np.isfinite(full).all() and np.isfinite(reps).all()):
        return np.full(full.shape, np.nan)
    cov = np.asarray(design.replicate_variance(full, reps), dtype=float)
    return np.sqrt(np.clip(np.diag(np.atleast_2d(cov)), 0, None))


def _products(values: NDArray[np.float64], complete: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Per row: 1, each variable, each distinct cross-product (0 on incomplete rows)."""
    q = values.shape[1]
    upper = np.triu_indices(q)
    return np.column_stack(
        [complete.astype(float), values, values[:, upper[0]] * values[:, upper[1]]]
    )


def _moment_sums(
    products: NDArray[np.float64],
    weights: NDArray[np.float64],
    slices: list[slice],
) -> NDArray[np.float64]:
    """Weighted sums of ``products`` for the nation and each domain: (1 + D, K, J).

    Rows are sorted by domain, so each domain is one matrix product over a contiguous
    slice: one pass over the data for all K weight columns at once.
    """
    out = np.empty((1 + len(slices), weights.shape[1], products.shape[1]))
    out[0] = weights.T @ products
    for d, part in enumerate(slices, start=1):
        out[d] = weights[part].T @ products[part]
    return out


def _statistics(sums: NDArray[np.float64], method: str) -> dict[str, NDArray[np.float64]]:
    """Means, correlations and importance from moment sums, for every domain x weight column.

    ``sums`` is (D, K, J) with J = 1 + q + q(q+1)/2 for q = 1 + p variables.
    """
    J = sums.shape[-1]
    q = int((np.sqrt(8 * J + 1) - 3) / 2)
    upper = np.triu_indices(q)
    s0 = sums[..., 0]
    s1 = sums[..., 1 : 1 + q]
    s2 = np.empty((*sums.shape[:-1], q, q))
    s2[..., upper[0], upper[1]] = sums[..., 1 + q :]
    s2[..., upper[1], upper[0]] = sums[..., 1 + q :]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s1 / s0[..., None]
        cov = s2 / s0[..., None, None] - mean[..., :, None] * mean[..., None, :]
        sd = np.sqrt(np.clip(np.diagonal(cov, axis1=-2, axis2=-1), 0, None))
        constant = np.asarray((sd <= 1e-12 * (1 + np.abs(mean))).any(axis=-1), dtype=bool)
        safe_sd = np.where(sd > 0, sd, 1.0)
        corr = cov / safe_sd[..., :, None] / safe_sd[..., None, :]
    bad = constant | ~np.isfinite(corr).all(axis=(-2, -1))
    corr = np.where(bad[..., None, None], np.eye(q), corr)
    rxx = corr[..., 1:, 1:]
    rxy = corr[..., 1:, 0]
    raw = _relative_weights(rxx, rxy) if method == "relative_weights" else _shapley(rxx, rxy)
    r2 = raw.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = raw / r2[..., None]
        vif = np.diagonal(np.linalg.pinv(rxx, hermitian=True), axis1=-2, axis2=-1).copy()
    raw[bad] = np.nan
    share[bad] = np.nan
    r2[bad] = np.nan
    return {"raw": raw, "share": share, "r2": r2, "mean": mean, "vif": vif, "constant": constant}


def _relative_weights(rxx: NDArray[np.float64], rxy: NDArray[np.float64]) -> NDArray[np.float64]:
    """Johnson's (2000) relative weights from correlation matrices, batched.

    ``Lambda = Rxx^(1/2)`` relates the drivers to their closest orthogonal counterparts Z;
    regressing y on Z gives ``beta = Lambda^-1 rxy``; driver j's weight is
    ``sum_k Lambda_jk^2 beta_k^2``. The weights sum to the model R^2.
    """
    eigval, eigvec = np.linalg.eigh(rxx)
    root = np.sqrt(np.clip(eigval, 0, None))
    lam = (eigvec * root[..., None, :]) @ np.swapaxes(eigvec, -1, -2)
    inv_root = np.where(root > 1e-12, 1.0 / np.where(root > 0, root, 1.0), 0.0)
    lam_inv = (eigvec * inv_root[..., None, :]) @ np.swapaxes(eigvec, -1, -2)
    beta = np.einsum("...ij,...j->...i", lam_inv, rxy)
    return np.einsum("...jk,...k->...j", lam**2, beta**2)


def _shapley(rxx: NDArray[np.float64], rxy: NDArray[np.float64]) -> NDArray[np.float64]:
    """Shapley values of R^2 over all 2^p driver subsets, batched over leading axes."""
    p = rxx.shape[-1]
    r2: dict[tuple[int, ...], NDArray[np.float64]] = {(): np.zeros(rxx.shape[:-2])}
    for size in range(1, p + 1):
        for subset in combinations(range(p), size):
            idx = np.array(subset)
            sub = rxx[..., idx[:, None], idx[None, :]]
            r = rxy[..., idx]
            solved = np.einsum("...ij,...j->...i", np.linalg.pinv(sub, hermitian=True), r)
            r2[subset] = np.einsum("...i,...i->...", r, solved)
    out = np.zeros(rxy.shape)
    for subset, value in r2.items():
        s = len(subset)
        if s == p:
            continue
        weight = factorial(s) * factorial(p - s - 1) / factorial(p)
        for j in range(p):
            if j in subset:
                continue
            joined = tuple(sorted((*subset, j)))
            out[..., j] += weight * (r2[joined] - value)
    return out
