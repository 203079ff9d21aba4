"""Contrasts of estimates with their joint covariance (R ``svycontrast``).

Two estimates from the same sample are correlated: a domain's mean and the national mean
share the domain's responses; two domains share strata and PSUs; a calibrated design ties
everything together. The standard error of a difference is then
``sqrt(v1 + v2 - 2 cov)``, and treating the two as independent (``sqrt(v1 + v2)``) is
wrong in either direction. Estimates from separate samples (two months drawn afresh) are
independent, and there ``sqrt(v1 + v2)`` is right.

* :func:`joint_estimates` -- estimates per domain (and overall) with their full covariance
  matrix, R's ``svyby(..., covmat=TRUE)``; :meth:`Estimates.contrast` then gives any linear
  combination with its standard error, R's ``svycontrast``;
* :func:`combine` -- estimates from independent samples side by side (block-diagonal
  covariance), e.g. the same domain in two periods drawn separately;
* :func:`compare_domains` -- every domain against the larger domain that contains it
  (the whole population, or e.g. its agency): difference, standard error from the joint
  covariance, interval and p-value, for any number of domains in ``O(n)`` passes (never the
  ``domains x domains`` matrix). The release uses it for "compared with the national figure".

Only linear contrasts are offered: a caller's expression is never evaluated as code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse, stats

from analysis import _taylor, intervals
from analysis.domains import Domains
from analysis.errors import EstimationError, MethodError
from analysis.estimators import (
    Fit,
    _ratio_function,
    _ratio_gradient,
    fit_smooth,
    read_binary,
    read_variable,
)

if TYPE_CHECKING:
    from analysis.design import SurveyDesign

__all__ = [
    "CONTRAST_METHODS",
    "STATISTICS",
    "Estimates",
    "combine",
    "compare_domains",
    "independent_difference",
    "joint_estimates",
]

STATISTICS = ("mean", "proportion", "total", "ratio")
CONTRAST_METHODS = ("wald", "normal")
OVERALL = "(all)"
# joint_estimates builds an n x k matrix of influence values for Taylor designs (as R's
# svyby does); beyond this many cells ask for fewer domains or use compare_domains
MAX_INFLUENCE_CELLS = 60_000_000
# compare_domains on a calibrated design: dense images of this many cells at a time
_IMAGE_CELLS = 4_000_000


@dataclass(frozen=True)
class Estimates:
    """Estimates with their joint covariance: what R's ``svycontrast`` works on.

    ``labels`` name the estimates (a domain's ``by`` values joined with ``.``, as R's
    ``svyby`` row names, ``"<domain>:<variable>"`` for several variables, ``"(all)"`` for
    the whole sample); ``table`` is the estimators' table with a ``label`` column;
    ``covariance`` is ``k x k``. ``block`` and ``block_df`` record which sample each
    estimate comes from and that sample's degrees of freedom (R's ``degf``): one block
    for estimates of one design, several after :func:`combine`.
    """

    labels: tuple[str, ...]
    estimate: np.ndarray
    covariance: np.ndarray
    table: pd.DataFrame
    block: np.ndarray
    block_df: np.ndarray

    @property
    def se(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.covariance), 0.0, None))

    def vcov(self) -> pd.DataFrame:
        """The covariance matrix labelled (R's ``vcov``)."""
        return pd.DataFrame(self.covariance, index=list(self.labels), columns=list(self.labels))

    def contrast(
        self,
        coefficients: Mapping[str, Any] | Sequence[float] | np.ndarray,
        *,
        level: float = 0.95,
        method: str = "wald",
    ) -> pd.DataFrame:
        """Linear contrasts ``sum_j c_j theta_j`` with standard errors (R ``svycontrast``).

        ``coefficients``: ``{label: c}`` (one contrast; labels left out are 0), ``{name:
        {label: c}}`` (several), or numbers in label order (``[1, -1, 0]``, as R's
        ``c(1, -1, 0)``; a 2-D array for several). Returns ``contrast, estimate, se,
        ci_low, ci_high, df, p_value``: ``method="wald"`` uses Student's t with the
        design's degrees of freedom (Satterthwaite over independent samples after
        :func:`combine`), ``"normal"`` the normal distribution (R's ``confint`` default).
        """
        if method not in CONTRAST_METHODS:
            raise MethodError(f"method: expected one of {CONTRAST_METHODS}, got {method!r}")
        intervals.check_level(level)
        names, matrix = self._coefficient_matrix(coefficients)
        value = matrix @ self.estimate
        variance = np.einsum("ij,jk,ik->i", matrix, self.covariance, matrix)
        se = np.sqrt(np.clip(variance, 0.0, None))
        normal = method == "normal"
        df = np.full(len(names), np.inf) if normal else self._satterthwaite(matrix)
        return _interval_table(pd.DataFrame({"contrast": names}), value, se, df, level)

    def _coefficient_matrix(
        self, coefficients: Mapping[str, Any] | Sequence[float] | np.ndarray
    ) -> tuple[list[str], np.ndarray]:
        k = len(self.labels)
        position = {label: j for j, label in enumerate(self.labels)}
        if isinstance(coefficients, Mapping):
            if coefficients and all(isinstance(v, Mapping) for v in coefficients.values()):
                specs = {str(name): spec for name, spec in coefficients.items()}
            else:
                specs = {"contrast": coefficients}
            rows = []
            for spec in specs.values():
                row = np.zeros(k)
                for label, value in spec.items():
                    if str(label) not in position:
                        shown = ", ".join(self.labels[:12])
                        raise EstimationError(
                            f"contrast: no estimate labelled {label!r}; the labels are {shown}"
                        )
                    row[position[str(label)]] = _number(value, label)
                rows.append(row)
            return list(specs), np.vstack(rows)
        matrix = np.atleast_2d(np.asarray(coefficients, dtype=float))
        if matrix.ndim != 2 or matrix.shape[1] != k:
            raise EstimationError(
                f"contrast: expected {k} coefficients (one per estimate: "
                f"{', '.join(self.labels[:12])}), got shape {np.shape(coefficients)}"
            )
        if not np.all(np.isfinite(matrix)):
            raise EstimationError("contrast: coefficients must be finite numbers")
        if matrix.shape[0] == 1:
            return ["contrast"], matrix
        return [f"contrast {i + 1}" for i in range(len(matrix))], matrix

    def _satterthwaite(self, matrix: np.ndarray) -> np.ndarray:
        """Degrees of freedom of each contrast: the block's df within one sample;
        Welch-Satterthwaite over the variance contributions of independent samples."""
        blocks = np.unique(self.block)
        if blocks.size == 1:
            return np.full(matrix.shape[0], float(self.block_df[0]))
        parts = []
        for b in blocks:
            inside = self.block == b
            sub = matrix[:, inside]
            block = self.covariance[np.ix_(inside, inside)]
            parts.append(np.einsum("ij,jk,ik->i", sub, block, sub))
        part = np.column_stack(parts)
        dfs = self.block_df[blocks]
        with np.errstate(divide="ignore", invalid="ignore"):
            welch = part.sum(axis=1) ** 2 / np.sum(
                np.where(np.isfinite(dfs), part**2 / dfs, 0.0), axis=1
            )
        return np.where(np.isfinite(welch) & (welch > 0), welch, np.inf)


def _number(value: Any, label: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise EstimationError(
            f"contrast: coefficient of {label!r} must be a number, got {value!r}"
        ) from None
    if not np.isfinite(number):
        raise EstimationError(f"contrast: coefficient of {label!r} must be finite, got {value!r}")
    return number


def _interval_table(
    front: pd.DataFrame, value: np.ndarray, se: np.ndarray, df: np.ndarray, level: float
) -> pd.DataFrame:
    t = intervals.critical_value(level, df)
    out = front.reset_index(drop=True).copy()
    out["estimate"] = value
    out["se"] = se
    out["ci_low"] = value - t * se
    out["ci_high"] = value + t * se
    out["df"] = df
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.abs(value / se)
        p_value = 2 * np.where(
            np.isfinite(df),
            stats.t.sf(statistic, np.where(np.isfinite(df), df, 1.0)),
            stats.norm.sf(statistic),
        )
    out["p_value"] = np.where(se > 0, p_value, np.nan)
    return out


# ---- the statistics ---------------------------------------------------------------------------
def _fit(
    design: SurveyDesign,
    domains: Domains,
    statistic: str,
    variable: str,
    denominator: str | None,
    dropna: bool,
) -> tuple[Fit, np.ndarray]:
    """The estimator's fit (estimates, variances, the linearised scores) and the rows that
    count, for one statistic of one variable; kept in the design's cache, since a release
    compares the same domains with several others."""
    key = ("contrast-fit", statistic, variable, denominator, dropna, domains.columns)
    if key not in design._cache:
        design._cache[key] = _new_fit(design, domains, statistic, variable, denominator, dropna)
    cached: tuple[Fit, np.ndarray] = design._cache[key]
    return cached


def _new_fit(
    design: SurveyDesign,
    domains: Domains,
    statistic: str,
    variable: str,
    denominator: str | None,
    dropna: bool,
) -> tuple[Fit, np.ndarray]:
    if statistic not in STATISTICS:
        raise MethodError(f"statistic: expected one of {STATISTICS}, got {statistic!r}")
    if statistic == "ratio":
        if denominator is None:
            raise MethodError("denominator: a ratio needs the denominator column")
        y, valid_y = read_variable(design, variable, dropna, "ratio numerator")
        x, valid_x = read_variable(design, denominator, dropna, "ratio denominator")
        valid = valid_y & valid_x
        values = np.column_stack([y * valid, x * valid])
        return fit_smooth(design, domains, values, valid, _ratio_function, _ratio_gradient), valid
    if denominator is not None:
        raise MethodError(f"denominator: only a ratio has one, not a {statistic}")
    if statistic == "proportion":
        y, valid = read_binary(design, variable, dropna)
    else:
        y, valid = read_variable(design, variable, dropna, statistic)
    if statistic == "total":
        fit = fit_smooth(
            design,
            domains,
            y[:, None],
            valid,
            lambda t: t[..., 0],
            lambda t: np.ones((t.shape[0], 1)),
        )
        return fit, valid
    values = np.column_stack([y, valid.astype(float)])
    return fit_smooth(design, domains, values, valid, _ratio_function, _ratio_gradient), valid


def _labels(domains: Domains) -> list[str]:
    if not domains.columns:
        return [OVERALL]
    frame = domains.labels[list(domains.columns)].astype(str)
    return frame.agg(".".join, axis=1).tolist()


# ---- joint estimates ----------------------------------------------------------------------------
def joint_estimates(
    design: SurveyDesign,
    statistic: str,
    variable: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    *,
    denominator: str | None = None,
    overall: bool = False,
    dropna: bool = False,
) -> Estimates:
    """Estimates per domain of ``by`` (and of the whole sample with ``overall=True``) with
    their joint covariance: R's ``svyby(~y, ~by, d, svymean, covmat=TRUE)``.

    ``statistic``: ``"mean"``, ``"proportion"``, ``"total"`` or ``"ratio"`` (with
    ``denominator``). On a Taylor design the covariance is that of the domains' linearised
    scores over the whole design (R's ``svyrecvar`` of the stacked influence functions),
    which builds an ``n x k`` matrix; on a replicate design it comes from the replicate
    estimates.
    """
    variables = [variable] if isinstance(variable, str) else list(variable)
    if not variables:
        raise MethodError("variable: expected a column or a list of columns, got an empty list")
    parts: list[tuple[list[str], Domains, Fit, np.ndarray]] = []
    scopes: list[str | Sequence[str] | None] = [by] if by is not None else []
    if overall or by is None:
        scopes.append(None)
    for name in variables:
        for scope in scopes:
            domains = design._domains(scope)
            fit, valid = _fit(design, domains, statistic, name, denominator, dropna)
            labels = _labels(domains)
            if len(variables) > 1:
                labels = [f"{label}:{name}" for label in labels]
            parts.append((labels, domains, fit, valid))
    labels = [label for part in parts for label in part[0]]
    estimate = np.concatenate([part[2].estimate for part in parts])
    covariance = _joint_covariance(design, parts, estimate)
    tables = []
    for name in variables:
        for scope in scopes:
            tables.append(_estimator_table(design, statistic, name, scope, denominator, dropna))
    table = pd.concat(tables, ignore_index=True)
    table.insert(0, "label", labels)
    return Estimates(
        labels=tuple(labels),
        estimate=estimate,
        covariance=covariance,
        table=table,
        block=np.zeros(len(labels), dtype=np.int64),
        block_df=np.array([float(design.degrees_of_freedom)]),
    )


def _estimator_table(
    design: SurveyDesign,
    statistic: str,
    variable: str,
    by: str | Sequence[str] | None,
    denominator: str | None,
    dropna: bool,
) -> pd.DataFrame:
    if statistic == "ratio":
        assert denominator is not None  # checked by _fit
        return design.ratio(variable, denominator, by=by, dropna=dropna, method="wald")
    if statistic == "proportion":
        return design.proportion(variable, by=by, dropna=dropna, method="wald")
    estimator = design.mean if statistic == "mean" else design.total
    return estimator(variable, by=by, dropna=dropna, method="wald")


def _joint_covariance(
    design: SurveyDesign,
    parts: list[tuple[list[str], Domains, Fit, np.ndarray]],
    estimate: np.ndarray,
) -> np.ndarray:
    k = sum(len(part[0]) for part in parts)
    n = len(design.data)
    if design.is_replicate:
        reps = []
        for _, _, fit, _ in parts:
            if fit.replicates is None:
                raise EstimationError("joint estimates: the replicate estimates are missing")
            reps.append(fit.replicates)
        return design.replicate_variance(estimate, np.vstack(reps).T)
    if n * k > MAX_INFLUENCE_CELLS:
        raise EstimationError(
            f"joint estimates: {k} estimates on {n} rows need an {n} x {k} matrix "
            f"({n * k * 8 / 1e9:.1f} GB); ask for fewer domains, or use compare_domains "
            "to compare each domain with the one containing it"
        )
    influence = np.zeros((n, k))
    column = 0
    for labels, domains, fit, _ in parts:
        inside = domains.code < domains.n_domain
        rows = np.flatnonzero(inside)
        influence[rows, column + domains.code[rows]] = fit.score[rows]
        column += len(labels)
    return design.total_covariance(influence)


def combine(*estimates: Estimates, names: Sequence[str] | None = None) -> Estimates:
    """Estimates from independent samples side by side: the covariance is block-diagonal.

    Use it for samples drawn separately (two periods, two surveys), never for two results
    of one design (use :func:`joint_estimates`, which knows their covariance). ``names``
    prefix each part's labels (``"1405-01:TAX"``); without them labels must not repeat.
    """
    if len(estimates) < 2:
        raise EstimationError("combine: expected two or more sets of estimates")
    if names is not None and len(names) != len(estimates):
        raise EstimationError(f"combine: expected {len(estimates)} names, got {len(names)}")
    labels: list[str] = []
    blocks, block_df, tables = [], [], []
    offset = 0
    for i, part in enumerate(estimates):
        prefix = "" if names is None else f"{names[i]}:"
        labels.extend(prefix + label for label in part.labels)
        blocks.append(part.block + offset)
        block_df.append(part.block_df)
        offset += part.block_df.shape[0]
        tables.append(part.table.assign(label=[prefix + label for label in part.labels]))
    if len(set(labels)) != len(labels):
        raise EstimationError("combine: labels repeat across the parts; pass names=")
    size = sum(len(part.labels) for part in estimates)
    covariance = np.zeros((size, size))
    start = 0
    for part in estimates:
        stop = start + len(part.labels)
        covariance[start:stop, start:stop] = part.covariance
        start = stop
    return Estimates(
        labels=tuple(labels),
        estimate=np.concatenate([part.estimate for part in estimates]),
        covariance=covariance,
        table=pd.concat(tables, ignore_index=True),
        block=np.concatenate(blocks),
        block_df=np.concatenate(block_df),
    )


def independent_difference(
    estimate1: np.ndarray,
    se1: np.ndarray,
    df1: np.ndarray,
    estimate0: np.ndarray,
    se0: np.ndarray,
    df0: np.ndarray,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``estimate1 - estimate0`` for estimates from independent samples, element-wise:
    ``se = sqrt(se1^2 + se0^2)``, Welch-Satterthwaite degrees of freedom (normal where
    both are infinite), t interval. Returns ``(difference, se, df, ci_low, ci_high)``."""
    v1, v0 = np.asarray(se1, float) ** 2, np.asarray(se0, float) ** 2
    df1, df0 = np.asarray(df1, float), np.asarray(df0, float)
    difference = np.asarray(estimate1, float) - np.asarray(estimate0, float)
    se = np.sqrt(v1 + v0)
    with np.errstate(divide="ignore", invalid="ignore"):
        welch = (v1 + v0) ** 2 / (
            np.where(np.isfinite(df1), v1**2 / df1, 0.0)
            + np.where(np.isfinite(df0), v0**2 / df0, 0.0)
        )
    df = np.where(np.isfinite(welch) & (welch > 0), np.maximum(welch, 1.0), np.inf)
    t = intervals.critical_value(level, df)
    return difference, se, df, difference - t * se, difference + t * se


# ---- every domain against the one containing it -----------------------------------------------
def compare_domains(
    design: SurveyDesign,
    statistic: str,
    variable: str,
    by: str | Sequence[str],
    *,
    within: str | Sequence[str] | None = None,
    denominator: str | None = None,
    dropna: bool = False,
    level: float = 0.95,
    method: str | None = None,
) -> pd.DataFrame:
    """Each domain of ``by`` against the domain of ``within`` that contains it (``None``:
    the whole population), with the standard error of the difference from their joint
    covariance.

    ``within`` must be some of the ``by`` columns (``by=["agency", "province"],
    within="agency"``: every agency x province cell against its agency). Returns the
    ``by`` columns, ``estimate`` (the domain), ``reference`` (the containing domain),
    ``difference``, ``se``, ``ci_low``, ``ci_high``, ``df``, ``p_value``.

    The variance of a difference is the design variance of the difference of the two
    linearised scores, computed with the domain engine for all domains of one round at once
    (a round takes one domain from every containing domain): as many passes over the data
    as the largest number of domains in one containing domain. On a Taylor design the
    containing domain is a subsample, as R's ``svycontrast`` on ``subset(design, ...)``;
    on a replicate design the difference is recomputed in every replicate.

    ``method``: ``None`` (publication: Student's t with the smaller of the two estimates'
    publication degrees of freedom), ``"wald"`` (t with the containing domain's design
    degrees of freedom, R's ``degf`` of the subset), ``"normal"``.

    On a calibrated design (where every pass of the domain engine carries the
    calibration's backfitting) the covariance of each domain with its containing domain
    comes instead from the containing domain's calibrated scores' image under the design's
    quadratic form, dotted with the domain's calibrated scores: a few passes in all.
    """
    if method not in (None, "wald", "normal"):
        raise MethodError(f"method: expected one of (None, 'wald', 'normal'), got {method!r}")
    intervals.check_level(level)
    by_columns = [by] if isinstance(by, str) else list(by)
    within_columns = [within] if isinstance(within, str) else list(within or [])
    if not by_columns:
        raise MethodError("by: expected the columns of the domains to compare")
    extra = [c for c in within_columns if c not in by_columns]
    if extra:
        raise MethodError(
            f"within: every column must also be a by column (a domain lies inside one "
            f"containing domain); {extra} is not in by={by_columns}"
        )
    if len(within_columns) == len(by_columns):
        raise MethodError("within: must be fewer columns than by (a domain against itself)")
    children = design._domains(by_columns)
    parents = design._domains(within_columns or None)
    child_fit, valid = _fit(design, children, statistic, variable, denominator, dropna)
    parent_fit, _ = _fit(design, parents, statistic, variable, denominator, dropna)
    parent_of = _parent_of(children, parents, within_columns)
    difference = child_fit.estimate - parent_fit.estimate[parent_of]
    if design.is_replicate:
        variance = _replicate_difference(design, child_fit, parent_fit, parent_of)
    elif design._steps:
        variance = _calibrated_difference(
            design, children, parents, child_fit, parent_fit, parent_of
        )
    else:
        variance = _taylor_difference(
            design, children, parents, child_fit, parent_fit, parent_of, valid
        )
    if method is None:
        df = np.minimum(child_fit.publication_df, parent_fit.publication_df[parent_of])
    elif method == "wald":
        df = parent_fit.design_df[parent_of]
    else:
        df = np.full(children.n_domain, np.inf)
    variance = np.where(np.isnan(difference), np.nan, variance)
    out = _interval_table(children.labels, difference, np.sqrt(variance), df, level)
    out = out.rename(columns={"estimate": "difference"})
    out.insert(len(by_columns), "estimate", child_fit.estimate)
    out.insert(len(by_columns) + 1, "reference", parent_fit.estimate[parent_of])
    return out


def _parent_of(children: Domains, parents: Domains, within: list[str]) -> np.ndarray:
    """The containing domain of every domain (positions in ``parents``)."""
    if not within:
        return np.zeros(children.n_domain, dtype=np.int64)
    keys = parents.labels[within].reset_index(drop=True).assign(_parent=np.arange(parents.n_domain))
    merged = children.labels[within].reset_index(drop=True).merge(keys, on=within, how="left")
    return merged["_parent"].to_numpy(dtype=np.int64)


def _replicate_difference(
    design: SurveyDesign, child: Fit, parent: Fit, parent_of: np.ndarray
) -> np.ndarray:
    if child.replicates is None or parent.replicates is None:
        raise EstimationError("compare_domains: the replicate estimates are missing")
    scheme = design._scheme
    assert scheme is not None  # a replicate design
    reps = child.replicates - parent.replicates[parent_of]
    full = child.estimate - parent.estimate[parent_of]
    return scheme.variance(full, reps)


def _taylor_difference(
    design: SurveyDesign,
    children: Domains,
    parents: Domains,
    child: Fit,
    parent: Fit,
    parent_of: np.ndarray,
    valid: np.ndarray,
) -> np.ndarray:
    """Variance of ``T(u_child) - T(u_parent)`` for every domain, one round of domains (at
    most one per containing domain) per pass of the domain engine."""
    w = design._weights
    # rank of each domain among the domains of its containing domain
    order = np.argsort(parent_of, kind="stable")
    rank = np.empty(children.n_domain, dtype=np.int64)
    starts = np.searchsorted(parent_of[order], np.arange(parents.n_domain))
    rank[order] = np.arange(children.n_domain) - starts[parent_of[order]]
    rounds = int(rank.max()) + 1 if children.n_domain else 0
    child_code = np.append(np.arange(children.n_domain), -1)[children.code]  # -1: no domain
    row_rank = np.where(child_code >= 0, rank[np.maximum(child_code, 0)], -1)
    # a row without a value is outside the containing domain's subsample (R's na.rm)
    present = valid | (w == 0)
    parent_code = np.where(present, parents.code, parents.n_domain)
    everything = bool(present.all())
    layouts = design._layouts(parents) if everything else None
    cache = design._cache.setdefault("calibration", {})
    has_round = np.zeros((rounds, parents.n_domain + 1), dtype=bool)
    has_round[rank, parent_of] = True
    variance = np.full(children.n_domain, np.nan)
    for r in range(rounds):
        score = np.where(row_rank == r, child.score, 0.0) - parent.score
        score = np.where(has_round[r][parent_code], score, 0.0) * present
        v, _ = _taylor.domain_variance(
            design._stages,
            w,
            score,
            parent_code,
            parents.n_domain + 1,
            design._steps,
            layouts,
            cache,
        )
        chosen = np.flatnonzero(rank == r)
        variance[chosen] = v[parent_of[chosen]]
    return variance


def _calibrated_difference(
    design: SurveyDesign,
    children: Domains,
    parents: Domains,
    child: Fit,
    parent: Fit,
    parent_of: np.ndarray,
) -> np.ndarray:
    """``Var(T(u_d)) + Var(T(b_P)) - 2 Cov(T(u_d), T(b_P))`` for every domain ``d`` and its
    containing domain ``P``, on a calibrated Taylor design (whose domain variances treat a
    domain as part of the whole design, as R's subset of a calibrated design does).

    ``Cov(T(u_d), T(b_P)) = (R W u_d)' K (R W b_P)``: ``R`` the calibration residuals, ``K``
    the design's quadratic form (``total_covariance``'s), so the image ``K R W b_P`` of each
    containing domain serves all its domains: ``sum_{i in d} w_i u_i k_i`` minus the
    auxiliaries' part ``(X' k) . beta_d``, ``beta_d`` the domain's calibration coefficients
    (one sparse pass for all domains). Containing domains are taken a block at a time so
    that the dense images stay within ``_IMAGE_CELLS``."""
    w = design._weights
    n = w.shape[0]
    steps = design._steps
    row_x = sparse.hstack([step.row_x for step in steps], format="csr")
    child_code = np.where(children.code < children.n_domain, children.code, children.n_domain)
    child_values = w * child.score
    x = sparse.csr_matrix((child_values, (np.arange(n), child_code)), shape=(n, children.bins))
    child_beta = np.vstack(_taylor._chain_coefficients(steps, x))[:, : children.n_domain]
    cross = np.zeros(children.n_domain)
    block = max(1, _IMAGE_CELLS // max(n, 1))
    for start in range(0, parents.n_domain, block):
        stop = min(parents.n_domain, start + block)
        image, auxiliary = _parent_image(design, parents, parent, row_x, start, stop)
        # the domains of these containing domains: their rows against their parent's image
        chosen = np.flatnonzero((parent_of >= start) & (parent_of < stop))
        member = np.flatnonzero(np.isin(child_code, chosen))
        column = parent_of[child_code[member]] - start
        cross += np.bincount(
            child_code[member],
            weights=child_values[member] * image[member, column],
            minlength=children.n_domain,
        )[: children.n_domain]
        cross[chosen] -= np.einsum(
            "pd,pd->d", child_beta[:, chosen], auxiliary[:, parent_of[chosen] - start]
        )
    variance = child.variance + parent.variance[parent_of] - 2 * cross
    return np.maximum(variance, 0.0)


def _parent_image(
    design: SurveyDesign,
    parents: Domains,
    parent: Fit,
    row_x: sparse.csr_matrix,
    start: int,
    stop: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``K R W b_P`` for the containing domains ``start .. stop - 1`` (``n x block``) and its
    auxiliaries' part ``X' K R W b_P``; kept in the design's cache when it fits in one block
    (a release compares three levels with the agencies and two with the nation)."""
    key = ("contrast-image", id(parent), parents.columns, start, stop)
    whole = start == 0 and stop == parents.n_domain
    if whole and key in design._cache:
        cached: tuple[np.ndarray, np.ndarray] = design._cache[key][1:]
        return cached
    w = design._weights
    n = w.shape[0]
    code = np.where(parents.code < parents.n_domain, parents.code, -1)
    rows = np.flatnonzero((code >= start) & (code < stop))
    b = sparse.csr_matrix(
        ((w * parent.score)[rows], (rows, code[rows] - start)), shape=(n, stop - start)
    )
    beta = np.vstack(_taylor._chain_coefficients(design._steps, b))
    image = _quadratic_image(design, b.toarray() - np.asarray(row_x @ beta))
    auxiliary = np.asarray(row_x.T @ image)
    if whole:  # the fit is kept too, so that its id is not reused while the entry lives
        design._cache[key] = (parent, image, auxiliary)
    return image, auxiliary


def _quadratic_image(design: SurveyDesign, residual: np.ndarray) -> np.ndarray:
    """``K r`` for each column ``r``: the vector whose dot product with any calibrated
    weighted score ``s`` is the design covariance of the totals of ``s`` and ``r``
    (``total_covariance``'s stage formula, including lonely PSUs centred on the grand mean,
    which makes every unit's image depend on the stage's total)."""
    image = np.zeros_like(residual)
    for stage in design._stages:
        totals = np.asarray(stage.unit_sums(residual))
        sums = np.zeros((stage.n_strata, residual.shape[1]))
        for j in range(residual.shape[1]):
            sums[:, j] = np.bincount(stage.stratum, weights=totals[:, j], minlength=stage.n_strata)
        centre = sums / np.maximum(stage.units_per_stratum, 1)[:, None]
        if stage.adjust.any():
            centre[stage.adjust] = totals.sum(axis=0) / stage.n_unit
        unit_image = stage.scale[stage.stratum][:, None] * (totals - centre[stage.stratum])
        if stage.adjust.any():
            lonely = stage.adjust[stage.stratum]
            unit_image = unit_image - unit_image[lonely].sum(axis=0) / stage.n_unit
        image += unit_image[stage.unit] * stage.average_factor
    return image
