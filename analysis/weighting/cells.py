"""Weighting cells: codes of one or more categorical columns, and matching targets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from analysis.errors import UnknownColumnError, WeightingError


def columns_of(column: str | Sequence[str]) -> list[str]:
    return [column] if isinstance(column, str) else list(column)


def cell_codes(data: pd.DataFrame, columns: list[str], role: str) -> tuple[np.ndarray, list]:
    """Codes of the cells formed by ``columns`` and the cell labels (tuples for several)."""
    for column in columns:
        if column not in data.columns:
            raise UnknownColumnError(f"{role}: column {column!r} is not in the data")
        if data[column].isna().any():
            raise WeightingError(
                f"{role}: column {column!r} has {int(data[column].isna().sum())} missing "
                "values; every row needs a cell"
            )
    if len(columns) == 1:
        codes, uniques = pd.factorize(data[columns[0]], sort=True)
        return codes.astype(np.int64), list(uniques)
    frame = data[columns]
    index = pd.MultiIndex.from_frame(frame)
    codes, uniques = pd.factorize(index, sort=True)
    return codes.astype(np.int64), list(uniques)


def targets_for(
    labels: list,
    population: Mapping[Any, float] | pd.Series | pd.DataFrame,
    columns: list[str],
    role: str,
) -> np.ndarray:
    """Population counts in the order of ``labels``; every cell must have exactly one."""
    if isinstance(population, pd.DataFrame):
        value = "Freq" if "Freq" in population.columns else population.columns[-1]
        keys = (
            population[columns[0]].tolist()
            if len(columns) == 1
            else list(population[columns].itertuples(index=False, name=None))
        )
        mapping = dict(zip(keys, population[value].astype(float), strict=True))
    elif isinstance(population, pd.Series):
        mapping = {k: float(v) for k, v in population.items()}
    else:
        mapping = {k: float(v) for k, v in population.items()}
    normalised = {_key(k): v for k, v in mapping.items()}
    sample = {_key(label) for label in labels}
    missing = [label for label in labels if _key(label) not in normalised]
    if missing:
        raise WeightingError(
            f"{role}: sample cell(s) {missing[:5]} of {columns} have no population count"
        )
    empty = [k for k in normalised if k not in sample]
    if empty:
        raise WeightingError(
            f"{role}: population cell(s) {empty[:5]} of {columns} have no sampled rows; "
            "collapse them with a neighbouring cell"
        )
    targets = np.array([normalised[_key(label)] for label in labels], dtype=float)
    if (targets < 0).any() or not np.isfinite(targets).all():
        raise WeightingError(f"{role}: population counts must be finite and non-negative")
    return targets


def _key(value: Any) -> Any:
    """Compare labels loosely across numpy/python scalar types and 1-tuples."""
    if isinstance(value, tuple):
        return tuple(_key(v) for v in value) if len(value) > 1 else _key(value[0])
    if isinstance(value, np.generic):
        return value.item()
    return value


def indicator(codes: np.ndarray, n_cells: int) -> sparse.csr_matrix:
    """The ``(n, n_cells)`` 0/1 cell-membership matrix."""
    n = codes.shape[0]
    return sparse.csr_matrix((np.ones(n), (np.arange(n), codes)), shape=(n, n_cells))


def cell_totals(codes: np.ndarray, n_cells: int, weights: np.ndarray) -> np.ndarray:
    """Weighted cell totals of a ``(n, m)`` weight matrix, as ``(n_cells, m)``."""
    return np.column_stack(
        [
            np.bincount(codes, weights=weights[:, j], minlength=n_cells)
            for j in range(weights.shape[1])
        ]
    )
