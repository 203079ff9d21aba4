"""Calibration to population totals (R ``calibrate``): linear (GREG), raking or logit
distance, with or without bounds on the g-weights."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from analysis._taylor import GregStep, regression_inverse
from analysis.errors import UnknownColumnError, WeightingError
from analysis.weighting.cells import cell_codes, targets_for
from analysis.weighting.distances import CALFUNS, Distance, distance

if TYPE_CHECKING:
    from analysis.design import SurveyDesign

CalFun = Literal["linear", "raking", "logit"]

# R's grake: weights far below every total are scaled up first (bounds then apply to g
# relative to the scaled weights)
_RESCALE_ABOVE = 20.0


@dataclass(frozen=True)
class Auxiliaries:
    """The auxiliary matrix ``x`` (``n x p``), its population ``targets`` and a label per
    column (``region=North``, ``income``) for messages. When the totals fix the
    population ``size``, column ``intercept`` is where R's model matrix has its intercept
    (the first factor's first level, or the ``population`` column)."""

    x: np.ndarray
    targets: np.ndarray
    labels: list[str]
    intercept: int | None
    size: float | None


def _same_population(sizes: list[tuple[str, float]], population: float | None) -> float | None:
    """The population size the categorical margins agree on; an error naming the two
    that disagree (dropping a level would otherwise hide it)."""
    if population is not None:
        sizes = [("population", float(population)), *sizes]
    if not sizes:
        return None
    first_name, first = sizes[0]
    for name, size in sizes[1:]:
        if abs(size - first) > 1e-9 * max(abs(first), abs(size), 1.0):
            raise WeightingError(
                f"calibrate: the totals of {name} add up to {size:g} but {first_name} "
                f"gives {first:g}; every categorical margin must describe the same population"
            )
    return first


def model_matrix(
    design: SurveyDesign,
    totals: Mapping[str, float | Mapping[Any, float]],
    population: float | None,
) -> Auxiliaries:
    """Auxiliary matrix and population totals from the ``totals`` spec.

    The first categorical column keeps every level; later ones drop their first level,
    as R's ``model.matrix`` does, so the columns are not collinear (every level of two
    factors sums to the same constant). The dropped level's total is implied once the
    margins are checked to describe the same population.
    """
    data = design.data
    columns: list[np.ndarray] = []
    targets: list[float] = []
    labels: list[str] = []
    sizes: list[tuple[str, float]] = []
    intercept: int | None = None
    for name, total in totals.items():
        if name not in data.columns:
            raise UnknownColumnError(f"calibrate: column {name!r} is not in the data")
        if isinstance(total, Mapping):
            codes, levels = cell_codes(data, [name], "calibrate")
            level_totals = targets_for(levels, total, [name], "calibrate")
            sizes.append((repr(name), float(level_totals.sum())))
            first = 0 if len(sizes) == 1 else 1
            if first == 0:
                intercept = len(columns)
            for j in range(first, len(levels)):
                columns.append((codes == j).astype(float))
                targets.append(float(level_totals[j]))
                labels.append(f"{name}={levels[j]}")
        else:
            values = data[name].to_numpy(dtype=float)
            if not np.isfinite(values).all():
                raise WeightingError(
                    f"calibrate: column {name!r} has missing values; every row needs one"
                )
            if not np.isfinite(float(total)):
                raise WeightingError(f"calibrate: the total of {name!r} must be finite")
            columns.append(values)
            targets.append(float(total))
            labels.append(str(name))
    size = _same_population(sizes, population)
    if population is not None and len(sizes) == 0 and size is not None:
        intercept = len(columns)
        columns.append(np.ones(len(data)))
        targets.append(size)
        labels.append("population")
    if not columns:
        raise WeightingError("calibrate: expected at least one calibration total, got none")
    return Auxiliaries(np.column_stack(columns), np.asarray(targets), labels, intercept, size)


def _cross_products(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``x' diag(w_r) x`` for every column ``r`` of ``weights``, as ``(R, p, p)``."""
    return np.stack([x.T @ (x * weights[:, [r]]) for r in range(weights.shape[1])])


def _linear_unbounded(weights: np.ndarray, aux: Auxiliaries) -> np.ndarray:
    """R's ``regcalibrate``: ``g = 1 + x' lambda`` in closed form, every column at once."""
    x, targets = aux.x, aux.targets
    misfit = targets[:, None] - x.T @ weights  # (p, R)
    lam = np.einsum("rpq,qr->pr", regression_inverse(_cross_products(x, weights)), misfit)
    return weights * (1 + x @ lam)


def _rescale(weights: np.ndarray, aux: Auxiliaries) -> np.ndarray:
    """R's ``grake`` scales weights by the mean ratio of total to estimate when every
    ratio exceeds 20, computed on R's columns: the intercept instead of the first
    factor's first level."""
    sample_total = aux.x.T @ weights
    targets = np.broadcast_to(aux.targets[:, None], sample_total.shape).copy()
    if aux.intercept is not None and aux.size is not None:
        sample_total[aux.intercept] = weights.sum(axis=0)
        targets[aux.intercept] = aux.size
    with np.errstate(divide="ignore", invalid="ignore"):
        scales = targets / sample_total
    return np.where(np.min(scales, axis=0) > _RESCALE_ABOVE, np.mean(scales, axis=0), 1.0)


def _grake(
    weights: np.ndarray,
    aux: Auxiliaries,
    dist: Distance,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """R's ``grake`` on every column of ``weights`` at once: Newton steps on ``eta`` with
    ``g = 1 + F(x' eta)``, halving a step that makes ``g`` non-finite, until every
    ``|misfit| / (1 + |total|) < tol``. A column stops when it converges (as R's loop for
    one set of weights). Returns the calibrated weights and a flag per column that
    converged.
    """
    x, targets = aux.x, aux.targets
    n_cols = weights.shape[1]
    weights = weights * _rescale(weights, aux)
    limit = tol * (1 + np.abs(targets))[:, None]

    def misfit_of(u: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fitted = w * dist.offset(u)
        # a total cannot be met closer than the rounding of its sum
        floor = 1e-13 * (np.abs(x).T @ np.abs(w + fitted))
        return targets[:, None] - x.T @ (w + fitted), floor

    eta = np.zeros((x.shape[1], n_cols))
    u = np.zeros_like(weights)
    active = np.ones(n_cols, dtype=bool)
    converged = np.zeros(n_cols, dtype=bool)
    iterations = np.ones(n_cols, dtype=int)
    while active.any():
        cols = np.flatnonzero(active)
        w = weights[:, cols]
        misfit, _ = misfit_of(u[:, cols], w)
        jacobian = _cross_products(x, w * dist.derivative(u[:, cols]))
        step = np.einsum("rpq,qr->pr", regression_inverse(jacobian), misfit)
        eta[:, cols] += step
        u[:, cols] = x @ eta[:, cols]
        for k in np.flatnonzero(~dist.finite(u[:, cols])):
            col = cols[k]
            while iterations[col] < max_iter and not dist.finite(u[:, [col]])[0]:
                iterations[col] += 1
                step[:, k] /= 2
                eta[:, col] -= step[:, k]
                u[:, col] = x @ eta[:, col]
        misfit, floor = misfit_of(u[:, cols], w)
        done = np.all(np.abs(misfit) < np.maximum(limit, floor), axis=0)
        converged[cols[done]] = True
        iterations[cols] += 1
        active[cols[done | (iterations[cols] > max_iter)]] = False
    return weights * (1 + dist.offset(u)), converged


def _failure(
    aux: Auxiliaries,
    weights: np.ndarray,
    converged: np.ndarray,
    replicates: bool,
    dist: Distance,
    bounds: tuple[float, float] | None,
    max_iter: int,
) -> WeightingError:
    """Name the total furthest from its target (in the first replicate that failed) and
    what to change."""
    failed = np.flatnonzero(~converged)
    column = int(failed[0])
    estimated = aux.x.T @ weights[:, column]
    gap = np.abs(estimated - aux.targets) / (1 + np.abs(aux.targets))
    worst = int(np.argmax(gap))
    where = (
        f" in {failed.size} of {converged.size} replicates (first: replicate {column + 1})"
        if replicates
        else ""
    )
    within = f" with g-weights within bounds {bounds}" if bounds is not None else ""
    return WeightingError(
        f"calibrate: the totals cannot be met{within}{where}: {dist.name} calibration did "
        f"not converge in {max_iter} iterations; the total of {aux.labels[worst]} is "
        f"{estimated[worst]:.6g} against {aux.targets[worst]:.6g}. Widen the bounds, merge "
        "small categories or drop a calibration variable"
    )


def calibrate_weights(
    weights: np.ndarray,
    aux: Auxiliaries,
    calfun: CalFun,
    bounds: tuple[float, float] | None,
    max_iter: int,
    tol: float,
    replicates: bool = False,
) -> np.ndarray:
    """Calibrated weights for every column of ``weights`` (the design's, or replicates')."""
    if calfun == "linear" and bounds is None:
        out = _linear_unbounded(weights, aux)
        scale = np.maximum(np.abs(aux.targets), 1.0)
        if not np.allclose(aux.x.T @ out, aux.targets[:, None], rtol=1e-8, atol=1e-8 * scale.max()):
            raise WeightingError(
                "calibrate: the totals cannot be met (numeric totals that contradict each "
                "other or columns that are linear combinations of others)"
            )
        return out
    dist = distance(calfun, bounds)
    out, converged = _grake(weights, aux, dist, max_iter, tol)
    if not converged.all():
        raise _failure(aux, out, converged, replicates, dist, bounds, max_iter)
    return out


def _check_bounds(calfun: str, bounds: tuple[float, float] | None) -> None:
    if calfun not in CALFUNS:
        raise WeightingError(f"calibrate: calfun expected one of {CALFUNS}, got {calfun!r}")
    if bounds is None:
        if calfun == "logit":
            raise WeightingError(
                "calibrate: calfun='logit' needs finite bounds=(low, high), e.g. (0.5, 2)"
            )
        return
    if len(bounds) != 2:
        raise WeightingError(f"calibrate: bounds must be (low, high), got {bounds}")
    low, high = float(bounds[0]), float(bounds[1])
    if np.isnan(low) or np.isnan(high) or not (low < 1 < high):
        raise WeightingError(f"calibrate: bounds must satisfy low < 1 < high, got {bounds}")
    if calfun == "logit" and not (np.isfinite(low) and np.isfinite(high)):
        raise WeightingError(f"calibrate: calfun='logit' needs finite bounds, got {bounds}")


def calibrate(
    design: SurveyDesign,
    totals: Mapping[str, float | Mapping[Any, float]],
    *,
    population: float | None = None,
    calfun: CalFun = "linear",
    bounds: tuple[float, float] | None = None,
    max_iter: int = 50,
    tol: float = 1e-12,
) -> SurveyDesign:
    """Calibrate to population ``totals`` (R ``calibrate(calfun=, bounds=)``).

    ``totals`` maps a numeric column to its population total, or a categorical column to
    ``{level: count}`` (all levels; this also fixes the population size, and every
    categorical column must give the same size). ``population`` adds an intercept with
    that total when no categorical column does (else it must equal their size).
    ``calfun`` is the distance: ``"linear"`` (GREG, ``g = 1 + x'lambda``), ``"raking"``
    (``g = exp(x'lambda)``) or ``"logit"`` (``g`` between the bounds, which it needs).
    ``bounds=(low, high)`` keeps the g-weights (new / old weight) within bounds. Bounded
    or nonlinear calibration is R's Newton iteration, stopping when every
    ``|misfit| / (1 + |total|) < tol`` (R's ``epsilon`` is 1e-7); failing within
    ``max_iter`` iterations is an error naming the total furthest off.

    R's ``calibrate(d, ~stype + api99, c(6194, 755, 1018, 3914069))`` is
    ``calibrate({"stype": {"E": 4421, "H": 755, "M": 1018}, "api99": 3914069})``. The
    Taylor variance uses the GREG residuals ``z - x' B`` with ``B`` the regression of the
    score on ``x`` weighted by the weights before calibration, whatever ``calfun``, as R.
    """
    _check_bounds(calfun, bounds)
    if max_iter < 1:
        raise WeightingError(f"calibrate: max_iter must be at least 1, got {max_iter}")
    if not (tol > 0):
        raise WeightingError(f"calibrate: tol must be positive, got {tol}")
    aux = model_matrix(design, totals, population)

    def replay(other: SurveyDesign) -> SurveyDesign:
        return calibrate(
            other,
            totals,
            population=population,
            calfun=calfun,
            bounds=bounds,
            max_iter=max_iter,
            tol=tol,
        )

    new = calibrate_weights(design._weights[:, None], aux, calfun, bounds, max_iter, tol)[:, 0]
    scheme = design._scheme
    if scheme is not None:
        replicates = calibrate_weights(
            scheme.weights(), aux, calfun, bounds, max_iter, tol, replicates=True
        )
        return design._derive(weights=new, scheme=scheme.with_weights(replicates), replay=replay)
    step = GregStep.fit(aux.x, design._weights, new)
    return design._derive(weights=new, step=step, replay=replay)
