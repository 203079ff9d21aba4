"""Domains (``by=``): integer codes per row, computed once per design and column set.

Rows whose ``by`` value is missing belong to no domain; they get the extra code
``n_domain`` (a discard bin) so every engine can use ``n_domain + 1`` bins and slice it off.
Domains keep the PSUs of their strata (values are zero outside the domain); for the
lonely-PSU rules "average" and "adjust" a domain of an uncalibrated design counts only the
strata it has rows in, as R's ``svyby`` on a subsample (see :mod:`analysis._taylor`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import UnknownColumnError


@dataclass(frozen=True, eq=False)
class Domains:
    """The domains of a ``by=`` request: row codes and one label row per domain."""

    columns: tuple[str, ...]
    code: np.ndarray
    n_domain: int
    labels: pd.DataFrame

    @property
    def bins(self) -> int:
        """Number of bins including the discard bin for rows without a domain."""
        return self.n_domain + 1


def normalise_by(by: str | Sequence[str] | None) -> tuple[str, ...]:
    """``by`` as a tuple of column names."""
    if by is None:
        return ()
    if isinstance(by, str):
        return (by,)
    return tuple(by)


def build_domains(data: pd.DataFrame, columns: tuple[str, ...]) -> Domains:
    """Factorise the ``by`` columns (sorted by value, as R's ``svyby``)."""
    n = len(data)
    for column in columns:
        if column not in data.columns:
            raise UnknownColumnError(
                f"by: column {column!r} is not in the data "
                f"(columns: {', '.join(map(str, data.columns[:20]))})"
            )
    if not columns:
        return Domains((), np.zeros(n, dtype=np.int64), 1, pd.DataFrame(index=range(1)))
    codes = []
    uniques = []
    for column in columns:
        c, u = pd.factorize(data[column], sort=True)
        codes.append(c.astype(np.int64))
        uniques.append(u)
    missing = np.zeros(n, dtype=bool)
    for c in codes:
        missing |= c < 0
    if len(columns) == 1:
        code = codes[0].copy()
        n_domain = len(uniques[0])
        labels = pd.DataFrame({columns[0]: np.asarray(uniques[0])})
    else:
        key = np.zeros(n, dtype=np.int64)
        for c, u in zip(codes, uniques, strict=True):
            key = key * len(u) + np.maximum(c, 0)
        present, code = np.unique(key[~missing], return_inverse=True)
        full = np.zeros(n, dtype=np.int64)
        full[~missing] = code
        code = full
        n_domain = present.shape[0]
        parts = {}
        rest = present.copy()
        for column, u in reversed(list(zip(columns, uniques, strict=True))):
            parts[column] = np.asarray(u)[rest % len(u)]
            rest = rest // len(u)
        labels = pd.DataFrame({column: parts[column] for column in columns})
    code[missing] = n_domain
    return Domains(columns, code, n_domain, labels)
