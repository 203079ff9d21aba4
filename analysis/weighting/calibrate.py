"""Linear (GREG) calibration, optionally bounded (R ``calibrate(calfun="linear")``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis._taylor import GregStep
from analysis.errors import UnknownColumnError, WeightingError
from analysis.weighting.cells import cell_codes, targets_for

if TYPE_CHECKING:
    from analysis.design import SurveyDesign


def model_matrix(
    design: SurveyDesign,
    totals: Mapping[str, float | Mapping[Any, float]],
    population: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Auxiliary matrix ``X`` and its population totals from the ``totals`` spec."""
    data = design.data
    columns, targets = [], []
    has_categorical = False
    for name, total in totals.items():
        if name not in data.columns:
            raise UnknownColumnError(f"calibrate: column {name!r} is not in the data")
        if isinstance(total, Mapping):
            has_categorical = True
            codes, labels = cell_codes(data, [name], "calibrate")
            level_totals = targets_for(labels, total, [name], "calibrate")
            for j in range(len(labels)):
                columns.append((codes == j).astype(float))
                targets.append(level_totals[j])
        else:
            values = data[name].to_numpy(dtype=float)
            if not np.isfinite(values).all():
                raise WeightingError(
                    f"calibrate: column {name!r} has missing values; every row needs one"
                )
            columns.append(values)
            targets.append(float(total))
    if population is not None and not has_categorical:
        columns.append(np.ones(len(data)))
        targets.append(float(population))
    if not columns:
        raise WeightingError("calibrate: expected at least one calibration total, got none")
    return np.column_stack(columns), np.asarray(targets)


def calibrate_weights(
    weights: np.ndarray,
    x: np.ndarray,
    targets: np.ndarray,
    bounds: tuple[float, float] | None,
    max_iter: int,
) -> np.ndarray:
    """Linear calibration ``g = 1 + x' lambda`` of each column of ``weights``.

    With ``bounds=(low, high)`` the g-weights are clipped and ``lambda`` re-solved on the
    units within bounds (Newton steps) until the totals are met.
    """
    out = np.empty_like(weights)
    scale = np.maximum(np.abs(targets), 1.0)
    for r in range(weights.shape[1]):
        w = weights[:, r]
        lam = np.zeros(x.shape[1])
        for _ in range(max_iter if bounds else 1):
            g = 1 + x @ lam
            free = np.ones_like(g, dtype=bool)
            if bounds is not None:
                free = (g > bounds[0]) & (g < bounds[1])
                g = np.clip(g, bounds[0], bounds[1])
            residual = targets - x.T @ (w * g)
            if bounds is not None and np.all(np.abs(residual) <= 1e-10 * scale):
                break
            jacobian = x.T @ (x * (w * free)[:, None])
            lam = lam + np.linalg.lstsq(jacobian, residual, rcond=None)[0]
        else:
            if bounds is not None:
                raise WeightingError(
                    f"calibrate: bounds {bounds} cannot be met after {max_iter} iterations; "
                    "widen the bounds or drop a calibration variable"
                )
        g = 1 + x @ lam
        if bounds is not None:
            g = np.clip(g, bounds[0], bounds[1])
        out[:, r] = w * g
    if not np.allclose(x.T @ out, targets[:, None], rtol=1e-8, atol=1e-8 * scale.max()):
        raise WeightingError(
            "calibrate: the totals cannot be met (inconsistent totals or collinear columns)"
        )
    return out


def calibrate(
    design: SurveyDesign,
    totals: Mapping[str, float | Mapping[Any, float]],
    *,
    population: float | None = None,
    bounds: tuple[float, float] | None = None,
    max_iter: int = 50,
) -> SurveyDesign:
    """Calibrate to population ``totals`` by linear (GREG) calibration.

    ``totals`` maps a numeric column to its population total, or a categorical column to
    ``{level: count}`` (all levels; this also fixes the population size). ``population``
    adds an intercept with that total when no categorical column does. ``bounds=(low,
    high)`` limits the g-weights (ratio of new to old weight). R's
    ``calibrate(d, ~stype + api99, c(6194, 755, 1018, 3914069))`` is
    ``calibrate({"stype": {"E": 4421, "H": 755, "M": 1018}, "api99": 3914069})``.
    The Taylor variance uses the GREG residuals ``z - x' B`` with ``B`` the design-weighted
    regression of the score on ``x``.
    """
    if bounds is not None and not (bounds[0] < 1 < bounds[1]):
        raise WeightingError(f"calibrate: bounds must satisfy low < 1 < high, got {bounds}")
    x, targets = model_matrix(design, totals, population)

    def replay(other: SurveyDesign) -> SurveyDesign:
        return calibrate(other, totals, population=population, bounds=bounds, max_iter=max_iter)

    new = calibrate_weights(design._weights[:, None], x, targets, bounds, max_iter)[:, 0]
    scheme = design._scheme
    if scheme is not None:
        replicates = calibrate_weights(scheme.weights(), x, targets, bounds, max_iter)
        return design._derive(weights=new, scheme=scheme.with_weights(replicates), replay=replay)
    step = GregStep.fit(x, design._weights, new)
    return design._derive(weights=new, step=step, replay=replay)
