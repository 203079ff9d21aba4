"""Raking (iterative proportional fitting) to population margins (R ``rake``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis._taylor import BackfitStep
from analysis.errors import WeightingError
from analysis.weighting.cells import cell_codes, cell_totals, targets_for

if TYPE_CHECKING:
    from analysis.design import SurveyDesign


def rake_weights(
    weights: np.ndarray,
    margins: list[tuple[np.ndarray, np.ndarray]],
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """IPF on every column of ``weights``, R's stopping rule.

    A sweep post-stratifies on each margin in turn; raking stops when no margin total
    moved by ``tol`` or more during a sweep (``tol < 1`` is relative to the population
    size, ``tol >= 1`` absolute, as R's ``epsilon``). Also returns the first column's
    weights after each margin of the last sweep (what R's raking variance uses).
    """
    weights = weights.copy()
    size = margins[0][1].sum()
    limit = tol * size if tol < 1 else tol

    def summaries() -> np.ndarray:
        return np.vstack([cell_totals(codes, t.shape[0], weights) for codes, t in margins])

    previous = summaries()
    for _ in range(max_iter):
        after_margin = []
        for codes, targets in margins:
            totals = cell_totals(codes, targets.shape[0], weights)
            if (totals <= 0).any():
                raise WeightingError(
                    "rake: a margin cell has zero total weight; collapse it with a neighbour"
                )
            weights *= (targets[:, None] / totals)[codes]
            after_margin.append(weights[:, 0].copy())
        current = summaries()
        change = float(np.max(np.abs(current - previous)))
        if change < limit:
            return weights, after_margin
        previous = current
    raise WeightingError(
        f"rake: margins still moved by {change:.3g} in the last of {max_iter} sweeps (limit "
        f"{limit:.3g}); check the margins describe one population or raise max_iter"
    )


def rake(
    design: SurveyDesign,
    margins: Mapping[str, Mapping[Any, float]],
    *,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> SurveyDesign:
    """Rake to ``margins`` (column -> {category: population count}).

    Iterates post-stratification on each margin until no margin total changes by ``tol``
    or more in a sweep (``tol < 1``: relative to the population size; ``tol >= 1``:
    absolute). R's ``rake()`` defaults are ``max_iter=10, tol=1``; ours iterate to
    convergence. All margins must describe the same population size. The Taylor variance
    is R's: ten backfitting sweeps over the margins (see
    :class:`analysis._taylor.BackfitStep`).
    """
    if not margins:
        raise WeightingError("rake: expected at least one margin, got none")
    prepared = []
    for column, population in margins.items():
        codes, labels = cell_codes(design.data, [column], "rake")
        targets = targets_for(labels, population, [column], "rake")
        prepared.append((codes, targets))
    sizes = [t.sum() for _, t in prepared]
    if max(sizes) - min(sizes) > 1e-9 * max(sizes):
        raise WeightingError(
            f"rake: the margins give different population sizes {sizes}; they must agree"
        )

    def replay(other: SurveyDesign) -> SurveyDesign:
        return rake(other, margins, max_iter=max_iter, tol=tol)

    adjusted, after_margin = rake_weights(design._weights[:, None], prepared, max_iter, tol)
    new = adjusted[:, 0]
    scheme = design._scheme
    if scheme is not None:
        replicates, _ = rake_weights(scheme.weights(), prepared, max_iter, tol)
        return design._derive(weights=new, scheme=scheme.with_weights(replicates), replay=replay)
    step = BackfitStep(
        [
            (codes, targets.shape[0], psw)
            for (codes, targets), psw in zip(prepared, after_margin, strict=True)
        ]
    )
    return design._derive(weights=new, step=step, replay=replay)
