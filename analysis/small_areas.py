"""Small-area estimates for cells of a survey design (agency x province, say).

:func:`analysis.sae.fay_herriot` works on area-level inputs. This module makes them from
response-level data, so the command line and the staff API can go straight from the
service's export to published cell estimates:

1. the direct estimate of each cell: the design-weighted mean of ``variable`` in the cell
   (``design.mean(variable, by=area, dropna=True)``), with its standard error and count;
2. its sampling variance ``psi``: by default smoothed as ``k / n`` (a generalised variance
   function, ``k`` the median of ``se^2 n`` over cells with two or more responses and a
   positive variance), because variances estimated from a handful of responses are
   themselves too noisy (or 0) to weigh by; ``variance="direct"`` keeps each cell's own
   design variance and smooths only the cells where it is unusable;
3. auxiliary variables known for every cell: the direct estimate of each larger domain in
   ``parent`` (the agency's own index for an agency x province cell), the log of the cell's
   estimated population size (sum of weights, or a frame count column of ``auxiliary``),
   and any numeric column of an area-level ``auxiliary`` table (past periods, frame counts);
4. the publication quality rule (``min_n`` responses and a CV at most ``max_cv``, the
   publication's defaults): cells that pass keep their direct estimate, the others get the
   EBLUP, flagged ``model_based``.

Cells listed in ``auxiliary`` without any response get the synthetic estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from analysis.sae import FayHerriotError, FayHerriotResult, Method, fay_herriot

if TYPE_CHECKING:
    from analysis.design import SurveyDesign

__all__ = ["SmallAreaResult", "small_area_estimates"]

Variance = Literal["smoothed", "direct"]


@dataclass(frozen=True)
class SmallAreaResult:
    """Cell estimates and the fitted model.

    ``table`` has the area columns, then ``n``, ``direct``, ``direct_se``, ``direct_cv``,
    ``direct_ok`` (passes the quality rule), ``variance`` (psi used), ``variance_smoothed``,
    the auxiliary columns, ``eblup``, ``mse``, ``rmse``, ``gamma``, ``synthetic``,
    ``estimate`` (what to publish) and ``model_based``. ``fit`` is the Fay-Herriot fit
    (``fit.beta``, ``fit.sigma2_u``).
    """

    table: pd.DataFrame
    fit: FayHerriotResult


def small_area_estimates(
    design: SurveyDesign,
    variable: str,
    area: str | Sequence[str],
    *,
    parent: str | Sequence[str] | None = None,
    log_size: bool = True,
    size: str | None = None,
    auxiliary: pd.DataFrame | None = None,
    covariates: Sequence[str] = (),
    method: Method = "REML",
    variance: Variance = "smoothed",
    min_n: int = 30,
    max_cv: float = 0.333,
    bootstrap: int = 0,
    seed: int | None = None,
) -> SmallAreaResult:
    """Fay-Herriot estimates of the mean of ``variable`` for every cell of ``area``.

    ``parent`` names larger-domain columns (constant within a cell) whose direct means are
    covariates. ``auxiliary`` is an area-level table keyed by the ``area`` columns; its
    ``covariates`` columns join the model, and its cells without responses get synthetic
    estimates. ``log_size`` adds the log of the cell's population size: the ``size`` column
    of ``auxiliary`` (a frame count) when given, else the sum of the cell's weights.
    Raises :class:`~analysis.sae.FayHerriotError` naming the problem.
    """
    areas = [area] if isinstance(area, str) else list(area)
    parents = [] if parent is None else ([parent] if isinstance(parent, str) else list(parent))
    if not areas:
        raise FayHerriotError("area: expected at least one column naming the cells")
    if variance not in ("smoothed", "direct"):
        raise FayHerriotError(f"variance: expected 'smoothed' or 'direct', got {variance!r}")
    if not (isinstance(min_n, int) and min_n >= 1):
        raise FayHerriotError(f"min_n: expected an integer >= 1, got {min_n!r}")
    if not max_cv > 0:
        raise FayHerriotError(f"max_cv: expected a positive number, got {max_cv!r}")
    data = design.data
    for column in [*areas, *parents]:
        if column not in data.columns:
            raise FayHerriotError(f"column {column!r} is not in the data")
    cells = design.mean(variable, by=areas, dropna=True, method="wald")
    cells = cells.rename(columns={"estimate": "direct", "se": "direct_se", "cv": "direct_cv"})
    cells = cells[[*areas, "n", "direct", "direct_se", "direct_cv"]]
    weights = pd.Series(np.asarray(design.weights), index=data.index)
    sums = weights.groupby([data[c] for c in areas]).sum().rename("weight_sum").reset_index()
    cells = cells.merge(sums, on=areas, how="left")
    terms = [f"{column}_{variable}" for column in parents]
    if auxiliary is not None:
        wanted = list(dict.fromkeys([*covariates, *([size] if size else [])]))
        cells = _join_auxiliary(cells, auxiliary, areas, wanted)
    elif covariates:
        raise FayHerriotError("covariates: given without an auxiliary table to take them from")
    for column, term in zip(parents, terms, strict=True):
        cells[term] = _parent_estimates(design, cells, variable, areas, column)
    terms += list(covariates)
    if size is not None and (auxiliary is None or size not in auxiliary.columns):
        raise FayHerriotError(f"size: column {size!r} is not in the auxiliary table")
    if log_size:
        counts = cells[size] if size is not None else cells["weight_sum"]
        with np.errstate(divide="ignore", invalid="ignore"):
            cells["log_size"] = np.log(pd.to_numeric(counts, errors="coerce").to_numpy(float))
        terms.append("log_size")
    if not terms:
        raise FayHerriotError(
            "auxiliary variables: none; give parent columns, covariates or log_size"
        )
    missing = cells[terms].isna().any(axis=1) | ~np.isfinite(cells[terms].to_numpy(float)).all(1)
    if missing.any():
        first = _label(cells.loc[missing, areas].iloc[0])
        raise FayHerriotError(
            f"auxiliary variables: missing or infinite for {int(missing.sum())} cell(s) "
            f"(first: {first}); every cell needs every auxiliary value"
        )

    cells["n"] = cells["n"].fillna(0).astype(int)
    psi, smoothed = _sampling_variance(cells, variance)
    cells["direct_ok"] = (
        ((cells["n"] >= min_n) & _positive(cells) & (cells["direct_cv"] <= max_cv))
        .fillna(False)
        .astype(bool)
    )
    direct = cells["direct"].where(cells["n"] > 0).to_numpy(float)
    fit = fay_herriot(
        direct,
        psi,
        cells[terms].astype(float),
        method=method,
        area=np.arange(len(cells)),
        direct_ok=cells["direct_ok"].to_numpy(),
        bootstrap=bootstrap,
        seed=seed,
    )
    model = fit.table
    table = cells[[*areas, "n", "direct", "direct_se", "direct_cv", "direct_ok"]].copy()
    table["variance"] = psi
    table["variance_smoothed"] = smoothed
    for term in terms:
        table[term] = cells[term].to_numpy()
    for column in ("eblup", "mse"):
        table[column] = model[column].to_numpy()
    table["rmse"] = np.sqrt(table["mse"])
    for column in ("gamma", "synthetic", "estimate", "model_based"):
        table[column] = model[column].to_numpy()
    return SmallAreaResult(table=table.reset_index(drop=True), fit=fit)


def _parent_estimates(
    design: SurveyDesign, cells: pd.DataFrame, variable: str, areas: list[str], parent: str
) -> np.ndarray:
    """The direct mean of each cell's larger domain (``parent`` must contain whole cells)."""
    data = design.data
    means = design.mean(variable, by=parent, dropna=True, method="wald")
    by_parent = dict(zip(means[parent].astype(str), means["estimate"], strict=True))
    if parent in areas:
        labels = cells[parent].astype(str)
    else:
        per_cell = data[[*areas, parent]].dropna(subset=areas).drop_duplicates()
        if per_cell.duplicated(subset=areas).any():
            raise FayHerriotError(
                f"parent: column {parent!r} takes several values within a cell of {areas}; "
                "a parent domain must contain whole cells"
            )
        keys = pd.MultiIndex.from_frame(per_cell[areas].astype(str))
        lookup = pd.Series(per_cell[parent].astype(str).to_numpy(), index=keys)
        labels = pd.Series(
            lookup.reindex(pd.MultiIndex.from_frame(cells[areas].astype(str))).to_numpy()
        )
    return labels.map(by_parent).to_numpy(dtype=float)


def _join_auxiliary(
    cells: pd.DataFrame,
    auxiliary: pd.DataFrame,
    areas: list[str],
    covariates: list[str],
) -> pd.DataFrame:
    """Cells outer-joined with the area-level table (its cells without responses stay)."""
    for column in [*areas, *covariates]:
        if column not in auxiliary.columns:
            raise FayHerriotError(f"auxiliary: column {column!r} is not in the auxiliary table")
    if auxiliary.duplicated(subset=areas).any():
        raise FayHerriotError(f"auxiliary: expected one row per cell of {areas}, got duplicates")
    for column in covariates:
        if not pd.api.types.is_numeric_dtype(auxiliary[column]):
            raise FayHerriotError(f"auxiliary: column {column!r} must be numeric")
    keys = auxiliary[areas].copy()
    for column in areas:  # CSV readers may type the same label differently
        if cells[column].dtype != keys[column].dtype:
            keys[column] = keys[column].astype(str)
            cells[column] = cells[column].astype(str)
    extra = pd.concat([keys, auxiliary[covariates]], axis=1)
    joined = extra.merge(cells, on=areas, how="outer", indicator=True)
    unknown = joined["_merge"] == "right_only"
    if unknown.any():
        first = _label(joined.loc[unknown, areas].iloc[0])
        raise FayHerriotError(
            f"auxiliary: {int(unknown.sum())} cell(s) with responses are not in the auxiliary "
            f"table (first: {first})"
        )
    return joined.drop(columns="_merge")


def _label(row: pd.Series) -> str:
    """A cell named for a message: ``agency=AG0, province=2``."""
    return ", ".join(f"{column}={value}" for column, value in row.items())


def _positive(cells: pd.DataFrame) -> pd.Series:
    """A standard error that is really positive: one response gives 0 up to rounding
    (1e-13), which must not pass for a precise estimate."""
    scale = np.maximum(cells["direct"].abs().fillna(0), 1.0)
    se = cells["direct_se"]
    return (se.notna() & (se > 1e-9 * scale)).astype(bool)


def _sampling_variance(cells: pd.DataFrame, variance: Variance) -> tuple[np.ndarray, np.ndarray]:
    """``psi`` per cell and whether it was smoothed (``k / n``, generalised variance)."""
    n = cells["n"].to_numpy(float)
    se = cells["direct_se"].to_numpy(float)
    usable = (n >= 2) & _positive(cells).to_numpy()
    if not usable.any():
        raise FayHerriotError(
            "direct: no cell has two or more responses and a positive variance to smooth from"
        )
    k = float(np.median(se[usable] ** 2 * n[usable]))
    with np.errstate(divide="ignore"):
        smooth = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    if variance == "smoothed":
        return smooth, n > 0
    psi = np.where(usable, se**2, smooth)
    return psi, (n > 0) & ~usable
