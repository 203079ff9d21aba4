"""Quantiles per domain with their intervals (R ``svyquantile``, survey >= 4.1).

The estimate follows one of R's quantile rules (``qrule``), each a weighted version of a
Hyndman-Fan definition: ``"math"`` (= ``"hf1"``, R's default: the smallest value whose
weighted cumulative share reaches ``q``), ``"school"`` (= ``"hf2"``: the average of the two
values around ``q`` when the share hits ``q`` exactly), ``"hf3"`` (nearest even order
statistic) and ``"hf4"`` .. ``"hf9"`` (linear interpolation between order statistics at the
plotting positions of Hyndman and Fan (1996), with R's weighted positions).

Intervals (``method``):

* Woodruff (1952), R's ``interval.type="mean"`` (``"woodruff"`` here too): the CDF at the
  estimate ``F = mean(x <= q_hat)`` and its standard error come from the design;
  ``F -+ t * se_F`` is mapped back through the quantile rule;
* ``"beta"``, ``"xlogit"``, ``"asin"``: the interval for ``F`` is instead Korn-Graubard
  (Clopper-Pearson on the effective sample size), back-transformed from logit(F) or from
  arcsin(sqrt(F)), as R's ``woodruffCI``;
* ``"score"`` (Taylor designs): Francisco and Fuller (1991): the values ``theta`` where the
  design-based score test of ``F(theta) = q`` has t statistic ``-+ t``, found with R's
  ``uniroot`` (Brent) on the same bracket and tolerance, then mapped as R does;
* ``"quantile"`` (replicate designs): the quantile recomputed with every replicate's
  weights, replicate variance, ``q_hat -+ t * se`` (R's ``repCI``);
* ``None``: the publication default, Woodruff with the publication degrees of freedom,
  a CDF limit beyond 0 or 1 clipped to the smallest or largest value.

R's methods give NaN for a limit whose CDF limit lies outside ``[0, 1]``, as R does. The
standard error is ``(ci_high - ci_low) / (2 t)`` as R reports it.

The arithmetic copies R's (cumulative weights summed in extended precision, as R's
``cumsum`` and ``sum`` do, and the same comparisons), so that ties -- a cumulative share
landing exactly on ``q``, common with equal weights -- resolve as in R.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special, stats

from analysis import intervals
from analysis._zeroin import brent_roots
from analysis.domains import Domains
from analysis.errors import MethodError
from analysis.estimators import Fit, _ratio_function, _ratio_gradient, fit_smooth, read_variable

if TYPE_CHECKING:
    from analysis.design import SurveyDesign

QRULES = ("math", "school", "hf1", "hf2", "hf3", "hf4", "hf5", "hf6", "hf7", "hf8", "hf9")
QUANTILE_METHODS = (None, "woodruff", "mean", "beta", "xlogit", "asin", "score", "quantile")
_ALIASES = {"math": "hf1", "school": "hf2", "woodruff": "mean"}
_REPLICATE_BLOCK = 32


# ---- the quantile rules ---------------------------------------------------------------------
class SortedSample:
    """One domain's values in increasing order (stable: ties keep row order, as R's
    ``order``) with their positive weights, and the cumulative weights R computes."""

    def __init__(self, x: np.ndarray, w: np.ndarray) -> None:
        keep = w > 0
        self.x = x[keep]
        self.w = w[keep]
        # R's cumsum and sum accumulate in long double and round once per element
        self.cum = np.cumsum(self.w.astype(np.longdouble)).astype(float)
        self.total = math.fsum(self.w.tolist())

    @property
    def size(self) -> int:
        return int(self.x.shape[0])

    def quantile(self, p: np.ndarray, rule: str) -> np.ndarray:
        """The rule's quantile at every probability in ``p`` (NaN where ``p`` is NaN)."""
        p = np.asarray(p, dtype=float)
        out = np.full(p.shape, np.nan)
        ok = np.isfinite(p)
        if self.size == 0 or not ok.any():
            return out
        if self.size == 1:
            out[ok] = self.x[0]
            return out
        rule = _ALIASES.get(rule, rule)
        if rule in ("hf1", "hf2", "hf4"):
            out[ok] = self._order_statistic(p[ok], rule, self.x, self.cum, self.total)
        elif rule == "hf3":
            out[ok] = self._hf3(p[ok])
        else:
            out[ok] = _approx(self._positions(rule), self.x, p[ok])
        return out

    @staticmethod
    def _order_statistic(
        p: np.ndarray, rule: str, x: np.ndarray, cum: np.ndarray, total: float
    ) -> np.ndarray:
        """R's ``qs``: the last value whose cumulative weight is at most ``p * sum(w)``
        (``low``) and the next one (``up``), with the shares left over on either side."""
        n = x.shape[0]
        count = np.searchsorted(cum, p * total, side="right")
        low = np.maximum(count - 1, 0)
        up = np.minimum(low + 1, n - 1)
        w_low = p - cum[low] / total
        w_up = cum[up] / total - p
        if rule == "hf1":
            value = np.where(w_low == 0, x[low], x[up])
        elif rule == "hf2":
            value = np.where(w_low == 0, (x[low] + x[up]) / 2, x[up])
        elif rule == "hf3":
            value = np.where((w_low == 0) & ((low + 1) % 2 == 0), x[low], x[up])
        else:  # hf4: linear between the two
            with np.errstate(divide="ignore", invalid="ignore"):
                gamma = w_low / (w_up + w_low)
            value = x[low] * (1 - gamma) + x[up] * gamma
            value = np.where(count >= n, x[n - 1], value)
        # below the first cumulative share the quantile is the smallest value (R 4.1's qs
        # returns the second smallest there; see docs/analysis.md)
        return np.where(count == 0, x[0], value)

    def _hf3(self, p: np.ndarray) -> np.ndarray:
        """``hf3`` first pools the weights of tied values (R's ``rowsum``)."""
        distinct, start = np.unique(self.x, return_index=True)
        group = np.repeat(np.arange(distinct.shape[0]), np.diff(np.append(start, self.size)))
        pooled = np.bincount(group, weights=self.w)  # sequential sums in row order, as rowsum
        cum = np.cumsum(pooled.astype(np.longdouble)).astype(float)
        total = math.fsum(pooled.tolist())
        if distinct.shape[0] == 1:
            return np.full(p.shape, distinct[0])
        return self._order_statistic(p, "hf3", distinct, cum, total)

    def _positions(self, rule: str) -> np.ndarray:
        """The plotting positions ``p_k`` of R's interpolating rules (its operation order)."""
        cum, w = self.cum, self.w
        before = np.concatenate([[0.0], cum[:-1]])
        if rule == "hf5":
            return (cum - w / 2) / cum[-1]
        if rule == "hf6":
            return cum / (cum[-1] + w[-1])
        if rule == "hf7":
            return before / cum[-2]
        if rule == "hf8":
            return (before * 1 / 3 + cum * 2 / 3) / (cum[-1] + w[-1] / 3)
        return (before * 3 / 8 + cum * 5 / 8) / (cum[-1] + w[-1] / 4)  # hf9


def _approx(positions: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """R's ``approx(positions, y, p, rule=2)``: linear interpolation, constant outside."""
    n = positions.shape[0]
    i = np.clip(np.searchsorted(positions, p, side="right") - 1, 0, n - 2)
    j = i + 1
    x_i, x_j = positions[i], positions[j]
    with np.errstate(divide="ignore", invalid="ignore"):
        value = y[i] + (y[j] - y[i]) * ((p - x_i) / (x_j - x_i))
    value = np.where(p == x_j, y[j], np.where(p == x_i, y[i], value))
    return np.where(p < positions[0], y[0], np.where(p > positions[-1], y[-1], value))


# ---- the estimator ----------------------------------------------------------------------------
def quantile(
    design: SurveyDesign,
    variable: str,
    q: float | Sequence[float],
    by: str | Sequence[str] | None = None,
    *,
    dropna: bool = False,
    level: float = 0.95,
    method: str | None = None,
    qrule: str = "math",
) -> pd.DataFrame:
    """The ``q`` quantile(s) of ``variable`` per domain with an interval (R ``svyquantile``).

    ``q`` is a probability or a list of them (a ``q`` column is then added). ``qrule`` is
    one of :data:`QRULES`; ``method`` one of :data:`QUANTILE_METHODS` (see the module
    docstring). Every method but ``None`` uses R's degrees of freedom (``degf``: the
    domain's own PSUs minus strata; rank - 1 on replicate designs). ``deff`` is not
    defined for quantiles and is NaN.
    """
    if method not in QUANTILE_METHODS:
        raise MethodError(f"method: expected one of {QUANTILE_METHODS}, got {method!r}")
    if qrule not in QRULES:
        raise MethodError(f"qrule: expected one of {QRULES}, got {qrule!r}")
    probabilities = _probabilities(q)
    intervals.check_level(level)
    if method == "quantile" and not design.is_replicate:
        raise MethodError(
            "method: 'quantile' recomputes the quantile in every replicate and needs a "
            "replicate-weight design; use 'mean' (Woodruff) or 'score' on a Taylor design"
        )
    if method == "score" and design.is_replicate:
        raise MethodError(
            "method: 'score' is defined for Taylor designs (as in R); on a replicate design "
            "use 'mean' (Woodruff) or 'quantile'"
        )
    domains: Domains = design._domains(by)
    x, valid = read_variable(design, variable, dropna, "quantile")
    # rows with a value, zero weights included: R's rows of the domain's subset design
    raw = design._numeric(variable, "quantile")
    present = ~np.isnan(raw)
    samples = _samples(design, domains, x, valid)
    tables = []
    for p in probabilities:
        table = _one_quantile(
            design, domains, samples, x, valid, (raw, present), p, level, method, qrule
        )
        if not isinstance(q, (int, float)):
            table.insert(len(domains.columns), "q", p)
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]


def _probabilities(q: float | Sequence[float]) -> list[float]:
    values = [q] if isinstance(q, (int, float)) else list(q)
    if not values:
        raise MethodError("q: expected a probability or a list of them, got an empty list")
    for value in values:
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise MethodError(f"q: expected probabilities in [0, 1], got {value!r}")
    return [float(v) for v in values]


def _samples(
    design: SurveyDesign, domains: Domains, x: np.ndarray, valid: np.ndarray
) -> list[tuple[np.ndarray, SortedSample]]:
    """Each domain's rows (sorted by value) and its sorted sample."""
    w = design._weights
    rows = np.flatnonzero(valid & (w > 0) & (domains.code < domains.n_domain))
    order = rows[np.lexsort((x[rows], domains.code[rows]))]
    bounds = np.searchsorted(domains.code[order], np.arange(domains.n_domain + 1))
    out = []
    for d in range(domains.n_domain):
        chosen = order[bounds[d] : bounds[d + 1]]
        out.append((chosen, SortedSample(x[chosen], w[chosen])))
    return out


def _one_quantile(
    design: SurveyDesign,
    domains: Domains,
    samples: list[tuple[np.ndarray, SortedSample]],
    x: np.ndarray,
    valid: np.ndarray,
    values_present: tuple[np.ndarray, np.ndarray],
    p: float,
    level: float,
    method: str | None,
    qrule: str,
) -> pd.DataFrame:
    raw, present = values_present
    estimate = _rule_at(samples, np.full(len(samples), p), qrule)
    below = valid & (x <= np.append(estimate, np.inf)[domains.code])
    values = np.column_stack([below.astype(float), valid.astype(float)])
    fit = fit_smooth(design, domains, values, valid, _ratio_function, _ratio_gradient)
    df = fit.publication_df if method is None else fit.design_df
    t = intervals.critical_value(level, df)
    if method == "quantile":
        se_q = np.sqrt(_replicate_variance(design, samples, estimate, p, qrule))
        low, high = estimate - t * se_q, estimate + t * se_q
    else:
        if method == "score":
            p_low, p_high = _score_limits(design, domains, x, raw, valid, present, p, t)
        else:
            p_low, p_high = _cdf_limits(design, domains, present, fit, t, df, level, method)
        low, high = _rule_at(samples, p_low, qrule), _rule_at(samples, p_high, qrule)
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


def _rule_at(
    samples: list[tuple[np.ndarray, SortedSample]], p: np.ndarray, qrule: str
) -> np.ndarray:
    """Each domain's quantile at its own probability ``p[d]``."""
    return np.array(
        [s.quantile(p[d : d + 1], qrule)[0] for d, (_, s) in enumerate(samples)], dtype=float
    )


def _cdf_limits(
    design: SurveyDesign,
    domains: Domains,
    present: np.ndarray,
    fit: Fit,
    t: np.ndarray,
    df: np.ndarray,
    level: float,
    method: str | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The interval for the CDF at the estimate (R's ``woodruffCI``)."""
    f = fit.estimate
    se = np.sqrt(fit.variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method is None:
            return np.clip(f - t * se, 0.0, 1.0), np.clip(f + t * se, 0.0, 1.0)
        if method in ("mean", "woodruff"):
            low, high = f - t * se, f + t * se
        elif method == "xlogit":
            centre = np.log(f / (1 - f))
            half = t * se / (f * (1 - f))
            low, high = special.expit(centre - half), special.expit(centre + half)
        elif method == "asin":
            centre = np.arcsin(np.sqrt(f))
            half = t * se * (0.5 * f**-0.5 / np.sqrt(1 - f))
            low, high = np.sin(centre - half) ** 2, np.sin(centre + half) ** 2
        else:  # beta: Korn-Graubard with R's effective sample size (not capped)
            rows = _domain_rows(domains, present)
            alpha = 1 - level
            n_eff = f * (1 - f) / fit.variance
            ratio = stats.t.ppf(alpha / 2, rows - 1) / stats.t.ppf(alpha / 2, fit.design_df)
            n_eff = n_eff * ratio**2
            low = stats.beta.ppf(alpha / 2, n_eff * f, n_eff * (1 - f) + 1)
            high = stats.beta.ppf(1 - alpha / 2, n_eff * f + 1, n_eff * (1 - f))
    low = np.where(np.isnan(low) | (low < 0), np.nan, low)
    high = np.where(np.isnan(high) | (high > 1), np.nan, high)
    return low, high


def _domain_rows(domains: Domains, present: np.ndarray) -> np.ndarray:
    """Rows of each domain with a value (R's ``nrow`` of the domain's subset design)."""
    counts = np.bincount(domains.code, weights=present, minlength=domains.bins)
    return counts[: domains.n_domain]


def _replicate_variance(
    design: SurveyDesign,
    samples: list[tuple[np.ndarray, SortedSample]],
    estimate: np.ndarray,
    p: float,
    qrule: str,
) -> np.ndarray:
    """Replicate variance of each domain's quantile (R's ``repCI``)."""
    rows = np.concatenate([chosen for chosen, _ in samples]) if samples else np.zeros(0, int)
    bounds = np.cumsum([0] + [chosen.shape[0] for chosen, _ in samples])
    x = np.concatenate([s.x for _, s in samples]) if samples else np.zeros(0)
    reps = []
    for block in design.replicate_weight_blocks(_REPLICATE_BLOCK, rows):
        values = np.full((block.shape[1], len(samples)), np.nan)
        for d in range(len(samples)):
            part = slice(bounds[d], bounds[d + 1])
            for r in range(block.shape[1]):
                replicate = SortedSample(x[part], block[part, r])
                values[r, d] = replicate.quantile(np.array([p]), qrule)[0]
        reps.append(values)
    theta = np.vstack(reps)
    return np.diag(design.replicate_variance(estimate, theta)).copy()


# ---- Francisco-Fuller score interval ----------------------------------------------------------
def _score_limits(
    design: SurveyDesign,
    domains: Domains,
    x: np.ndarray,
    raw: np.ndarray,
    valid: np.ndarray,
    present: np.ndarray,
    p: float,
    t: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """R's ``ffullerCI``: the roots of the score statistic on R's bracket (the domain's
    range less 1% of its interquartile range) and tolerance, each mapped to the *unweighted*
    share of the domain's values at or below it, which is what R 4.1 passes to the rule."""
    n_dom = domains.n_domain
    code = domains.code
    rows_per_domain = _domain_rows(domains, present)
    lower = np.full(n_dom, np.nan)
    upper = np.full(n_dom, np.nan)
    domain_x: list[np.ndarray] = []
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(n_dom + 1))
    for d in range(n_dom):
        chosen = order[bounds[d] : bounds[d + 1]]
        xd = raw[chosen[present[chosen]]]
        domain_x.append(xd)
        if xd.size >= 2:
            q75, q25 = _r_quantile7(xd, [0.75, 0.25])
            iqr = q75 - q25
            lower[d] = xd.min() + iqr / 100
            upper[d] = xd.max() - iqr / 100
    tol = 1 / (100 * np.sqrt(rows_per_domain))

    def statistic(theta: np.ndarray) -> np.ndarray:
        above = valid & (x > np.append(theta, np.inf)[code])
        score = np.where(valid, above - (1 - p), 0.0)
        values = np.column_stack([score, valid.astype(float)])
        fit = fit_smooth(design, domains, values, valid, _ratio_function, _ratio_gradient)
        with np.errstate(divide="ignore", invalid="ignore"):
            return fit.estimate / np.sqrt(fit.variance)

    def shares(target: np.ndarray) -> np.ndarray:
        def shifted(theta: np.ndarray) -> np.ndarray:
            return statistic(theta) - target

        roots = brent_roots(shifted, lower, upper, tol)
        return np.array(
            [np.mean(xd <= r) if xd.size else np.nan for xd, r in zip(domain_x, roots, strict=True)]
        )

    return shares(t), shares(-t)


def _r_quantile7(x: np.ndarray, probs: Sequence[float]) -> list[float]:
    """R's ``quantile(x, probs, type=7)`` with its arithmetic."""
    s = np.sort(x)
    n = s.shape[0]
    out = []
    for prob in probs:
        index = 1 + (n - 1) * prob
        lo, hi = math.floor(index), math.ceil(index)
        value = s[lo - 1]
        if index > lo and s[hi - 1] != value:
            h = index - lo
            value = (1 - h) * value + h * s[hi - 1]
        out.append(float(value))
    return out
