"""Small-area estimation with the Fay-Herriot area-level model.

Many agency x province cells have too few responses for a direct estimate to be published.
The Fay-Herriot model (Fay and Herriot 1979) borrows strength across cells:

    direct_d = theta_d + e_d,   e_d ~ N(0, psi_d)      (sampling error, psi_d known)
    theta_d  = x_d' beta + u_d, u_d ~ N(0, sigma2_u)    (linking model)

and the EBLUP ``gamma_d * direct_d + (1 - gamma_d) * x_d' beta`` with
``gamma_d = sigma2_u / (sigma2_u + psi_d)`` shrinks unreliable direct estimates towards the
regression prediction. ``sigma2_u`` is fitted by REML, ML (Fisher scoring exactly as R's
``sae::eblupFH``: start at the median of ``psi``, stop when the relative change is below
``precision`` or after ``max_iter`` iterations, truncate at 0) or the Fay-Herriot moment
method. MSEs follow ``sae::mseFH``: Prasad and Rao (1990) for REML, Datta and Lahiri (2000)
for ML, Datta, Rao and Smith (2005) for FH; or a parametric bootstrap (Gonzalez-Manteiga
et al. 2008). Everything is vectorised: the bootstrap refits all replicates at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from analysis.errors import EstimationError

__all__ = ["Benchmark", "FayHerriotError", "FayHerriotResult", "fay_herriot"]

Method = Literal["REML", "ML", "FH"]
_METHODS = ("REML", "ML", "FH")


class FayHerriotError(EstimationError):
    """Input to the Fay-Herriot model is unusable (names the field, expected and got)."""


@dataclass(frozen=True)
class Benchmark:
    """Ratio benchmarking of small-area estimates to the direct estimate of a larger domain.

    ``group`` names each area's larger domain (for example the province of an agency x
    province cell), ``share`` its population share within that domain (shares of a domain
    sum to 1), and ``target`` the larger domain's direct estimate. Without ``target`` the
    share-weighted sum of the areas' direct estimates is used, which is the larger domain's
    direct estimate when the areas partition it.
    """

    group: Sequence[object] | np.ndarray | pd.Series
    share: Sequence[float] | np.ndarray | pd.Series
    target: Mapping[object, float] | None = None


@dataclass(frozen=True)
class FayHerriotResult:
    """A fitted Fay-Herriot model.

    ``table`` has one row per area: ``direct``, ``variance`` (psi), ``sampled`` (has a direct
    estimate), ``eblup``, ``mse``
    (of the EBLUP), ``gamma`` (weight on the direct estimate), ``synthetic`` (x'beta),
    ``estimate`` (what to publish: the EBLUP, benchmarked if asked, where ``model_based``
    is true, the direct estimate elsewhere), ``model_based`` and, with benchmarking,
    ``eblup_benchmarked``. ``beta`` has term, estimate, se, z, p_value (normal, as sae).
    """

    table: pd.DataFrame
    sigma2_u: float
    beta: pd.DataFrame
    method: str
    iterations: int
    converged: bool
    loglike: float


def fay_herriot(
    direct: Sequence[float] | np.ndarray | pd.Series,
    variance: Sequence[float] | np.ndarray | pd.Series,
    X: np.ndarray | pd.DataFrame,
    method: Method = "REML",
    mse: bool = True,
    benchmark: Benchmark | None = None,
    *,
    add_intercept: bool = True,
    area: Sequence[object] | np.ndarray | pd.Series | None = None,
    direct_ok: Sequence[bool] | np.ndarray | pd.Series | None = None,
    bootstrap: int = 0,
    seed: int | None = None,
    max_iter: int = 100,
    precision: float = 1e-4,
) -> FayHerriotResult:
    """Fit the Fay-Herriot model and return EBLUPs with their MSEs.

    ``X`` holds the auxiliary variables of each area (a DataFrame names the terms); an
    intercept column is prepended unless ``add_intercept=False``. ``direct_ok`` marks the
    areas whose direct estimate passes the publication quality rule: those keep it in the
    ``estimate`` column and are not flagged model-based. ``bootstrap=B > 0`` replaces the
    analytic MSE by the parametric bootstrap MSE with ``B`` replicates drawn from
    ``numpy.random.default_rng(seed)``. Areas whose direct estimate is missing (NaN) are
    left out of the fit and get the synthetic estimate ``x' beta`` with MSE
    ``sigma2_u + x' (X' V^-1 X)^-1 x``.
    """
    if method not in _METHODS:
        raise FayHerriotError(f"method: expected one of {_METHODS}, got {method!r}")
    y_all = _vector("direct", direct, allow_missing=True)
    m = y_all.size
    psi_all = _vector("variance", variance, allow_missing=True)
    if psi_all.size != m:
        raise FayHerriotError(f"variance: expected {m} values (one per area), got {psi_all.size}")
    sampled = np.isfinite(y_all)
    if np.isinf(y_all).any():
        raise FayHerriotError("direct: expected finite numbers or missing, got infinity")
    psi_s = psi_all[sampled]
    if not np.all(np.isfinite(psi_s)) or np.any(psi_s <= 0):
        raise FayHerriotError(
            "variance: expected a positive sampling variance for every area with a direct "
            "estimate, got a missing, infinite or non-positive value"
        )
    design_all, terms = _design_matrix(X, m, add_intercept)
    design = design_all[sampled]
    y = y_all[sampled]
    p = design.shape[1]
    if y.size <= p:
        raise FayHerriotError(
            f"direct: expected more areas with a direct estimate ({y.size}) than columns of X ({p})"
        )
    if np.linalg.matrix_rank(design) < p:
        raise FayHerriotError("X: the auxiliary variables are linearly dependent")
    labels = np.arange(1, m + 1) if area is None else np.asarray(area)
    if labels.size != m:
        raise FayHerriotError(f"area: expected {m} labels, got {labels.size}")

    sigma2, iterations, converged = _fit_variance(
        y[None, :], psi_s, design, method, max_iter, precision
    )
    if not converged[0]:
        raise FayHerriotError(
            f"{method} Fisher scoring did not converge in max_iter={max_iter} iterations"
        )
    a = float(sigma2[0])
    beta, cov_beta = _gls(y, psi_s, design, a)
    synthetic = design_all @ beta
    gamma = np.where(sampled, a / (a + np.where(sampled, psi_all, 1.0)), 0.0)
    eblup = np.where(sampled, synthetic + gamma * (np.nan_to_num(y_all) - synthetic), synthetic)
    total_var = a + psi_s
    resid = y - synthetic[sampled]
    loglike = float(-0.5 * np.sum(np.log(2 * np.pi * total_var) + resid**2 / total_var))

    table = pd.DataFrame(
        {
            "area": labels,
            "direct": y_all,
            "variance": psi_all,
            "sampled": sampled,
            "eblup": eblup,
            "gamma": gamma,
            "synthetic": synthetic,
        }
    )
    if mse:
        if bootstrap > 0:
            table["mse"] = _bootstrap_mse(
                beta, psi_s, design_all, sampled, a, method, bootstrap, seed, max_iter, precision
            )
        else:
            values = np.empty(m)
            values[sampled] = _analytic_mse(psi_s, design, a, method)
            outside = design_all[~sampled]
            values[~sampled] = a + np.einsum("mp,pq,mq->m", outside, cov_beta, outside)
            table["mse"] = values
    published = eblup
    if benchmark is not None:
        published = _ratio_benchmark(eblup, y_all, benchmark, m)
        table["eblup_benchmarked"] = published
    if direct_ok is None:
        model_based = np.ones(m, dtype=bool)
    else:
        ok = _flags("direct_ok", direct_ok, m)
        if np.any(ok & ~sampled):
            raise FayHerriotError("direct_ok: an area without a direct estimate cannot pass")
        model_based = ~ok
    table["estimate"] = np.where(model_based, published, y_all)
    table["model_based"] = model_based

    se_beta = np.sqrt(np.diag(cov_beta))
    z = beta / se_beta
    beta_table = pd.DataFrame(
        {
            "term": terms,
            "estimate": beta,
            "se": se_beta,
            "z": z,
            "p_value": 2 * stats.norm.sf(np.abs(z)),
        }
    )
    return FayHerriotResult(
        table=table,
        sigma2_u=a,
        beta=beta_table,
        method=method,
        iterations=int(iterations[0]),
        converged=True,
        loglike=loglike,
    )


def _vector(name: str, values: object, allow_missing: bool = False) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError) as error:
        raise FayHerriotError(f"{name}: expected numbers, got {error}") from None
    if not allow_missing and not np.all(np.isfinite(array)):
        raise FayHerriotError(f"{name}: expected finite numbers, got missing or infinite values")
    return array


def _flags(name: str, values: object, m: int) -> np.ndarray:
    flags = np.asarray(values, dtype=bool).reshape(-1)
    if flags.size != m:
        raise FayHerriotError(f"{name}: expected {m} flags, got {flags.size}")
    return flags


def _design_matrix(X: object, m: int, add_intercept: bool) -> tuple[np.ndarray, list[str]]:
    if isinstance(X, pd.DataFrame):
        terms = [str(c) for c in X.columns]
        values = X.to_numpy(dtype=float)
    else:
        values = np.asarray(X, dtype=float)
        if values.ndim == 1:
            values = values[:, None]
        terms = [f"x{j + 1}" for j in range(values.shape[1])]
    if values.ndim != 2 or values.shape[0] != m:
        raise FayHerriotError(f"X: expected {m} rows (one per area), got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise FayHerriotError("X: expected finite numbers, got missing or infinite values")
    if add_intercept:
        values = np.column_stack([np.ones(m), values])
        terms = ["(Intercept)", *terms]
    return values, terms


def _gls(y: np.ndarray, psi: np.ndarray, X: np.ndarray, a: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised least squares beta and its covariance (X' V^-1 X)^-1 for given sigma2_u."""
    vi = 1.0 / (a + psi)
    q = np.linalg.inv((X.T * vi) @ X)
    return q @ ((X.T * vi) @ y), q


def _fit_variance(
    Y: np.ndarray, psi: np.ndarray, X: np.ndarray, method: str, max_iter: int, precision: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fisher scoring for sigma2_u, one problem per row of ``Y`` (B x m), all at once.

    Follows sae::eblupFH step for step. One guard R lacks: an iterate that falls below 0
    is set to 0 (R would go on with a negative variance); a row whose update stays below
    0 from there has converged to the boundary.
    """
    b, m = Y.shape
    p = X.shape[1]
    a = np.full(b, float(np.median(psi)))
    active = np.ones(b, dtype=bool)
    iterations = np.zeros(b, dtype=int)
    for _ in range(max_iter):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        ak = a[idx]
        vi = 1.0 / (ak[:, None] + psi[None, :])  # (k, m)
        xtvx = np.einsum("km,mp,mq->kpq", vi, X, X)
        q = np.linalg.inv(xtvx)
        xtvy = np.einsum("km,mp,km->kp", vi, X, Y[idx])
        beta = np.einsum("kpq,kq->kp", q, xtvy)
        resid = Y[idx] - beta @ X.T
        py = vi * resid  # P y = V^-1 (y - X beta_gls)
        if method == "REML":
            x2 = np.einsum("km,mp,mq->kpq", vi**2, X, X)
            x3 = np.einsum("km,mp,mq->kpq", vi**3, X, X)
            qx2 = q @ x2
            trace_p = vi.sum(axis=1) - np.trace(qx2, axis1=1, axis2=2)
            trace_pp = (
                (vi**2).sum(axis=1)
                - 2 * np.trace(q @ x3, axis1=1, axis2=2)
                + np.einsum("kij,kji->k", qx2, qx2)
            )
            score = -0.5 * trace_p + 0.5 * (py**2).sum(axis=1)
            info = 0.5 * trace_pp
        elif method == "ML":
            score = -0.5 * vi.sum(axis=1) + 0.5 * (py**2).sum(axis=1)
            info = 0.5 * (vi**2).sum(axis=1)
        else:
            score = (resid**2 * vi).sum(axis=1) - (m - p)
            info = vi.sum(axis=1)
        new = ak + score / info
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = np.abs((new - ak) / ak)
        at_boundary = (ak == 0) & (new <= 0)
        new = np.maximum(new, 0.0)
        a[idx] = new
        iterations[idx] += 1
        done = (diff <= precision) | at_boundary
        active[idx[done]] = False
    return a, iterations, ~active


def _analytic_mse(psi: np.ndarray, X: np.ndarray, a: float, method: str) -> np.ndarray:
    """The second-order MSE estimators of sae::mseFH (g1 + g2 + 2 g3, minus the bias term)."""
    m = psi.size
    vi = 1.0 / (a + psi)
    bd = psi / (a + psi)
    q = np.linalg.inv((X.T * vi) @ X)
    g1 = psi * (1 - bd)
    g2 = bd**2 * np.einsum("mp,pq,mq->m", X, q, X)
    sum_v2 = np.sum(vi**2)
    bias: float
    if method == "FH":
        sum_v = np.sum(vi)
        var_a = 2 * m / sum_v**2
        bias = 2 * (m * sum_v2 - sum_v**2) / sum_v**3
    else:
        var_a = 2 / sum_v2
        bias = 0.0
        if method == "ML":
            bias = -np.trace(q @ ((X.T * vi**2) @ X)) / sum_v2
    g3 = bd**2 * var_a / (a + psi)
    return g1 + g2 + 2 * g3 - bias * bd**2


def _bootstrap_mse(
    beta: np.ndarray,
    psi: np.ndarray,
    X_all: np.ndarray,
    sampled: np.ndarray,
    a: float,
    method: str,
    replicates: int,
    seed: int | None,
    max_iter: int,
    precision: float,
) -> np.ndarray:
    """Parametric bootstrap MSE: simulate the model at the fit, refit, compare with theta*.

    Areas without a direct estimate get the refitted synthetic estimate ``x' beta*``.
    """
    rng = np.random.default_rng(seed)
    m = X_all.shape[0]
    X = X_all[sampled]
    theta = (X_all @ beta)[None, :] + np.sqrt(a) * rng.standard_normal((replicates, m))
    noise = np.sqrt(psi)[None, :] * rng.standard_normal((replicates, psi.size))
    y = theta[:, sampled] + noise
    a_star, _, converged = _fit_variance(y, psi, X, method, max_iter, precision)
    vi = 1.0 / (a_star[:, None] + psi[None, :])
    q = np.linalg.inv(np.einsum("km,mp,mq->kpq", vi, X, X))
    beta_star = np.einsum("kpq,kq->kp", q, np.einsum("km,mp,km->kp", vi, X, y))
    estimate = beta_star @ X_all.T
    fitted = estimate[:, sampled]
    estimate[:, sampled] = fitted + a_star[:, None] * vi * (y - fitted)
    error = (estimate - theta)[converged]
    if error.shape[0] == 0:
        raise FayHerriotError("bootstrap: no replicate converged; raise max_iter")
    return np.mean(error**2, axis=0)


def _ratio_benchmark(eblup: np.ndarray, y: np.ndarray, benchmark: Benchmark, m: int) -> np.ndarray:
    """Scale each larger domain's EBLUPs so their share-weighted sum equals its target."""
    groups = np.asarray(benchmark.group).reshape(-1)
    share = _vector("benchmark.share", benchmark.share)
    if groups.size != m or share.size != m:
        raise FayHerriotError(
            f"benchmark: expected {m} groups and shares, got {groups.size} and {share.size}"
        )
    codes, index = np.unique(groups, return_inverse=True)
    share_sum = np.bincount(index, weights=share, minlength=codes.size)
    if not np.allclose(share_sum, 1.0, atol=1e-6):
        bad = codes[~np.isclose(share_sum, 1.0, atol=1e-6)][0]
        raise FayHerriotError(
            f"benchmark.share: expected the shares of group {bad!r} to sum to 1, "
            f"got {share_sum[codes == bad][0]:.6g}"
        )
    if benchmark.target is None:
        unsampled = ~np.isfinite(y)
        if unsampled.any():
            raise FayHerriotError(
                f"benchmark.target: group {codes[index[unsampled][0]]!r} has an area without a "
                "direct estimate, so its direct total is unknown; give the targets"
            )
        target = np.bincount(index, weights=share * y, minlength=codes.size)
    else:
        missing = [c for c in codes if c not in benchmark.target]
        if missing:
            raise FayHerriotError(f"benchmark.target: expected a value for group {missing[0]!r}")
        target = np.array([float(benchmark.target[c]) for c in codes])
    model_sum = np.bincount(index, weights=share * eblup, minlength=codes.size)
    if np.any(model_sum == 0):
        raise FayHerriotError("benchmark: a group's weighted EBLUP sum is 0; ratio undefined")
    return eblup * (target / model_sum)[index]
