"""The satisfaction index: per domain, the weighted mean of 0-100 scores with its interval,
and the weighted share of answers at each scale point."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.errors import VariableError
from analysis.estimators import mean

if TYPE_CHECKING:
    from analysis.design import SurveyDesign

MAX_DEFAULT_POINTS = 21  # more distinct scores than any answer scale: not scale points


def _score_matrix(design: SurveyDesign, scores: list[str]) -> np.ndarray:
    columns = [design._numeric(column, "index") for column in scores]
    matrix = np.column_stack(columns)
    finite = matrix[~np.isnan(matrix)]
    if finite.size and (finite.min() < 0 or finite.max() > 100):
        raise VariableError(
            f"index: scores must lie in 0..100, got values from {finite.min():g} to "
            f"{finite.max():g} in {scores}"
        )
    return matrix


def satisfaction_index(
    design: SurveyDesign,
    scores: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    *,
    points: Sequence[float] | None = None,
    level: float = 0.95,
    method: str | None = None,
) -> pd.DataFrame:
    """The satisfaction index per domain.

    ``scores`` is the respondents' 0-100 index column, or several 0-100 item-score columns
    whose row mean (over the items answered) is each respondent's index. Respondents with no
    score are left out (the index is over those who answered). Returns the columns of
    :func:`analysis.estimators.mean` (estimate, se, ci_low, ci_high, df, n, deff, cv; the
    interval ``method`` as there) plus ``share_<point>``: the weighted share of answers
    (pooled over items) at each scale point, ``points`` defaulting to the distinct
    scores seen when they are at most 21 (a scale; a computed index column with more
    distinct values gets no share columns unless ``points`` is given).
    """
    columns = [scores] if isinstance(scores, str) else list(scores)
    if not columns:
        raise VariableError("index: expected at least one score column, got none")
    matrix = _score_matrix(design, columns)
    answered = ~np.isnan(matrix)
    count = answered.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        respondent_index = np.where(
            count > 0, np.where(answered, matrix, 0.0).sum(axis=1) / count, np.nan
        )
    name = "__satisfaction_index__"
    data = design.data
    source = columns[0] if len(columns) == 1 else None
    if source is None:
        # estimate on the derived per-respondent index without mutating the design
        from analysis.design import SurveyDesign  # local: design imports this module lazily

        shadow = object.__new__(SurveyDesign)
        shadow._build(
            data.assign(**{name: respondent_index}),
            design._weights,
            design._sampling_weights,
            design._stages,
            design._steps,
            design._scheme,
            design._lonely_psu,
            design._spec,
            design._history,
        )
        table = mean(shadow, name, by=by, dropna=True, level=level, method=method)
    else:
        table = mean(design, source, by=by, dropna=True, level=level, method=method)
    domains = design._domains(by)
    if points is None:
        observed = np.unique(matrix[answered])
        if observed.size > MAX_DEFAULT_POINTS:
            return table  # not a scale (e.g. a computed index): no share columns by default
        candidates: Iterable[float] = observed
    else:
        candidates = points
    levels = np.asarray(sorted(float(p) for p in candidates))
    w = design._weights
    counted = np.bincount(domains.code, weights=w * answered.sum(axis=1), minlength=domains.bins)[
        : domains.n_domain
    ]
    # one bincount per item over (domain, point) keys, not one pass per point
    at_point = np.zeros(domains.bins * levels.size)
    for j in range(matrix.shape[1]):
        values = matrix[:, j]
        slot = np.clip(np.searchsorted(levels, values), 0, levels.size - 1)
        hit = answered[:, j] & (levels[slot] == values)
        at_point += np.bincount(
            domains.code[hit] * levels.size + slot[hit],
            weights=w[hit],
            minlength=domains.bins * levels.size,
        )
    shares = at_point.reshape(domains.bins, levels.size)[: domains.n_domain]
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = shares / counted[:, None]
    names = [f"share_{point:g}" for point in levels]
    return pd.concat([table, pd.DataFrame(shares, columns=names, index=table.index)], axis=1)
