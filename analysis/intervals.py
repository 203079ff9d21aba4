"""Confidence intervals: Wald/t, and every proportion method of R's ``svyciprop``.

Methods for means, totals and ratios (``method=``):

* ``None`` -- the publication default: ``estimate +- t * se`` with the domain's
  Satterthwaite degrees of freedom, capped by the domain's own PSUs minus strata;
* ``"wald"`` -- ``estimate +- t * se`` with R's degrees of freedom (the domain's own PSUs
  minus its strata, i.e. ``degf(design)`` for the whole sample, as ``confint(m, df=degf(d))``;
  on replicate designs the rank of the domain's replicate weights - 1, R's
  ``degf(subset(d, <domain>))``);
* ``"normal"`` -- ``estimate +- z * se`` (R's ``confint()`` default).

Methods for proportions (``method=``), all with ``df`` degrees of freedom:

* ``"beta"`` -- Korn-Graubard as R's ``svyciprop(method="beta")``: effective sample size
  ``p (1 - p) / var`` (not capped at n), scaled by ``(t_{n-1} / t_df)^2``, Clopper-Pearson
  beta quantiles;
* ``"logit"``, ``"xlogit"`` -- the interval for ``logit(p)``, back-transformed, with the
  delta-method SE (R: equal for an intercept-only model on a Taylor design); on a replicate
  design ``"logit"`` takes the replicate variance of ``logit(p)``, as R's ``svyglm`` refits;
* ``"wald"`` -- ``p +- t * se`` (R's ``method="mean"``);
* ``"likelihood"`` -- R's profile-likelihood interval from a quasibinomial ``svyglm``,
  the deviance rescaled by the design effect of the coefficient (Rao-Scott);
* ``"wilson"`` -- Wilson's score interval on the effective sample size, with ``t_df``;
* ``None`` -- the publication default: Korn-Graubard as the NCHS standard (effective
  sample size capped at the domain's n -- a design-effect floor of 1 -- and set to n when
  the variance is 0), with the Satterthwaite df of the publication default above.

References: Korn & Graubard (1998) Survey Methodology 24:193-201; Parker et al. (2017)
NCHS Data Presentation Standards for Proportions, Vital Health Stat 2(175); Lumley (2010)
Complex Surveys, ch. 2.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import special, stats

from analysis.errors import MethodError

MEAN_METHODS = (None, "wald", "normal")
PROPORTION_METHODS = (None, "beta", "logit", "xlogit", "wald", "mean", "likelihood", "wilson")


def critical_value(level: float, df: np.ndarray | float) -> np.ndarray:
    """Two-sided critical value: Student t with ``df`` (normal where df is infinite).

    NaN where ``df <= 0`` (a domain in fewer PSUs than strata): no interval, as R's
    ``qt(p, 0)`` is NaN, rather than an absurdly wide one."""
    df = np.asarray(df, dtype=float)
    alpha = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        t = stats.t.isf(alpha, np.where(np.isfinite(df) & (df > 0), df, 1.0))
    t = np.where(np.isfinite(df), t, stats.norm.isf(alpha))
    return np.where(df > 0, t, np.nan)


def check_level(level: float) -> None:
    if not 0 < level < 1:
        raise MethodError(f"level: expected a number strictly between 0 and 1, got {level!r}")


Interval = tuple[np.ndarray, np.ndarray]


def wald(estimate: np.ndarray, se: np.ndarray, df: np.ndarray, level: float) -> Interval:
    """``estimate +- t_df * se``."""
    half = critical_value(level, df) * se
    return estimate - half, estimate + half


def _beta_limits(p: np.ndarray, n_eff: np.ndarray, level: float) -> Interval:
    alpha = 1.0 - level
    with np.errstate(invalid="ignore", divide="ignore"):
        low = stats.beta.ppf(alpha / 2, n_eff * p, n_eff * (1 - p) + 1)
        high = stats.beta.ppf(1 - alpha / 2, n_eff * p + 1, n_eff * (1 - p))
    low = np.where(p <= 0, 0.0, low)
    high = np.where(p >= 1, 1.0, high)
    return low, high


def korn_graubard(
    p: np.ndarray,
    variance: np.ndarray,
    n: np.ndarray,
    df: np.ndarray,
    level: float,
    *,
    cap: bool,
) -> Interval:
    """Korn-Graubard interval. ``cap=False`` is R's ``svyciprop(method="beta")``;
    ``cap=True`` the NCHS version (effective n at most n, and n when the variance is 0)."""
    alpha = 1.0 - level
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = p * (1 - p) / variance
        if cap:
            n_eff = np.where((variance <= 0) | ~np.isfinite(n_eff) | (n_eff > n), n, n_eff)
        ratio = stats.t.ppf(alpha / 2, np.maximum(n - 1, 1)) / stats.t.ppf(
            alpha / 2, np.where(df > 0, df, np.nan)
        )
    n_eff = n_eff * ratio**2
    low, high = _beta_limits(p, n_eff, level)
    no_df = ~(np.asarray(df, dtype=float) > 0)
    return np.where(no_df, np.nan, low), np.where(no_df, np.nan, high)


def logit(
    p: np.ndarray,
    se: np.ndarray,
    df: np.ndarray,
    level: float,
    *,
    logit_se: np.ndarray | None = None,
) -> Interval:
    """Interval for ``logit(p)``, back-transformed. Its SE is ``logit_se`` when given (the
    replicate SE of ``logit(p)``, :func:`replicate_logit_se`), else the delta method's
    ``se / (p (1 - p))``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = special.logit(p)
        scale = se / (p * (1 - p)) if logit_se is None else logit_se
        half = critical_value(level, df) * scale
        low, high = special.expit(centre - half), special.expit(centre + half)
    undefined = (p <= 0) | (p >= 1)
    return np.where(undefined, np.nan, low), np.where(undefined, np.nan, high)


def replicate_logit_se(
    p: np.ndarray,
    replicates: np.ndarray,
    variance: Callable[[np.ndarray, np.ndarray], np.ndarray],
    rscales: np.ndarray,
) -> np.ndarray:
    """SE of ``logit(p)`` from the replicate proportions ``(domains, R)``, as R's
    ``svyciprop(method="logit")`` on a replicate design: ``svyglm(y ~ 1, quasibinomial)``
    refitted in every replicate has coefficient ``logit(p_r)``, and ``variance`` (the
    design's ``svrVar``) turns those into a variance. A replicate in which the proportion is
    0 or 1 has an infinite logit: the SE is infinite and the interval (0, 1) (R's glm refit
    diverges there); a replicate without weight in the domain (NaN) is left out, as for
    every other replicate estimate (R's refit fails there)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        full = special.logit(p)
        reps = special.logit(replicates)
        infinite = np.isinf(reps[..., rscales > 0]).any(axis=-1)
        se = np.sqrt(variance(full, np.where(np.isinf(reps), 0.0, reps)))
    return np.where(infinite, np.inf, se)


def wilson(
    p: np.ndarray, variance: np.ndarray, n: np.ndarray, df: np.ndarray, level: float
) -> Interval:
    """Wilson score interval on the effective sample size ``p (1 - p) / var``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = p * (1 - p) / variance
        n_eff = np.where((variance <= 0) | ~np.isfinite(n_eff), n, n_eff)
        z = critical_value(level, df)
        denom = 1 + z**2 / n_eff
        centre = (p + z**2 / (2 * n_eff)) / denom
        half = z * np.sqrt(p * (1 - p) / n_eff + z**2 / (4 * n_eff**2)) / denom
    return centre - half, centre + half


def likelihood(
    p: float,
    variance: float,
    weights: np.ndarray,
    y: np.ndarray,
    df: float,
    level: float,
) -> tuple[float, float]:
    """R's ``svyciprop(method="likelihood")`` for one proportion.

    R fits ``svyglm(y ~ 1, family=quasibinomial)`` and profiles its deviance (prior weights
    ``w / mean(w)``, Pearson dispersion ``phi``), at the level whose normal quantile is
    ``t_df * sqrt(lambda)``, ``lambda`` being the design variance of the coefficient over
    its model-based variance (a Rao-Scott rescaling). As MASS's ``profile.glm`` and
    ``confint.profile.glm``, the profile is evaluated on a grid of up to 19 points, then
    interpolated with R's FMM cubic spline; the limits are found by linear interpolation
    of that spline, as R does. R's glm iterations are replayed (:func:`_glm_intercept`):
    the profile is centred at glm's final fit, and the model-based variance in ``lambda``
    uses the working weights of its last-but-one iteration, as R's ``naive.cov`` does.
    """
    if p <= 0 or p >= 1 or variance <= 0:
        return np.nan, np.nan  # the quasibinomial fit does not exist at p = 0 or 1
    scaled = weights / weights.mean()
    n = y.shape[0]
    # R profiles its glm fit: centre, deviance and dispersion at glm's final mu, and the
    # model-based variance at the working weights of glm's last-but-one iteration
    fitted, previous = _glm_intercept(scaled, y)
    dispersion = np.sum(scaled * (y - fitted) ** 2 / (fitted * (1 - fitted))) / (n - 1)
    lam = variance / (p * (1 - p)) * scaled.sum()
    lam *= np.sum(scaled * previous * (1 - previous)) / (scaled.sum() * fitted * (1 - fitted))
    cut = stats.t.ppf((1 - level) / 2, df) * np.sqrt(lam)
    profile_level = 1 - 2 * stats.norm.cdf(cut)
    zmax = np.sqrt(stats.f.ppf(1 - (1 - profile_level) / 4, 1, n - 1))
    step_size = zmax / 5 * np.sqrt(variance) / (p * (1 - p))
    b0 = float(special.logit(fitted))

    def deviance(beta: float) -> float:
        pi = special.expit(beta)
        return 2 * np.sum(
            scaled * (y * np.log(fitted / pi) + (1 - y) * np.log((1 - fitted) / (1 - pi)))
        )

    z_values, betas = [0.0], [b0]
    for sign in (-1, 1):
        z = 0.0
        for step in range(1, 10):
            if abs(z) >= zmax:
                break
            beta = b0 + sign * step * step_size
            z = sign * np.sqrt(max(deviance(beta) / dispersion, 0.0))
            z_values.append(z)
            betas.append(beta)
    order = np.argsort(z_values)
    x = np.asarray(betas)[order]
    grid = np.linspace(x.min(), x.max(), 3 * x.shape[0])
    curve = _fmm_spline(x, np.asarray(z_values)[order], grid)
    ordered = np.argsort(curve)
    limits = np.interp([cut, -cut], curve[ordered], grid[ordered], left=np.nan, right=np.nan)
    return float(special.expit(limits[0])), float(special.expit(limits[1]))


def _glm_intercept(weights: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """R's ``glm.fit`` for ``y ~ 1``, quasibinomial, prior ``weights`` (0/1 ``y``): the
    final fitted mean and the means of the last-but-one iteration, whose working weights R
    keeps. Same start (``(w y + 0.5) / (w + 1)``) and stopping rule (relative deviance
    change below 1e-8) as R; each iteration is one weighted sum."""

    def deviance(mu: np.ndarray) -> float:
        return float(-2 * np.sum(weights * (y * np.log(mu) + (1 - y) * np.log(1 - mu))))

    mu = (weights * y + 0.5) / (weights + 1)
    eta = special.logit(mu)
    old = deviance(mu)
    for _ in range(25):
        variance = mu * (1 - mu)
        working = weights * variance
        beta = np.sum(working * (eta + (y - mu) / variance)) / np.sum(working)
        previous, mu = mu, np.full_like(mu, special.expit(beta))
        eta = np.full_like(mu, beta)
        new = deviance(mu)
        if abs(new - old) / (abs(new) + 0.1) < 1e-8:
            break
        old = new
    return float(mu[0]), np.broadcast_to(previous, y.shape)


def _fmm_spline(x: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """R's ``spline(method="fmm")``: cubic spline whose end third derivatives match those
    of the cubics through the first and last four points (Forsythe, Malcolm, Moler)."""
    n = x.shape[0]
    b, c, d = np.zeros(n), np.zeros(n), np.zeros(n)
    d[0] = x[1] - x[0]
    c[1] = (y[1] - y[0]) / d[0]
    for i in range(1, n - 1):
        d[i] = x[i + 1] - x[i]
        b[i] = 2.0 * (d[i - 1] + d[i])
        c[i + 1] = (y[i + 1] - y[i]) / d[i]
        c[i] = c[i + 1] - c[i]
    b[0], b[n - 1] = -d[0], -d[n - 2]
    c[0] = c[n - 1] = 0.0
    if n > 3:
        c[0] = c[2] / (x[3] - x[1]) - c[1] / (x[2] - x[0])
        c[n - 1] = c[n - 2] / (x[n - 1] - x[n - 3]) - c[n - 3] / (x[n - 2] - x[n - 4])
        c[0] = c[0] * d[0] ** 2 / (x[3] - x[0])
        c[n - 1] = -c[n - 1] * d[n - 2] ** 2 / (x[n - 1] - x[n - 4])
    for i in range(1, n):
        t = d[i - 1] / b[i - 1]
        b[i] -= t * d[i - 1]
        c[i] -= t * c[i - 1]
    c[n - 1] /= b[n - 1]
    for i in range(n - 2, -1, -1):
        c[i] = (c[i] - d[i] * c[i + 1]) / b[i]
    b[n - 1] = (y[n - 1] - y[n - 2]) / d[n - 2] + d[n - 2] * (c[n - 2] + 2.0 * c[n - 1])
    for i in range(n - 1):
        b[i] = (y[i + 1] - y[i]) / d[i] - d[i] * (c[i + 1] + 2.0 * c[i])
        d[i] = (c[i + 1] - c[i]) / d[i]
        c[i] = 3.0 * c[i]
    c[n - 1] *= 3.0
    d[n - 1] = d[n - 2]
    index = np.clip(np.searchsorted(x, at, side="right") - 1, 0, n - 1)
    dx = at - x[index]
    return y[index] + dx * (b[index] + dx * (c[index] + dx * d[index]))


def check_method(method: str | None, allowed: tuple) -> None:
    if method not in allowed:
        names = ", ".join(repr(m) for m in allowed)
        raise MethodError(f"method: expected one of {names}, got {method!r}")
