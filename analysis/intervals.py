"""Confidence intervals: Wald/t, and every proportion method of R's ``svyciprop``.

Methods for means, totals and ratios (``method=``):

* ``None`` -- the publication default: ``estimate +- t * se`` with the domain's
  Satterthwaite degrees of freedom, capped by the domain's own PSUs minus strata;
* ``"wald"`` -- ``estimate +- t * se`` with R's degrees of freedom (the domain's own PSUs
  minus its strata, i.e. ``degf(design)`` for the whole sample, as ``confint(m, df=degf(d))``;
  rank - 1 for replicate designs);
* ``"normal"`` -- ``estimate +- z * se`` (R's ``confint()`` default).

Methods for proportions (``method=``), all with ``df`` degrees of freedom:

* ``"beta"`` -- Korn-Graubard as R's ``svyciprop(method="beta")``: effective sample size
  ``p (1 - p) / var`` (not capped at n), scaled by ``(t_{n-1} / t_df)^2``, Clopper-Pearson
  beta quantiles;
* ``"logit"``, ``"xlogit"`` -- the interval for ``logit(p)`` with the delta-method SE,
  back-transformed (equal for an intercept-only model, as in R);
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

import numpy as np
from scipy import optimize, special, stats

from analysis.errors import MethodError

MEAN_METHODS = (None, "wald", "normal")
PROPORTION_METHODS = (None, "beta", "logit", "xlogit", "wald", "mean", "likelihood", "wilson")


def critical_value(level: float, df: np.ndarray | float) -> np.ndarray:
    """Two-sided critical value: Student t with ``df`` (normal where df is infinite)."""
    df = np.asarray(df, dtype=float)
    alpha = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        t = stats.t.isf(alpha, np.where(np.isfinite(df), np.maximum(df, 1e-9), 1.0))
    return np.where(np.isfinite(df), t, stats.norm.isf(alpha))


def check_level(level: float) -> None:
    if not 0 < level < 1:
        raise MethodError(f"level: expected a number strictly between 0 and 1, got {level!r}")


def wald(estimate: np.ndarray, se: np.ndarray, df: np.ndarray, level: float):
    """``estimate +- t_df * se``."""
    half = critical_value(level, df) * se
    return estimate - half, estimate + half


def _beta_limits(p: np.ndarray, n_eff: np.ndarray, level: float):
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
):
    """Korn-Graubard interval. ``cap=False`` is R's ``svyciprop(method="beta")``;
    ``cap=True`` the NCHS version (effective n at most n, and n when the variance is 0)."""
    alpha = 1.0 - level
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = p * (1 - p) / variance
        if cap:
            n_eff = np.where((variance <= 0) | ~np.isfinite(n_eff) | (n_eff > n), n, n_eff)
        ratio = stats.t.ppf(alpha / 2, np.maximum(n - 1, 1)) / stats.t.ppf(
            alpha / 2, np.maximum(df, 1e-9)
        )
    n_eff = n_eff * ratio**2
    return _beta_limits(p, n_eff, level)


def logit(p: np.ndarray, se: np.ndarray, df: np.ndarray, level: float):
    """Interval for ``logit(p)`` with SE ``se / (p (1 - p))``, back-transformed."""
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = special.logit(p)
        half = critical_value(level, df) * se / (p * (1 - p))
        low, high = special.expit(centre - half), special.expit(centre + half)
    undefined = (p <= 0) | (p >= 1)
    return np.where(undefined, np.nan, low), np.where(undefined, np.nan, high)


def wilson(p: np.ndarray, variance: np.ndarray, n: np.ndarray, df: np.ndarray, level: float):
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

    R fits ``svyglm(y ~ 1, family=quasibinomial)`` and profiles it: the limits solve
    ``D(pi) / phi = t_df^2 * lambda`` where ``D`` is the deviance change with prior weights
    ``w / mean(w)``, ``phi`` the Pearson dispersion and ``lambda`` the ratio of the design
    variance of the coefficient to its model-based variance.
    """
    if p <= 0 or p >= 1 or variance <= 0:
        return np.nan, np.nan  # the quasibinomial fit does not exist at p = 0 or 1
    scaled = weights / weights.mean()
    n = scaled.sum()
    residual = np.sqrt(scaled) * (y - p) / np.sqrt(p * (1 - p))
    w = weights
    centre = np.sum(w * residual) / w.sum()
    dispersion = np.sum(w * (residual - centre) ** 2) / w.sum() * y.shape[0] / (y.shape[0] - 1)
    lam = variance / (p * (1 - p)) * n
    target = critical_value(level, df) ** 2 * lam

    def excess(pi: float) -> float:
        deviance = 2 * n * (p * np.log(p / pi) + (1 - p) * np.log((1 - p) / (1 - pi)))
        return deviance / dispersion - target

    tiny = 1e-300
    low = optimize.brentq(excess, tiny, p, xtol=1e-15, rtol=1e-15) if excess(tiny) > 0 else 0.0
    high = (
        optimize.brentq(excess, p, 1 - 1e-16, xtol=1e-15, rtol=1e-15)
        if excess(1 - 1e-16) > 0
        else 1.0
    )
    return low, high


def check_method(method: str | None, allowed: tuple) -> None:
    if method not in allowed:
        names = ", ".join(repr(m) for m in allowed)
        raise MethodError(f"method: expected one of {names}, got {method!r}")
