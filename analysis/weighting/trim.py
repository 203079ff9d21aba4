"""Weight trimming with redistribution (R ``trimWeights``).

R's rule (``redistribute="equal"``, the default): weights outside ``[lower, upper]`` are
set to the bound and what was cut (or added) is shared *equally* among the weights that
were inside, in one pass; with ``strict=True`` the pass is repeated until no weight is
outside (R's ``strict=TRUE``). One pass can push a weight that was just below ``upper``
above it, as in R. Weights of 0 (nonrespondents after ``adjust_nonresponse``, PSUs a
jackknife replicate deletes) are outside the sample: they stay 0 and take no share.

``redistribute="proportional"`` shares it in proportion to the weights instead, keeping
their ratios; with ``strict=True`` it iterates, holding trimmed weights at their bound,
until every weight is within bounds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from analysis.errors import WeightingError

if TYPE_CHECKING:
    from analysis.design import SurveyDesign

Redistribute = Literal["equal", "proportional"]
REDISTRIBUTE = ("equal", "proportional")


def _check_feasible(weights: np.ndarray, high: float, low: float) -> None:
    """A total that the non-zero weights cannot reach within bounds is an error, not NaN
    weights (R divides by zero, or recurses without end with ``strict=TRUE``)."""
    n = (weights != 0).sum(axis=0)
    total = weights.sum(axis=0)
    over = total > n * high * (1 + 1e-12)
    if np.any(over):
        raise WeightingError(
            f"trim: {int(n[over][0])} weights of at most {high:g} cannot keep the weight "
            f"total {float(total[over][0]):g}: every weight hits a bound; raise upper"
        )
    under = total < n * low * (1 - 1e-12)
    if np.any(under):
        raise WeightingError(
            f"trim: {int(n[under][0])} weights of at least {low:g} cannot keep the weight "
            f"total {float(total[under][0]):g}: every weight hits a bound; lower the lower bound"
        )


def _outside(weights: np.ndarray, high: float, low: float, slack: float = 0.0) -> np.ndarray:
    """Non-zero weights outside the bounds (zero weights are rows outside the sample or
    the replicate: they stay 0)."""
    beyond = (weights > high * (1 + slack)) | (weights < low * (1 - slack))
    return beyond & (weights != 0)


def _equal_pass(weights: np.ndarray, high: float, low: float) -> tuple[np.ndarray, bool]:
    """One pass of R's ``trimWeights``: clip, and add the trimmings' mean to the others."""
    outside = _outside(weights, high, low)
    if not outside.any():
        return weights, False
    clipped = np.where(outside, np.clip(weights, low, high), weights)
    inside = (weights != 0) & ~outside
    count = inside.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(count > 0, (weights - clipped).sum(axis=0) / count, 0.0)
    return np.where(inside, weights + share, clipped), True


def _proportional_pass(
    weights: np.ndarray, high: float, low: float, held: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Clip, and scale the weights not held at a bound so the total is kept."""
    outside = _outside(weights, high, low)
    clipped = np.where(outside, np.clip(weights, low, high), weights)
    held = held | outside | ((weights != 0) & ((weights == high) | (weights == low)))
    excess = weights.sum(axis=0) - clipped.sum(axis=0)
    free_total = np.where(held, 0.0, clipped).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(free_total > 0, 1 + excess / free_total, 1.0)
    return np.where(held, clipped, clipped * factor), held


def trim_weights(
    weights: np.ndarray,
    upper: float | None,
    lower: float | None,
    strict: bool,
    redistribute: Redistribute,
    max_iter: int,
) -> np.ndarray:
    """Trim every column of ``weights``; each column keeps its total."""
    weights = weights.astype(float).copy()
    high = np.inf if upper is None else float(upper)
    low = -np.inf if lower is None else float(lower)
    _check_feasible(weights, high, low)
    passes = max_iter if strict else 1
    if redistribute == "equal":
        for _ in range(passes):
            weights, changed = _equal_pass(weights, high, low)
            if not changed:
                return weights
    else:
        held = np.zeros(weights.shape, dtype=bool)
        for _ in range(passes):
            if not _outside(weights, high, low, slack=1e-12).any():
                return weights
            weights, held = _proportional_pass(weights, high, low, held)
    if strict and _outside(weights, high, low, slack=1e-12).any():
        raise WeightingError(f"trim: weights still outside the bounds after {max_iter} passes")
    return weights


def trim(
    design: SurveyDesign,
    *,
    upper: float | None = None,
    lower: float | None = None,
    strict: bool = False,
    redistribute: Redistribute = "equal",
    max_iter: int = 1000,
) -> SurveyDesign:
    """Trim weights to ``[lower, upper]`` and redistribute, keeping the weight total.

    The default is R's ``trimWeights(design, upper, lower, strict=FALSE)``: trimmed mass is
    added equally to every weight that was within bounds, in one pass; ``strict=True``
    repeats the pass until no weight is outside. ``redistribute="proportional"`` spreads
    it in proportion to the weights (with ``strict=True``: until within bounds). As R,
    the Taylor variance treats the trimmed weights as the design weights (earlier
    calibration steps still count); a replicate design trims every replicate's weights
    by the same rule.
    """
    if upper is None and lower is None:
        raise WeightingError("trim: expected upper and/or lower, got neither")
    if upper is not None and lower is not None and lower >= upper:
        raise WeightingError(f"trim: lower ({lower}) must be below upper ({upper})")
    if upper is not None and upper <= 0:
        raise WeightingError(f"trim: upper must be positive, got {upper}")
    if redistribute not in REDISTRIBUTE:
        raise WeightingError(
            f"trim: redistribute expected one of {REDISTRIBUTE}, got {redistribute!r}"
        )
    if max_iter < 1:
        raise WeightingError(f"trim: max_iter must be at least 1, got {max_iter}")

    def replay(other: SurveyDesign) -> SurveyDesign:
        return trim(
            other,
            upper=upper,
            lower=lower,
            strict=strict,
            redistribute=redistribute,
            max_iter=max_iter,
        )

    def trimmed(weights: np.ndarray) -> np.ndarray:
        return trim_weights(weights, upper, lower, strict, redistribute, max_iter)

    new = trimmed(design._weights[:, None])[:, 0]
    scheme = design._scheme
    if scheme is not None:
        replicates = trimmed(scheme.weights())
        return design._derive(weights=new, scheme=scheme.with_weights(replicates), replay=replay)
    return design._derive(weights=new, replay=replay)
