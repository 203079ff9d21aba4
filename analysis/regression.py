"""Design-based generalised linear models, as R's ``survey::svyglm``.

The point estimates solve the weighted (quasi-)likelihood equations
``sum_i w_i x_i (y_i - mu_i) mu'(eta_i) / V(mu_i) = 0`` by iteratively reweighted least
squares. Their covariance is the sandwich ``A^-1 V A^-1`` (Binder 1983): ``A = X' W X`` with
the IRLS working weights times the design weights, and ``V`` the design covariance of the
weighted totals of the estimating-function scores ``x_i (y_i - mu_i) mu'(eta_i) / V(mu_i)``,
which ``SurveyDesign.total_covariance`` computes by Taylor linearisation (honouring strata,
clusters, fpc and calibration). Replicate-weight designs refit the model with every
replicate's weights and combine the replicate coefficients with the design's replicate
variance formula, as ``svyglm.svyrep.design`` does.

Degrees of freedom are ``svyglm``'s ``df.residual``: the degrees of freedom of the design
restricted to the rows the model uses (first-stage PSUs minus strata among them, R's
``degf(design[-nas, ])``, and for a domain its own PSUs minus strata, as ``svyglm`` on a
``subset()`` or ``svyby``) plus 1 minus the number of coefficients; replicate designs: the
rank of the replicate weights minus 1 (of a domain's rows for a domain, as R's ``degf`` of
the subset). Intervals and p-values use Student's t with those degrees
of freedom (R's ``summary.svyglm`` does the same for p-values; note that ``confint`` on an
``svyglm`` defaults to the normal distribution).

Rows with a missing value in any variable of the formula are dropped, as R's default
``na.action = na.omit`` does; they stay in the design with a zero score, exactly as R's
``design[-nas, ]`` keeps their strata and PSUs. The count is reported in the ``dropped``
column.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, cast

import numpy as np
import pandas as pd
import patsy
from scipy import special, stats

from analysis.errors import EstimationError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["FAMILIES", "Family", "RegressionError", "regress"]

Family = Literal["gaussian", "binomial", "quasibinomial", "poisson", "quasipoisson"]
FAMILIES = ("gaussian", "binomial", "quasibinomial", "poisson", "quasipoisson")
# the model each family name fits: quasi-families have the same estimating equations and,
# under the design-based (sandwich) variance, the same standard errors (as svyglm)
_LINK = {
    "gaussian": "identity",
    "binomial": "logit",
    "quasibinomial": "logit",
    "poisson": "log",
    "quasipoisson": "log",
}
_REPLICATE_BLOCK = 32  # replicate fits solved at once; bounds memory at n x 32 doubles
_MAX_IRLS = 100
_IRLS_TOL = 1e-10


class RegressionError(EstimationError):
    """The model cannot be fitted as asked (names the field, expected and got)."""


class DesignLike(Protocol):
    """What regression needs from a ``SurveyDesign``."""

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
    def total_covariance(self, scores: NDArray[np.float64]) -> NDArray[np.float64]: ...
    def replicate_variance(
        self, theta_full: NDArray[np.float64], theta_reps: NDArray[np.float64]
    ) -> NDArray[np.float64]: ...


class _DomainCovarianceDesign(DesignLike, Protocol):
    """A Taylor design that also gives every domain's covariance in one call."""

    def domain_total_covariance(
        self, scores: NDArray[np.float64], domain: NDArray[np.intp], n_domain: int
    ) -> NDArray[np.float64]: ...


def regress(
    design: DesignLike,
    formula: str,
    family: Family = "gaussian",
    by: str | Sequence[str] | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Fit ``formula`` to the design's data; one row per coefficient (per domain with ``by``).

    ``formula`` is a patsy formula (``"y ~ x1 + x2"``, ``C(stype)``, ``I(x == "Yes")``).
    Column names with dots, as in R data (``sch.wide``), may be written bare: they are
    quoted for patsy. ``family="binomial"`` (or ``"quasibinomial"``) fits a logistic model
    to a 0/1 or boolean response (quasi-binomial: the weights need not be integers);
    ``"poisson"`` (or ``"quasipoisson"``) a log-linear model to a count (any non-negative
    response: a quasi-likelihood, so rates and non-integer values are fine). Columns: the ``by``
    columns, term, estimate, se, ci_low, ci_high, df, p_value, n (rows used), dropped (rows
    with missing values in the formula's variables), note (why a domain has no estimates:
    too few rows or terms that cannot be told apart in it; empty otherwise).
    """
    if family not in FAMILIES:
        raise RegressionError(f"family: expected one of {FAMILIES}, got {family!r}")
    if not 0 < level < 1:
        raise RegressionError(f"level: expected a number between 0 and 1, got {level!r}")
    data = design.data
    by_cols = [] if by is None else ([by] if isinstance(by, str) else list(by))
    missing = [c for c in by_cols if c not in data.columns]
    if missing:
        raise RegressionError(f"by: column {missing[0]!r} is not in the data")
    patsy_formula, variables = _prepare_formula(formula, data)
    complete = ~data[variables].isna().any(axis=1).to_numpy()
    rows = np.flatnonzero(complete)
    if rows.size == 0:
        raise RegressionError(f"formula {formula!r}: no rows without missing values")
    try:
        y_frame, x_frame = patsy.dmatrices(
            patsy_formula, data.iloc[rows], return_type="dataframe", NA_action="raise"
        )
    except patsy.PatsyError as error:
        raise RegressionError(f"formula {formula!r}: {error}") from None
    if x_frame.shape[1] == 0:
        raise RegressionError(
            f"formula {formula!r}: nothing to estimate; give a term or keep the intercept"
        )
    model = _Model(
        design=design,
        y=_response(y_frame, family, formula),
        X=x_frame.to_numpy(dtype=float),
        rows=rows,
        family=_LINK[family],
        weights=np.asarray(design.weights, dtype=float),
        replicated=bool(design.is_replicate),
        units=_first_stage_codes(design),
        level=level,
    )
    terms = ["(Intercept)" if t == "Intercept" else str(t) for t in x_frame.columns]
    whole_df = model.residual_df(rows)
    if whole_df <= 0:
        raise RegressionError(
            f"formula {formula!r}: {len(terms)} coefficients need more than "
            f"{len(terms) - 1} design degrees of freedom, the design has "
            f"{whole_df + len(terms) - 1:g}"
        )
    if not by_cols:
        table = _fit_domain(model, np.arange(rows.size), None, len(data), terms)
        if table["note"].iloc[0]:
            raise RegressionError(f"formula {formula!r}: {table['note'].iloc[0]}")
        return table
    tables = []
    groups = data[by_cols].groupby(by_cols, sort=True, dropna=True).indices
    position_of = np.full(len(data), -1, dtype=np.intp)
    position_of[rows] = np.arange(rows.size)
    subsets: dict[Hashable, NDArray[np.intp]] = {}
    for key, domain_rows in groups.items():
        subset = position_of[domain_rows]
        subsets[key] = np.sort(subset[subset >= 0])
    fast = not design.is_replicate and hasattr(design, "domain_total_covariance")
    fitted = _fit_taylor_domains(model, subsets, groups, terms) if fast else {}
    for key, domain_rows in groups.items():
        table = (
            fitted[key]
            if key in fitted
            else _fit_domain(
                model, subsets[key], np.asarray(domain_rows, np.intp), len(domain_rows), terms
            )
        )
        values = key if isinstance(key, tuple) else (key,)
        for position, (col, value) in enumerate(zip(by_cols, values, strict=True)):
            table.insert(position, col, value)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


@dataclass(frozen=True)
class _Model:
    """The model matrices on the complete rows, shared by every domain's fit."""

    design: DesignLike
    y: NDArray[np.float64]
    X: NDArray[np.float64]
    rows: NDArray[np.intp]  # the complete rows, positions in the design's data
    family: str  # the link: "identity", "logit" or "log"
    weights: NDArray[np.float64]
    replicated: bool
    units: tuple[NDArray[np.intp], NDArray[np.intp]] | None  # first-stage PSU, stratum
    level: float

    def residual_df(
        self, rows: NDArray[np.intp], domain_rows: NDArray[np.intp] | None = None
    ) -> float:
        """``svyglm``'s ``df.residual`` for a fit on ``rows``: R's ``degf`` of the design
        restricted to them (PSUs with positive weight minus their strata) + 1 - p. On a
        replicate design R's ``degf`` of the domain's subset (all its rows, ``domain_rows``):
        the rank of its replicate weights minus 1; the design's for the whole sample."""
        p = self.X.shape[1]
        if self.units is None:
            rank_df = getattr(getattr(self.design, "_scheme", None), "domain_df", None)
            if domain_rows is None or rank_df is None:
                return float(self.design.degrees_of_freedom) + 1 - p
            n = self.weights.shape[0]
            counted = np.zeros(n, dtype=bool)
            counted[domain_rows] = True
            counted &= self.weights > 0
            return float(rank_df(np.zeros(n, dtype=np.int64), 1, counted)[0]) + 1 - p
        used = rows[self.weights[rows] > 0]
        psu, stratum = self.units
        return float(np.unique(psu[used]).size - np.unique(stratum[used]).size) + 1 - p


def _first_stage_codes(design: DesignLike) -> tuple[NDArray[np.intp], NDArray[np.intp]] | None:
    """Every row's first-stage PSU and stratum codes (Taylor designs), for the degrees of
    freedom of a subset of rows; None on a replicate design (its df is the replicates')."""
    stages = getattr(design, "_stages", None)
    if design.is_replicate or not stages:
        return None
    stage = stages[0]
    return stage.unit, stage.row_stratum()


def _prepare_formula(formula: str, data: pd.DataFrame) -> tuple[str, list[str]]:
    """Quote dotted column names for patsy and list the data columns the formula uses."""
    if not isinstance(formula, str) or "~" not in formula:
        raise RegressionError(f"formula: expected 'response ~ terms', got {formula!r}")
    columns = {str(c) for c in data.columns}
    used: list[str] = []
    pieces: list[str] = []
    # split off string literals so names inside quotes are left alone
    for part in re.split(r"(\"[^\"]*\"|'[^']*')", formula):
        if part[:1] in {'"', "'"}:
            pieces.append(part)
            continue

        def quote(match: re.Match[str]) -> str:
            name = match.group(0)
            if name in columns:
                if name not in used:
                    used.append(name)
                if "." in name:
                    return f'Q("{name}")'
            return name

        pieces.append(re.sub(r"(?<![\w.])[A-Za-z_][\w.]*", quote, part))
    quoted = "".join(pieces)
    for name in re.findall(r"Q\(\s*[\"']([^\"']+)[\"']\s*\)", formula):
        if name in columns and name not in used:
            used.append(name)
    lhs = quoted.split("~", 1)[0]
    if not lhs.strip():
        raise RegressionError(f"formula: expected a response before '~', got {formula!r}")
    return quoted, used


def _fit_domain(
    model: _Model,
    subset: NDArray[np.intp],
    domain_rows: NDArray[np.intp] | None,
    eligible: int,
    terms: list[str],
) -> pd.DataFrame:
    """Fit on ``model.rows[subset]``; other rows keep zero scores in the variance."""
    rows = model.rows[subset]
    X = model.X[subset]
    y = model.y[subset]
    w = model.weights[rows]
    note = _identifiability(X, w)
    beta = cov = None
    if not note:
        try:
            beta, cov = _estimate(model, rows, X, y, w)
        except (np.linalg.LinAlgError, RegressionError) as error:
            note = _failure_note(error, model.replicated)
    df = model.residual_df(rows, domain_rows)
    if not note and df <= 0:
        note = _too_few_units(df, len(terms))
    return _coefficient_table(model, terms, beta, cov, note, rows.size, eligible, df)


def _fit_taylor_domains(
    model: _Model,
    subsets: Mapping[Hashable, NDArray[np.intp]],
    groups: Mapping[Hashable, Sized],
    terms: list[str],
) -> dict[Hashable, pd.DataFrame]:
    """Every domain of a Taylor design at once: each domain's fit and bread on its own rows,
    then one ``domain_total_covariance`` for all the meats (``p (p + 1) / 2`` passes over
    the data instead of one full covariance per domain)."""
    p = len(terms)
    n = model.weights.shape[0]
    scores = np.zeros((n, p))
    codes = np.full(n, -1, dtype=np.intp)
    fits: dict[Hashable, tuple] = {}
    for position, (key, subset) in enumerate(subsets.items()):
        rows = model.rows[subset]
        X, y, w = model.X[subset], model.y[subset], model.weights[rows]
        note = _identifiability(X, w)
        beta = bread = None
        if not note:
            try:
                beta = _irls(X, y, w[:, None], model.family)[:, 0]
                mu, dmu, var = _mean_function(X @ beta, model.family)
                bread = np.linalg.inv((X * (w * dmu**2 / var)[:, None]).T @ X)
                scores[rows] = X * ((y - mu) * dmu / var)[:, None]
                codes[rows] = position
            except (np.linalg.LinAlgError, RegressionError) as error:
                note = _failure_note(error, replicated=False)
        df = model.residual_df(rows)
        if not note and df <= 0:
            note = _too_few_units(df, p)
        fits[key] = (position, rows.size, beta, bread, note, df)
    # the caller checked hasattr(design, "domain_total_covariance")
    design = cast(_DomainCovarianceDesign, model.design)
    meats = design.domain_total_covariance(scores, codes, len(subsets))
    tables = {}
    for key, (position, used, beta, bread, note, df) in fits.items():
        cov = None if note else bread @ meats[position] @ bread
        tables[key] = _coefficient_table(model, terms, beta, cov, note, used, len(groups[key]), df)
    return tables


def _too_few_units(df: float, p: int) -> str:
    return (
        f"{p} coefficients need more than {p - 1} design degrees of freedom; the domain's "
        f"PSUs minus strata give {df + p - 1:g}"
    )


def _coefficient_table(
    model: _Model,
    terms: list[str],
    beta: NDArray[np.float64] | None,
    cov: NDArray[np.float64] | None,
    note: str,
    used: int,
    eligible: int,
    df: float,
) -> pd.DataFrame:
    """One row per term; empty figures and the note when the fit failed."""
    if note or beta is None or cov is None:
        beta, cov = np.full(len(terms), np.nan), np.full((len(terms), len(terms)), np.nan)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    quantile = stats.t.ppf(0.5 + model.level / 2, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = beta / se
    return pd.DataFrame(
        {
            "term": terms,
            "estimate": beta,
            "se": se,
            "ci_low": beta - quantile * se,
            "ci_high": beta + quantile * se,
            "df": np.nan if note else df,
            "p_value": 2 * stats.t.sf(np.abs(t), df),
            "n": used,
            "dropped": eligible - used,
            "note": note,
        }
    )


def _estimate(
    model: _Model,
    rows: NDArray[np.intp],
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Coefficients and their design-based covariance (replicate or linearisation)."""
    p = X.shape[1]
    beta = _irls(X, y, w[:, None], model.family)[:, 0]
    if model.replicated:
        fits = []
        for block in _replicate_blocks(model.design, rows):
            start = None if model.family == "identity" else beta  # identity: closed form
            fits.append(_irls(X, y, np.ascontiguousarray(block), model.family, start=start).T)
        betas = np.vstack(fits)
        return beta, np.asarray(model.design.replicate_variance(beta, betas), dtype=float)
    mu, dmu, var = _mean_function(X @ beta, model.family)
    bread = np.linalg.inv((X * (w * dmu**2 / var)[:, None]).T @ X)
    scores = np.zeros((model.weights.shape[0], p))
    scores[rows] = X * ((y - mu) * dmu / var)[:, None]
    meat = np.asarray(model.design.total_covariance(scores), dtype=float)
    return beta, bread @ meat @ bread


def _replicate_blocks(design: DesignLike, rows: NDArray[np.intp]) -> Iterator[NDArray[np.float64]]:
    """The replicate weights of ``rows``, ``_REPLICATE_BLOCK`` columns at a time."""
    blocks = getattr(design, "replicate_weight_blocks", None)
    if blocks is not None:
        return blocks(_REPLICATE_BLOCK, rows)
    reps = np.asarray(design.replicate_weights, dtype=float)[rows]
    return (reps[:, i : i + _REPLICATE_BLOCK] for i in range(0, reps.shape[1], _REPLICATE_BLOCK))


def _failure_note(error: Exception, replicated: bool) -> str:
    """Why a fit failed, in words that fit the design."""
    if isinstance(error, np.linalg.LinAlgError):
        if replicated:
            return (
                "a replicate's fit is singular (a term vanishes when its PSUs are left out); "
                "use a Taylor design for this model"
            )
        return (
            "the model's information matrix is singular: a term separates the outcome "
            "perfectly or is constant among the rows with weight; drop or merge it"
        )
    return str(error)


def _identifiability(X: NDArray[np.float64], w: NDArray[np.float64]) -> str:
    """Why the coefficients cannot be estimated from these rows ('' when they can)."""
    p = X.shape[1]
    positive = int(np.count_nonzero(w > 0))
    if positive <= p:
        return f"too few rows with positive weight ({positive}) for {p} coefficients"
    gram = (X * w[:, None]).T @ X
    scale = np.sqrt(np.diag(gram))
    if np.any(scale == 0):
        return "a term is zero on every row"
    eig = np.linalg.eigvalsh(gram / scale[:, None] / scale[None, :])
    if eig[0] < 1e-10 * eig[-1]:
        return f"the {p} terms are linearly dependent"
    return ""


def _response(y_frame: pd.DataFrame, family: str, formula: str) -> NDArray[np.float64]:
    """The response as floats; a boolean response (patsy's two columns) becomes 0/1."""
    if y_frame.shape[1] == 2 and str(y_frame.columns[1]).endswith("[True]"):
        y = y_frame.iloc[:, 1].to_numpy(dtype=float)
    elif y_frame.shape[1] == 1:
        y = y_frame.iloc[:, 0].to_numpy(dtype=float)
    else:
        raise RegressionError(
            f"formula {formula!r}: expected a numeric or true/false response, got categories "
            f'{list(y_frame.columns)}; write e.g. I(answer == "Yes")'
        )
    if _LINK[family] == "logit" and np.any((y < 0) | (y > 1)):
        raise RegressionError(
            f"formula {formula!r}: family={family!r} expects a 0/1 response, got values "
            f"from {y.min():g} to {y.max():g}"
        )
    if _LINK[family] == "log" and np.any(y < 0):
        raise RegressionError(
            f"formula {formula!r}: family={family!r} expects a count (a response of 0 or "
            f"more), got {int((y < 0).sum())} negative values such as {y[y < 0][0]:g}"
        )
    return y


def _mean_function(
    eta: NDArray[np.float64], link: str
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Mean, d mean / d eta and variance function for the canonical links."""
    if link == "identity":
        return eta, np.ones_like(eta), np.ones_like(eta)
    if link == "log":
        mu = np.exp(eta)
        return mu, mu, mu
    mu = 1.0 / (1.0 + np.exp(-eta))
    mu = np.clip(mu, 1e-15, 1 - 1e-15)
    dmu = mu * (1 - mu)
    return mu, dmu, dmu


def _irls(
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    W: NDArray[np.float64],
    link: str,
    start: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Weighted fits for every column of ``W`` (n x B) at once; returns p x B coefficients.

    The B Gram matrices come from one matrix product ``W' [x_j x_k]`` over the distinct
    cross-products, so a block of replicates costs one pass over the data per iteration.
    """
    p = X.shape[1]
    B = W.shape[1]
    upper = np.triu_indices(p)
    cross = X[:, upper[0]] * X[:, upper[1]]

    def solve(weights: NDArray[np.float64], weighted_z: NDArray[np.float64]) -> NDArray[np.float64]:
        flat = weights.T @ cross
        gram = np.empty((B, p, p))
        gram[:, upper[0], upper[1]] = flat
        gram[:, upper[1], upper[0]] = flat
        rhs = weighted_z.T @ X
        return cast("NDArray[np.float64]", np.linalg.solve(gram, rhs[..., None])[..., 0].T)

    if link == "identity":
        flat = W.T @ cross
        gram = np.empty((B, p, p))
        gram[:, upper[0], upper[1]] = flat
        gram[:, upper[1], upper[0]] = flat
        rhs = W.T @ (X * y[:, None])
        return cast("NDArray[np.float64]", np.linalg.solve(gram, rhs[..., None])[..., 0].T)
    if start is None:
        # R's starting means with unit weights: binomial (y + 0.5) / 2, poisson y + 0.1
        mu0 = (y + 0.5) / 2.0 if link == "logit" else y + 0.1
        first = np.log(mu0 / (1 - mu0)) if link == "logit" else np.log(mu0)
        eta = np.repeat(first[:, None], B, axis=1)
        beta = np.zeros((p, B))
    else:
        beta = np.repeat(start[:, None], B, axis=1)
        eta = X @ beta
    for iteration in range(_MAX_IRLS):
        # canonical link: working weight W dmu/deta; the working response times it,
        # without division: W dmu z = W dmu eta + W (y - mu)
        with np.errstate(over="ignore"):
            if link == "logit":
                mu = special.expit(eta)
                working = W * mu * (1 - mu)
            else:
                mu = np.exp(eta)
                working = W * mu
        if not np.all(np.isfinite(working)):
            break
        np.subtract(y[:, None], mu, out=mu)
        np.multiply(mu, W, out=mu)
        np.multiply(eta, working, out=eta)
        np.add(eta, mu, out=eta)
        new = solve(working, eta)
        change = np.max(np.abs(new - beta) / (np.abs(new) + 1e-8))
        beta = new
        eta = X @ beta
        if iteration > 0 and change < _IRLS_TOL:
            return beta
    model = "logistic" if link == "logit" else "log-linear (Poisson)"
    cause = "separation?" if link == "logit" else "a term that predicts zero counts exactly?"
    raise RegressionError(f"the {model} fit did not converge in {_MAX_IRLS} iterations ({cause})")
