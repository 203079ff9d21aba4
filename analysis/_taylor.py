"""Taylor-linearisation variance engine (R ``svyrecvar``), vectorised with ``bincount``.

Two entry points share one set of formulas:

* :func:`total_covariance` -- the ``k x k`` covariance of the weighted totals
  ``sum_i w_i * scores[i, :]`` for a dense ``(n, k)`` score matrix;
* :func:`domain_variance` -- the variance of ``sum_{i in d} w_i u_i`` for every domain
  ``d`` at once, where each row belongs to one domain. The scores form an ``n x D`` matrix
  with one non-zero per row, which is never built: unit totals are summed per
  ``(domain, unit)`` pair and centred per ``(domain, stratum)`` pair with ``np.bincount``.

For each stage the contribution is ``sum_h scale_h * sum_{u in h} (t_u - mean_h)^2`` where
``t_u`` are unit totals (zero for units without rows in the domain, so domains keep the
PSUs of their strata) and ``scale_h = f_h n_h / (n_h - 1)`` times the sampling fractions of
earlier stages (see :mod:`analysis._stages`). The lonely-PSU rules "average" and "adjust"
count, per domain, the strata the domain has rows in (R's ``svyby`` on a subsample).

Weighting adjustments enter as :class:`CalibrationStep` records: the scores are replaced by
their residuals from the step's weighted regression (``z - X beta``), as R does for
``postStratify``, ``rake`` and ``calibrate``. For domains the residuals are expanded
algebraically so the dense ``n x D`` residual matrix is never formed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from scipy import sparse

from analysis._stages import Stage

# Largest (strata x domains) table handled in one dense block.
_DENSE_CELLS = 20_000_000


def _as_2d(x: np.ndarray | sparse.spmatrix) -> np.ndarray | sparse.csr_matrix:
    if sparse.issparse(x):
        return sparse.csr_matrix(x)
    return x if x.ndim == 2 else x[:, None]


def _dense(m: np.ndarray | sparse.spmatrix) -> np.ndarray:
    return cast("sparse.spmatrix", m).toarray() if sparse.issparse(m) else np.asarray(m)


# An auxiliary whose part outside the span of the others has an equilibrated squared norm
# below this (relative to the largest eigenvalue) is collinear with them. Exact collinearity
# (every level of two factors) leaves ~1e-15 of rounding in the cross products, growing
# with n; R's ``qr`` (tolerance 1e-7 on norms, i.e. 1e-14 on squares) works on the data,
# which a cross-product matrix cannot resolve that finely.
COLLINEAR = 1e-10


def regression_inverse(gram: np.ndarray) -> np.ndarray:
    """Generalised inverse of cross-product matrices ``X'QX`` (``p x p``, or stacked
    ``(..., p, p)``), rank-revealing: ``M X'Q z`` gives coefficients whose fitted values are
    the projection of ``z`` on the span of ``X``, exactly as with the collinear columns left
    out.

    The matrix is equilibrated first (columns such as an income total next to indicators
    would otherwise cost ~8 digits), then eigen-directions below :data:`COLLINEAR` times the
    largest are dropped. ``np.linalg.pinv``'s default cutoff (1e-15) kept the null
    direction of every-level-of-two-factors designs, whose rounding (about -6e-15) then
    dominated the calibration residuals (issue 19). A diagonal matrix (indicators of one
    factor: post-stratification cells, weighting classes) is inverted directly.
    """
    gram = np.asarray(gram, dtype=float)
    diagonal = np.diagonal(gram, axis1=-2, axis2=-1)
    positive = diagonal > 0
    scale = np.where(positive, 1.0 / np.sqrt(np.where(positive, diagonal, 1.0)), 0.0)
    outer = scale[..., :, None] * scale[..., None, :]
    if gram.ndim == 2 and not np.any(gram - np.diag(diagonal)):
        return np.diag(np.where(positive, scale * scale, 0.0))
    values, vectors = np.linalg.eigh(gram * outer)
    keep = values > COLLINEAR * np.max(values, axis=-1, keepdims=True)
    inverse_values = np.where(keep, 1.0 / np.where(keep, values, 1.0), 0.0)
    scaled = (vectors * inverse_values[..., None, :]) @ np.swapaxes(vectors, -1, -2)
    return scaled * outer


class CalibrationStep:
    """A weighting step as the variance sees it: a linear correction of the weighted scores.

    Working on weighted scores ``x = w * z`` (``n x k``, dense or sparse), a step replaces
    ``x`` by ``x - row_x @ coefficients(x)``: the calibration residuals R uses in
    ``svyrecvar``. Subclasses give ``row_x`` (``n x p``) and the linear map
    ``coefficients``.
    """

    row_x: sparse.csr_matrix

    def coefficients(self, x: np.ndarray | sparse.csr_matrix) -> np.ndarray:
        raise NotImplementedError


class GregStep(CalibrationStep):
    """Residuals of the ``q``-weighted regression on ``x`` (post-stratification, linear
    calibration, weighting-class nonresponse), as R's ``calibrate``/``postStratify``.

    ``weights_after`` are the weights the step produced. When the step calibrated to totals
    *estimated* from the same sample (nonresponse within classes), ``estimated_by`` holds
    the weights that estimated them, so that part of the variance is kept.
    """

    def __init__(
        self,
        x: sparse.spmatrix | np.ndarray,
        q: np.ndarray,
        weights_after: np.ndarray,
        estimated_by: np.ndarray | None = None,
    ) -> None:
        x = sparse.csr_matrix(x, dtype=float)
        gram = (x.T @ sparse.csr_matrix(x.multiply(q[:, None]))).toarray()
        self._pinv = regression_inverse(gram)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(weights_after != 0, q / weights_after, 0.0)
        self._xt_ratio = sparse.csr_matrix(x.multiply(ratio[:, None])).T.tocsr()
        multiplier = weights_after if estimated_by is None else weights_after - estimated_by
        self.row_x = sparse.csr_matrix(x.multiply(multiplier[:, None]))

    @classmethod
    def fit(
        cls,
        x: sparse.spmatrix | np.ndarray,
        q: np.ndarray,
        weights_after: np.ndarray,
        estimated_by: np.ndarray | None = None,
    ) -> GregStep:
        return cls(x, q, weights_after, estimated_by)

    def coefficients(self, x: np.ndarray | sparse.csr_matrix) -> np.ndarray:
        return self._pinv @ _dense(self._xt_ratio @ _as_2d(x))


class BackfitStep(CalibrationStep):
    """R's variance for ``rake()``: ten sweeps of backfitting, each subtracting from ``x``
    ``psw_m * ave(x / psw_m)`` within the cells of margin ``m``, where ``psw_m`` are the
    weights right after margin ``m`` was post-stratified in the last raking sweep.

    The sweeps act on small ``cells x k`` coefficient tables, never on ``n x k`` arrays.
    """

    sweeps = 10

    def __init__(self, margins: list[tuple[np.ndarray, int, np.ndarray]]) -> None:
        self._margins = []
        self._codes: list[tuple[np.ndarray, int, np.ndarray]] = []
        blocks = []
        for codes, n_cells, psw in margins:
            member = sparse.csr_matrix(
                (np.ones(codes.shape[0]), (np.arange(codes.shape[0]), codes)),
                shape=(codes.shape[0], n_cells),
            )
            counts = np.bincount(codes, minlength=n_cells).astype(float)
            with np.errstate(divide="ignore"):
                inverse = np.where(psw != 0, 1.0 / psw, 0.0)
            mean_of = sparse.csr_matrix(member.multiply(inverse[:, None])).T.tocsr()
            mean_of = sparse.diags(1.0 / counts) @ mean_of
            self._margins.append((member, psw, mean_of))
            self._codes.append((codes, n_cells, inverse / counts[codes]))
            blocks.append(sparse.csr_matrix(member.multiply(psw[:, None])))
        self.row_x = sparse.hstack(blocks, format="csr")
        self._cross = [
            [_dense(mean_of_m @ block) for block in blocks] for _, _, mean_of_m in self._margins
        ]

    def _cell_means(self, x: np.ndarray | sparse.csr_matrix) -> list[np.ndarray]:
        if not sparse.issparse(x):
            return [_dense(mean_of @ x) for _, _, mean_of in self._margins]
        # sparse scores (one domain per row): a bincount over (cell, column) keys
        csr = cast("sparse.csr_matrix", x)
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
        means = []
        for codes, n_cells, coef in self._codes:
            key = codes[rows] * csr.shape[1] + csr.indices
            sums = np.bincount(key, weights=coef[rows] * csr.data, minlength=n_cells * csr.shape[1])
            means.append(sums.reshape(n_cells, csr.shape[1]))
        return means

    def coefficients(self, x: np.ndarray | sparse.csr_matrix) -> np.ndarray:
        x = _as_2d(x)
        start = self._cell_means(x)
        coef = [np.zeros_like(a) for a in start]
        for _ in range(self.sweeps):
            for m in range(len(coef)):
                current = start[m] - sum(self._cross[m][j] @ coef[j] for j in range(len(coef)))
                coef[m] = coef[m] + current
        return np.vstack(coef)


def _chain_coefficients(
    steps: tuple[CalibrationStep, ...], x: np.ndarray | sparse.csr_matrix
) -> list[np.ndarray]:
    """Coefficients of each step, applied in sequence to the previous step's residuals."""
    betas: list[np.ndarray] = []
    for j, step in enumerate(steps):
        right = step.coefficients(x)
        for lower in range(j):
            right = right - step.coefficients(steps[lower].row_x) @ betas[lower]
        betas.append(right)
    return betas


def total_covariance(
    stages: list[Stage],
    weights: np.ndarray,
    scores: np.ndarray,
    steps: tuple[CalibrationStep, ...] = (),
) -> np.ndarray:
    """Covariance of ``sum_i weights_i * scores[i, :]`` (``k x k``)."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 1:
        scores = scores[:, None]
    values = weights[:, None] * scores
    for step in steps:
        values = values - np.asarray(step.row_x @ step.coefficients(values))
    k = values.shape[1]
    cov = np.zeros((k, k))
    for stage in stages:
        totals = np.asarray(stage.unit_sums(values))
        sums = np.zeros((stage.n_strata, k))
        for j in range(k):
            sums[:, j] = np.bincount(stage.stratum, weights=totals[:, j], minlength=stage.n_strata)
        centre = sums / np.maximum(stage.units_per_stratum, 1)[:, None]
        if stage.adjust.any():
            centre[stage.adjust] = totals.sum(axis=0) / stage.n_unit
        centred = totals - centre[stage.stratum]
        scaled = centred * stage.scale[stage.stratum][:, None]
        cov += (scaled.T @ centred) * stage.average_factor
    return cov


@dataclass(frozen=True, eq=False)
class StageLayout:
    """Everything about one stage and one set of domains that does not depend on the
    values: the (unit, domain) entries, their (stratum, domain) cells and cell sizes.
    Built once per design and ``by`` (see ``SurveyDesign._layouts``)."""

    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # None on element stages
    entry_unit: np.ndarray
    entry_domain: np.ndarray
    codes: np.ndarray
    n_cells: int
    cell_h: np.ndarray
    cell_d: np.ndarray
    count: np.ndarray
    n_h: np.ndarray
    scale: np.ndarray
    adjust: np.ndarray


def stage_layout(stage: Stage, domain: np.ndarray, n_domain: int) -> StageLayout:
    """Factorise a stage's (unit, domain) entries and (stratum, domain) cells."""
    if stage.element:
        pairs = None
        entry_unit, entry_domain = stage.unit, domain
        h = stage.stratum
    else:
        key = stage.unit * n_domain + domain
        uniques, pair_codes = np.unique(key, return_inverse=True)
        pairs = (pair_codes, uniques // n_domain, uniques % n_domain)
        entry_unit, entry_domain = pairs[1], pairs[2]
        h = stage.stratum[entry_unit]
    codes, cells, n_cells = _group(h * n_domain + entry_domain, stage.n_strata * n_domain)
    cell_h, cell_d = cells // n_domain, cells % n_domain
    return StageLayout(
        pairs=pairs,
        entry_unit=entry_unit,
        entry_domain=entry_domain,
        codes=codes,
        n_cells=n_cells,
        cell_h=cell_h,
        cell_d=cell_d,
        count=np.bincount(codes, minlength=n_cells).astype(float),
        n_h=stage.units_per_stratum[cell_h].astype(float),
        scale=stage.scale[cell_h],
        adjust=stage.adjust[cell_h],
    )


def _entry_values(stage: Stage, layout: StageLayout, values: np.ndarray) -> np.ndarray:
    if layout.pairs is None:
        return values
    codes = layout.pairs[0]
    return np.bincount(codes, weights=values, minlength=layout.entry_unit.shape[0])


def _group(key: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Compact group codes for ``key``: only occupied cells get a code (a stratum usually
    holds one or a few domains). Counting sort when the key space is small, else sort."""
    if size <= _DENSE_CELLS:
        occupied = np.bincount(key, minlength=size) > 0
        cells = np.flatnonzero(occupied)
        remap = np.cumsum(occupied) - 1
        return remap[key], cells, cells.shape[0]
    uniques, codes = np.unique(key, return_inverse=True)
    return codes, uniques, uniques.shape[0]


def _stage_domain_variance(
    stage: Stage, layout: StageLayout, value: np.ndarray, n_domain: int, subset: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Uncalibrated per-domain variance of one stage, plus per-cell contributions.

    ``subset``: each domain is a subsample (R's ``svyby`` and ``subset()`` drop the other
    rows of an uncalibrated design), so at the first stage the lonely-PSU rules see only
    the strata the domain has rows in: "average" multiplies by the domain's strata over its
    strata with variance (R: 3/2 for a domain with one lonely stratum of three, 1 for a
    domain without one), "adjust" centres on the domain's total over the PSUs of those
    strata (``sum(x) / sum(n_h)``, R >= 4.2). Otherwise (calibrated designs, whose subsets
    keep every row in R, and later stages) the whole stage's strata count.
    """
    sums = np.bincount(layout.codes, weights=value, minlength=layout.n_cells)
    centre = sums / np.maximum(layout.n_h, 1)
    any_adjust = bool(stage.adjust.any())
    per_domain = subset and stage.number == 1
    if any_adjust:
        domain_total = np.bincount(layout.cell_d, weights=sums, minlength=n_domain)
        if per_domain:  # every cell is a stratum the domain has rows in
            psus = np.bincount(layout.cell_d, weights=layout.n_h, minlength=n_domain)
            grand = domain_total / np.maximum(psus, 1)
        else:
            grand = domain_total / stage.n_unit
        centre = np.where(layout.adjust, grand[layout.cell_d], centre)
    deviation = value - centre[layout.codes]
    squares = np.bincount(layout.codes, weights=deviation * deviation, minlength=layout.n_cells)
    contribution = layout.scale * (squares + (layout.n_h - layout.count) * centre**2)
    variance = np.bincount(layout.cell_d, weights=contribution, minlength=n_domain)
    if any_adjust and not per_domain:
        # lonely strata with no unit in the domain still hold one unit whose total is 0
        present = np.bincount(
            layout.cell_d,
            weights=np.where(layout.adjust & (layout.count > 0), layout.scale, 0.0),
            minlength=n_domain,
        )
        all_adjust = stage.scale[stage.adjust].sum()
        variance += grand**2 * (all_adjust - present)
    return variance * _average_factor(stage, layout, n_domain, per_domain), contribution


def _average_factor(
    stage: Stage, layout: StageLayout, n_domain: int, per_domain: bool
) -> np.ndarray | float:
    """``lonely_psu="average"``: strata over strata with variance, per domain when
    ``per_domain`` (counting the strata the domain has rows in), else the stage's."""
    if stage.rule != "average" or not per_domain or not stage.lonely.any():
        return stage.average_factor
    strata = np.bincount(layout.cell_d, minlength=n_domain)
    lonely = np.bincount(layout.cell_d, weights=stage.lonely[layout.cell_h], minlength=n_domain)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(strata > lonely, strata / (strata - lonely), np.where(strata, np.nan, 1.0))


def _calibration_correction(
    stage: Stage,
    layout: StageLayout,
    value: np.ndarray,
    n_domain: int,
    unit_x: sparse.csr_matrix,
    beta: np.ndarray,
    fixed: dict,
) -> np.ndarray:
    """Variance of residual unit totals ``A - Xu beta`` minus that of ``A`` (per domain)."""
    sc_unit = stage.scale[stage.stratum]
    # Cross term sum_u sc_u A_ud (Xu_u . beta_d): expand each entry over its unit's
    # non-zero auxiliaries and bincount over (domain, auxiliary) keys
    weight = value * sc_unit[layout.entry_unit]
    lengths = np.diff(unit_x.indptr)[layout.entry_unit]
    entry = np.repeat(np.arange(weight.shape[0]), lengths)
    first = unit_x.indptr[layout.entry_unit]
    offsets = np.arange(entry.shape[0]) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    position = first[entry] + offsets
    n_aux = unit_x.shape[1]
    sums = np.bincount(
        layout.entry_domain[entry] * n_aux + unit_x.indices[position],
        weights=weight[entry] * unit_x.data[position],
        minlength=n_domain * n_aux,
    ).reshape(n_domain, n_aux)
    cross = np.einsum("dp,pd->d", sums, beta)
    if "gram" not in fixed:
        fixed["gram"] = (unit_x.T @ sparse.csr_matrix(unit_x.multiply(sc_unit[:, None]))).toarray()
        strata = sparse.csr_matrix(
            (np.ones(stage.n_unit), (stage.stratum, np.arange(stage.n_unit))),
            shape=(stage.n_strata, stage.n_unit),
        )
        fixed["stratum_x"] = (strata @ unit_x).toarray()
    gram, stratum_x = fixed["gram"], fixed["stratum_x"]
    quad = np.einsum("pd,pq,qd->d", beta, gram, beta)
    n_h = stage.units_per_stratum.astype(float)
    h = stage.stratum[layout.entry_unit]
    entry_domain = layout.entry_domain
    correction = -2 * cross + quad
    step = max(1, _DENSE_CELLS // max(stage.n_strata, 1))
    for start in range(0, n_domain, step):
        stop = min(n_domain, start + step)
        width = stop - start
        inside = (entry_domain >= start) & (entry_domain < stop)
        s_a = np.bincount(
            h[inside] * width + entry_domain[inside] - start,
            weights=value[inside],
            minlength=stage.n_strata * width,
        ).reshape(stage.n_strata, width)
        s_r = s_a - stratum_x @ beta[:, start:stop]
        centre_a = s_a / np.maximum(n_h, 1)[:, None]
        centre_r = s_r / np.maximum(n_h, 1)[:, None]
        if stage.adjust.any():
            centre_a[stage.adjust] = s_a.sum(axis=0) / stage.n_unit
            centre_r[stage.adjust] = s_r.sum(axis=0) / stage.n_unit
        sc = stage.scale[:, None]
        nh = n_h[:, None]
        part_r = (sc * (-2 * centre_r * s_r + nh * centre_r**2)).sum(axis=0)
        part_a = (sc * (-2 * centre_a * s_a + nh * centre_a**2)).sum(axis=0)
        correction[start:stop] += part_r - part_a
    return correction * stage.average_factor


def domain_variance(
    stages: list[Stage],
    weights: np.ndarray,
    scores: np.ndarray,
    domain: np.ndarray,
    n_domain: int,
    steps: tuple[CalibrationStep, ...] = (),
    layouts: list[StageLayout] | None = None,
    cache: dict[Any, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Variance of each domain's weighted total of ``scores`` and its Satterthwaite df.

    ``scores`` must be zero on rows that do not count (outside every domain, missing).
    On an uncalibrated design each domain is a subsample for the lonely-PSU rules, as R's
    ``svyby`` (see :func:`_stage_domain_variance`). ``layouts`` holds each stage's cached
    :class:`StageLayout` for these domains; ``cache`` (a dict owned by the design) keeps
    what depends only on the design and its weighting steps (auxiliary unit totals and
    their cross products).
    The Satterthwaite degrees of freedom ``(sum_h v_h)^2 / sum_h v_h^2 / (n_h - 1)`` use the
    first stage's stratum contributions before any calibration correction.
    """
    values = weights * scores
    variance = np.zeros(n_domain)
    satterthwaite = np.full(n_domain, np.nan)
    store: dict[Any, Any] = {} if cache is None else cache
    if steps:
        x = sparse.csr_matrix(
            (values, (np.arange(values.shape[0]), domain)), shape=(values.shape[0], n_domain)
        )
        beta = np.vstack(_chain_coefficients(steps, x))
        if "row_x" not in store:
            store["row_x"] = sparse.hstack([s.row_x for s in steps], format="csr")
        row_x = store["row_x"]
    for index, stage in enumerate(stages):
        layout = stage_layout(stage, domain, n_domain) if layouts is None else layouts[index]
        value = _entry_values(stage, layout, values)
        part, contribution = _stage_domain_variance(
            stage, layout, value, n_domain, subset=not steps
        )
        if steps:
            fixed = store.setdefault(("stage", index), {})
            if "unit_x" not in fixed:
                fixed["unit_x"] = row_x if stage.element else (stage.membership() @ row_x).tocsr()
            part = part + _calibration_correction(
                stage, layout, value, n_domain, fixed["unit_x"], beta, fixed
            )
        variance += part
        if index == 0:
            usable = layout.n_h > 1
            contribution = np.where(usable, contribution, 0.0)
            num = np.bincount(layout.cell_d, weights=contribution, minlength=n_domain)
            den = np.bincount(
                layout.cell_d,
                weights=contribution**2 / np.maximum(layout.n_h - 1, 1),
                minlength=n_domain,
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                satterthwaite = np.where(den > 0, num**2 / den, np.nan)
    return np.maximum(variance, 0.0), satterthwaite
