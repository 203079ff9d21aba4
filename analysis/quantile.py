"""Quantiles per domain with Woodruff intervals (R ``svyquantile``, survey >= 4.1).

The estimate uses R's default rule (``qrule="math"``): the smallest value whose weighted
cumulative share reaches ``q`` (the inverse of the weighted empirical CDF). The Woodruff
interval estimates the CDF at the estimate and its standard error,
``F = mean(x <= q_hat)`` and ``se_F``, maps ``F -+ t_df * se_F`` back through the inverse CDF,
and reports ``se = (ci_high - ci_low) / (2 t_df)`` as R does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis import intervals
from analysis.domains import Domains
from analysis.errors import MethodError
from analysis.estimators import _ratio_function, _ratio_gradient, fit_smooth, read_variable

QUANTILE_METHODS = (None, "woodruff")

if TYPE_CHECKING:
    from analysis.design import SurveyDesign


class _InverseCDF:
    """Weighted inverse empirical CDF of every domain at once (sorted once)."""

    def __init__(
        self, x: np.ndarray, w: np.ndarray, code: np.ndarray, rows: np.ndarray, bins: int
    ) -> None:
        order = rows[np.lexsort((x[rows], code[rows]))]
        self.sorted_x = x[order]
        sorted_code = code[order]
        cumulative = np.cumsum(w[order])
        totals = np.bincount(sorted_code, weights=w[order], minlength=bins)
        starts = np.concatenate([[0.0], np.cumsum(totals)[:-1]])
        with np.errstate(divide="ignore", invalid="ignore"):
            share = (cumulative - starts[sorted_code]) / totals[sorted_code]
        self.key = sorted_code + np.minimum(share, 1.0)
        self.first = np.searchsorted(sorted_code, np.arange(bins), side="left")
        self.last = np.searchsorted(sorted_code, np.arange(bins), side="right") - 1

    def __call__(self, p: np.ndarray) -> np.ndarray:
        domains = np.arange(p.shape[0])
        p = np.clip(p, 0.0, 1.0)
        index = np.searchsorted(self.key, domains + p, side="left")
        index = np.clip(index, self.first[domains], self.last[domains])
        empty = self.first[domains] > self.last[domains]
        values = self.sorted_x[np.clip(index, 0, max(self.sorted_x.shape[0] - 1, 0))]
        return np.where(empty | np.isnan(p), np.nan, values)


def quantile(
    design: SurveyDesign,
    variable: str,
    q: float,
    by: str | Sequence[str] | None = None,
    *,
    dropna: bool = False,
    level: float = 0.95,
    method: str | None = None,
) -> pd.DataFrame:
    """The ``q`` quantile of ``variable`` per domain with a Woodruff interval.

    ``method="woodruff"`` uses R's degrees of freedom (``degf``; the domain's own PSUs minus
    strata); ``None`` the publication df (see :mod:`analysis.estimators`). ``deff`` is
    not defined for quantiles and is NaN.
    """
    if method not in QUANTILE_METHODS:
        raise MethodError(f"method: expected one of {QUANTILE_METHODS}, got {method!r}")
    if not 0 <= q <= 1:
        raise MethodError(f"q: expected a probability in [0, 1], got {q!r}")
    intervals.check_level(level)
    domains: Domains = design._domains(by)
    x, valid = read_variable(design, variable, dropna, "quantile")
    w = design._weights
    rows = np.flatnonzero(valid & (w > 0) & (domains.code < domains.n_domain))
    inverse = _InverseCDF(x, w, domains.code, rows, domains.bins)
    n_dom = domains.n_domain
    estimate = inverse(np.full(n_dom, q))
    below = valid & (x <= np.append(estimate, np.inf)[domains.code])
    values = np.column_stack([below.astype(float), valid.astype(float)])
    fit = fit_smooth(design, domains, values, valid, _ratio_function, _ratio_gradient)
    df = fit.publication_df if method is None else fit.design_df
    t = intervals.critical_value(level, df)
    half = t * np.sqrt(fit.variance)
    low, high = inverse(fit.estimate - half), inverse(fit.estimate + half)
    se = (high - low) / (2 * t)
    table = domains.labels.copy()
    table["estimate"] = estimate
    table["se"] = se
    table["ci_low"] = low
    table["ci_high"] = high
    table["df"] = df
    table["n"] = fit.n
    table["deff"] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        table["cv"] = se / np.abs(estimate)
    return table.reset_index(drop=True)
