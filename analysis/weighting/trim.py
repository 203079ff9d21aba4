"""Weight trimming with redistribution (R ``trimWeights``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from analysis.errors import WeightingError

if TYPE_CHECKING:
    from analysis.design import SurveyDesign


def trim_weights(
    weights: np.ndarray, upper: float | None, lower: float | None, max_iter: int
) -> np.ndarray:
    """Cap each column at ``[lower, upper]``; spread what was cut (or added) over the
    untrimmed weights in proportion to their size, so every column keeps its total."""
    weights = weights.astype(float).copy()
    total = weights.sum(axis=0)
    high = np.inf if upper is None else upper
    low = -np.inf if lower is None else lower
    for _ in range(max_iter):
        clipped = np.clip(weights, low, high)
        fixed = (weights >= high) | (weights <= low)
        excess = total - clipped.sum(axis=0)
        free_total = np.where(fixed, 0.0, clipped).sum(axis=0)
        if np.all(np.abs(excess) <= 1e-12 * np.abs(total)) and np.all(
            (clipped <= high * (1 + 1e-12)) & (clipped >= low * (1 - 1e-12))
        ):
            return clipped
        if np.any((free_total <= 0) & (np.abs(excess) > 0)):
            raise WeightingError(
                "trim: every weight hits a bound, so the total cannot be kept; loosen upper/lower"
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(free_total > 0, 1 + excess / free_total, 1.0)
        weights = np.where(fixed, clipped, clipped * factor)
    if np.any(weights > high * (1 + 1e-9)) or np.any(weights < low * (1 - 1e-9)):
        raise WeightingError(f"trim: bounds not met after {max_iter} iterations")
    return weights


def trim(
    design: SurveyDesign,
    *,
    upper: float | None = None,
    lower: float | None = None,
    max_iter: int = 50,
) -> SurveyDesign:
    """Trim weights to ``[lower, upper]`` and redistribute, keeping the weight total.

    As R's ``trimWeights``, the Taylor variance treats the trimmed weights as the design
    weights (earlier calibration steps still count); a replicate design trims every
    replicate.
    """
    if upper is None and lower is None:
        raise WeightingError("trim: expected upper and/or lower, got neither")
    if upper is not None and lower is not None and lower >= upper:
        raise WeightingError(f"trim: lower ({lower}) must be below upper ({upper})")
    if upper is not None and upper <= 0:
        raise WeightingError(f"trim: upper must be positive, got {upper}")

    def replay(other: SurveyDesign) -> SurveyDesign:
        return trim(other, upper=upper, lower=lower, max_iter=max_iter)

    new = trim_weights(design._weights[:, None], upper, lower, max_iter)[:, 0]
    scheme = design._scheme
    if scheme is not None:
        replicates = trim_weights(scheme.weights(), upper, lower, max_iter)
        return design._derive(weights=new, scheme=scheme.with_weights(replicates), replay=replay)
    return design._derive(weights=new, replay=replay)
