"""Means, totals, ratios and proportions per domain (R ``svymean``, ``svytotal``,
``svyratio``, ``svyciprop``, ``svyby``).

Every estimator here is a smooth function of weighted domain totals ``T_d = sum w v``.
Its Taylor variance is the variance of the total of the linearised score
``u_i = sum_j dtheta/dT_j * v_ij`` (the design applies the weights); on replicate designs
the function is recomputed from each replicate's totals. Results are DataFrames with the
``by`` columns, then ``estimate, se, ci_low, ci_high, df, n, deff, cv``.

Degrees of freedom (column ``df``):

* R-matching methods (``"wald"``, and every proportion method but ``None``): the domain's
  own PSUs minus its own strata (``degf(design)`` for the whole sample, as ``svyciprop``
  on a ``subset()``); replicate designs: rank of the replicate weights minus 1 (R's degf).
* ``method=None`` (publication default): the Satterthwaite df of the domain's stratum
  contributions, capped by the domain's own PSUs minus strata, and at least 1; replicate
  designs: the smaller of the replicate df and the domain's own PSUs minus strata.
* ``"normal"``: infinite (R's ``confint()`` default).

``deff`` is R's ``deff=TRUE``: the variance over that of a simple random sample without
replacement of the domain's size from a population of its estimated size,
``N^2 s^2(u) (1/n - 1/N)`` with ``s^2`` the weighted variance (``n/(n-1)``) of the
linearised score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis import _taylor, intervals
from analysis.domains import Domains
from analysis.errors import VariableError

Function = Callable[[np.ndarray], np.ndarray]

RESULT_COLUMNS = ["estimate", "se", "ci_low", "ci_high", "df", "n", "deff", "cv"]

if TYPE_CHECKING:
    from analysis.design import SurveyDesign


@dataclass(frozen=True)
class Fit:
    """The pieces every estimator needs, per domain (discard bin removed)."""

    estimate: np.ndarray
    variance: np.ndarray
    n: np.ndarray
    design_df_of: Callable[[], np.ndarray]
    publication_df: np.ndarray
    deff: np.ndarray
    weight_sum: np.ndarray
    score: np.ndarray
    replicates: np.ndarray | None = None  # (domains, R) replicate estimates, replicate designs

    @cached_property
    def design_df(self) -> np.ndarray:
        """R's degrees of freedom per domain, computed on first use (on a replicate design
        the rank of each domain's replicate weights, which only R-matching methods need)."""
        return self.design_df_of()


def read_variable(
    design: SurveyDesign, column: str, dropna: bool, role: str
) -> tuple[np.ndarray, np.ndarray]:
    """Values and validity mask of an analysis variable; missing values fail unless dropna."""
    values = design._numeric(column, role)
    missing = np.isnan(values)
    # rows of weight zero (nonrespondents after a nonresponse adjustment, rows outside
    # a subset) carry no information: a missing value there is not an error
    counted = design._weights != 0
    if (missing & counted).any() and not dropna:
        missing_counted = missing & counted
        raise VariableError(
            f"{role}: column {column!r} has {int(missing_counted.sum())} missing values "
            f"(first at row {int(np.argmax(missing_counted))}); pass dropna=True to estimate "
            "over the rows that have one (R's na.rm=TRUE)"
        )
    valid = ~missing & counted
    return np.where(valid, values, 0.0), valid


def _own_df(design: SurveyDesign, domains: Domains, valid: np.ndarray) -> np.ndarray:
    """Each domain's own first-stage PSUs minus its own strata (cached when nothing is
    missing, the common case)."""
    if valid.all():
        key = ("own-df", domains.columns)
        if key not in design._cache:
            layout = design._layouts(domains)[0]
            units = np.bincount(layout.entry_domain, minlength=domains.bins)
            strata = np.bincount(layout.cell_d, minlength=domains.bins)
            design._cache[key] = (units - strata)[: domains.n_domain].astype(float)
        return design._cache[key]
    return _count_own_df(design, domains, valid)


def _count_own_df(design: SurveyDesign, domains: Domains, valid: np.ndarray) -> np.ndarray:
    stage = design._stages[0]
    bins = domains.bins
    present = valid & (design._weights != 0)
    if stage.element:
        units = np.bincount(domains.code, weights=present, minlength=bins)
    else:
        pairs = design._layouts(domains)[0].pairs
        assert pairs is not None  # only element stages have no (unit, domain) pairs
        codes, _, pair_domain = pairs
        hit = np.bincount(codes, weights=present, minlength=pair_domain.shape[0]) > 0
        units = np.bincount(pair_domain[hit], minlength=bins)
    row_stratum = stage.row_stratum()
    key = row_stratum * bins + domains.code
    size = stage.n_strata * bins
    if size <= min(20_000_000, 4 * key.shape[0] + 100_000):
        hit = np.bincount(key, weights=present, minlength=size) > 0
        strata = np.bincount(np.flatnonzero(hit) % bins, minlength=bins)
    else:
        strata = np.bincount(np.unique(key[present]) % bins, minlength=bins)
    return (units - strata)[: domains.n_domain].astype(float)


def fit_smooth(
    design: SurveyDesign,
    domains: Domains,
    values: np.ndarray,
    valid: np.ndarray,
    function: Function,
    gradient: Function,
) -> Fit:
    """Estimate ``function(T_d)`` per domain with its variance, df and deff."""
    bins = domains.bins
    code = domains.code
    w = design._weights
    k = values.shape[1]
    totals = np.column_stack(
        [np.bincount(code, weights=w * values[:, j], minlength=bins) for j in range(k)]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = function(totals)
        grad = np.nan_to_num(gradient(totals), nan=0.0, posinf=0.0, neginf=0.0)
    grad[domains.n_domain] = 0.0
    score = values[:, 0] * grad[code, 0]
    for j in range(1, k):
        score += values[:, j] * grad[code, j]
    score *= valid
    own = _own_df(design, domains, valid)
    scheme = design._scheme
    theta: np.ndarray | None = None
    design_df_of: Callable[[], np.ndarray]
    if scheme is not None:
        reps = scheme.domain_totals(values, code, bins, design._replicate_pairs(domains))
        with np.errstate(divide="ignore", invalid="ignore"):
            theta = function(np.moveaxis(reps, 1, -1))
        variance = scheme.variance(estimate, theta)

        # R: degf(subset(design, <domain>)), the rank of the domain's replicate weights - 1
        def design_df_of() -> np.ndarray:
            return design._replicate_domain_df(domains, valid)

        publication_df = np.minimum(float(scheme.df), own)
    else:
        # a row without a value is not in the domain's subsample (R's na.rm drops it), so
        # it does not make a stratum count for the lonely-PSU rules; zero-weight rows do
        present = valid | (w == 0)
        everything = bool(present.all())
        variance, satterthwaite = _taylor.domain_variance(
            design._stages,
            w,
            score,
            code if everything else np.where(present, code, domains.n_domain),
            bins,
            design._steps,
            design._layouts(domains) if everything else None,
            design._cache.setdefault("calibration", {}),
        )

        def design_df_of() -> np.ndarray:
            return own

        satterthwaite = satterthwaite[: domains.n_domain]
        publication_df = np.where(np.isnan(satterthwaite), own, np.minimum(satterthwaite, own))
    publication_df = np.maximum(publication_df, 1.0)
    # a domain without responses (or weight) has no estimate, so no standard error either
    variance = np.where(np.isnan(estimate[: variance.shape[0]]), np.nan, variance)
    n = np.bincount(code, weights=valid, minlength=bins)
    weight_sum = np.bincount(code, weights=w * valid, minlength=bins)
    s1 = np.bincount(code, weights=w * score, minlength=bins)
    s2 = np.bincount(code, weights=w * score**2, minlength=bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2u = (s2 - s1**2 / weight_sum) / weight_sum * n / (n - 1)
        srs = weight_sum**2 * s2u * (1 / n - 1 / weight_sum)
        deff = np.where((n > 1) & (srs > 0), variance / srs, np.nan)
    keep = slice(0, domains.n_domain)
    return Fit(
        estimate=estimate[keep],
        variance=variance[keep],
        n=n[keep].astype(np.int64),
        design_df_of=design_df_of,
        publication_df=publication_df,
        deff=deff[keep],
        weight_sum=weight_sum[keep],
        score=score,
        replicates=None if theta is None else theta[keep],
    )


def _table(domains: Domains, fit: Fit, low, high, df) -> pd.DataFrame:
    se = np.sqrt(fit.variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = se / np.abs(fit.estimate)
    table = domains.labels.copy()
    table["estimate"] = fit.estimate
    table["se"] = se
    table["ci_low"] = low
    table["ci_high"] = high
    table["df"] = df
    table["n"] = fit.n
    table["deff"] = fit.deff
    table["cv"] = cv
    return table.reset_index(drop=True)


def _interval(
    fit: Fit, method: str | None, level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if method is None:
        df = fit.publication_df
    elif method == "wald":
        df = fit.design_df
    else:
        df = np.full(fit.estimate.shape, np.inf)
    low, high = intervals.wald(fit.estimate, np.sqrt(fit.variance), df, level)
    return low, high, df


def _per_variable(
    variable: str | Sequence[str], run: Callable[[str], pd.DataFrame]
) -> pd.DataFrame:
    if isinstance(variable, str):
        return run(variable)
    parts = []
    for name in variable:
        part = run(name)
        part.insert(0, "variable", name)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _ratio_function(totals: np.ndarray) -> np.ndarray:
    return totals[..., 0] / totals[..., 1]


def _ratio_gradient(totals: np.ndarray) -> np.ndarray:
    return np.stack([1 / totals[:, 1], -totals[:, 0] / totals[:, 1] ** 2], axis=1)


def mean(
    design: SurveyDesign,
    variable: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    *,
    dropna: bool = False,
    level: float = 0.95,
    method: str | None = None,
) -> pd.DataFrame:
    """Weighted mean per domain (R ``svyby(~y, ~by, d, svymean, deff=TRUE)``).

    ``method`` chooses the interval: ``None`` (publication default, Satterthwaite t),
    ``"wald"`` (t with R's df), ``"normal"``. Missing values raise unless ``dropna``.
    """
    intervals.check_method(method, intervals.MEAN_METHODS)
    intervals.check_level(level)
    domains = design._domains(by)

    def run(name: str) -> pd.DataFrame:
        y, valid = read_variable(design, name, dropna, "mean")
        values = np.column_stack([y, valid.astype(float)])
        fit = fit_smooth(design, domains, values, valid, _ratio_function, _ratio_gradient)
        return _table(domains, fit, *_interval(fit, method, level))

    return _per_variable(variable, run)


def total(
    design: SurveyDesign,
    variable: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    *,
    dropna: bool = False,
    level: float = 0.95,
    method: str | None = None,
) -> pd.DataFrame:
    """Weighted total per domain (R ``svytotal``); intervals as :func:`mean`."""
    intervals.check_method(method, intervals.MEAN_METHODS)
    intervals.check_level(level)
    domains = design._domains(by)

    def run(name: str) -> pd.DataFrame:
        y, valid = read_variable(design, name, dropna, "total")
        fit = fit_smooth(
            design,
            domains,
            y[:, None],
            valid,
            lambda t: t[..., 0],
            lambda t: np.ones((t.shape[0], 1)),
        )
        return _table(domains, fit, *_interval(fit, method, level))

    return _per_variable(variable, run)


def ratio(
    design: SurveyDesign,
    numerator: str,
    denominator: str,
    by: str | Sequence[str] | None = None,
    *,
    dropna: bool = False,
    level: float = 0.95,
    method: str | None = None,
) -> pd.DataFrame:
    """Ratio of weighted totals ``sum w y / sum w x`` per domain (R ``svyratio``)."""
    intervals.check_method(method, intervals.MEAN_METHODS)
    intervals.check_level(level)
    domains = design._domains(by)
    y, valid_y = read_variable(design, numerator, dropna, "ratio numerator")
    x, valid_x = read_variable(design, denominator, dropna, "ratio denominator")
    valid = valid_y & valid_x
    values = np.column_stack([y * valid, x * valid])
    fit = fit_smooth(design, domains, values, valid, _ratio_function, _ratio_gradient)
    return _table(domains, fit, *_interval(fit, method, level))


def read_binary(design: SurveyDesign, variable: str, dropna: bool) -> tuple[np.ndarray, np.ndarray]:
    """A 0/1 (or boolean) variable; anything else is an error naming the bad values."""
    y, valid = read_variable(design, variable, dropna, "proportion")
    bad = valid & (y != 0) & (y != 1)
    if bad.any():
        examples = np.unique(y[bad])[:5].tolist()
        raise VariableError(
            f"proportion: column {variable!r} must hold 0/1 or True/False, got "
            f"{int(bad.sum())} other values such as {examples}"
        )
    return y, valid


def proportion(
    design: SurveyDesign,
    variable: str,
    by: str | Sequence[str] | None = None,
    *,
    method: str | None = None,
    dropna: bool = False,
    level: float = 0.95,
) -> pd.DataFrame:
    """Proportion of a 0/1 variable per domain with a confidence interval (R ``svyciprop``).

    ``method``: ``None`` (publication default: Korn-Graubard with a design-effect floor of 1
    and Satterthwaite df), ``"beta"`` (Korn-Graubard exactly as R), ``"logit"``,
    ``"xlogit"``, ``"wald"`` (R's ``"mean"``; ``"mean"`` is accepted too),
    ``"likelihood"`` or ``"wilson"``. See :mod:`analysis.intervals` for each.
    """
    intervals.check_method(method, intervals.PROPORTION_METHODS)
    intervals.check_level(level)
    domains = design._domains(by)
    y, valid = read_binary(design, variable, dropna)
    values = np.column_stack([y, valid.astype(float)])
    fit = fit_smooth(design, domains, values, valid, _ratio_function, _ratio_gradient)
    p = fit.estimate
    se = np.sqrt(fit.variance)
    n = fit.n.astype(float)
    df = fit.publication_df if method is None else fit.design_df
    if method is None:
        low, high = intervals.korn_graubard(p, fit.variance, n, df, level, cap=True)
    elif method == "beta":
        low, high = intervals.korn_graubard(p, fit.variance, n, df, level, cap=False)
    elif method in ("logit", "xlogit"):
        logit_se = None
        if method == "logit" and fit.replicates is not None and design._scheme is not None:
            # R refits svyglm(y ~ 1, quasibinomial) in every replicate: the replicate
            # variance of logit(p), not the delta method
            logit_se = intervals.replicate_logit_se(
                p, fit.replicates, design._scheme.variance, design._scheme.rscales
            )
        low, high = intervals.logit(p, se, df, level, logit_se=logit_se)
    elif method in ("wald", "mean"):
        low, high = intervals.wald(p, se, df, level)
    elif method == "wilson":
        low, high = intervals.wilson(p, fit.variance, n, df, level)
    else:
        low, high = _likelihood(design, domains, y, valid, fit, df, level)
    return _table(domains, fit, low, high, df)


def _likelihood(
    design: SurveyDesign,
    domains: Domains,
    y: np.ndarray,
    valid: np.ndarray,
    fit: Fit,
    df: np.ndarray,
    level: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Profile-likelihood limits, one domain at a time (a scalar root search each)."""
    order = np.argsort(domains.code, kind="stable")
    bounds = np.searchsorted(domains.code[order], np.arange(domains.bins + 1))
    low = np.full(domains.n_domain, np.nan)
    high = np.full(domains.n_domain, np.nan)
    w = design._weights
    for d in range(domains.n_domain):
        rows = order[bounds[d] : bounds[d + 1]]
        rows = rows[valid[rows] & (w[rows] > 0)]
        if rows.size < 2:
            continue
        low[d], high[d] = intervals.likelihood(
            fit.estimate[d], fit.variance[d], w[rows], y[rows], df[d], level
        )
    return low, high
