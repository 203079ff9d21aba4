"""The sampling stages of a design: strata, units, finite population factors.

A :class:`Stage` holds, for one stage of a (possibly multistage) design, the integer code
of the sampled unit of every row, the stratum of every unit, and the variance multiplier
of every stratum (``f_h * n_h / (n_h - 1)`` times the sampling fractions of the earlier
stages), with the lonely-PSU rule already applied. Everything is factorised once, when the
design is built, so estimators only ever run ``np.bincount`` over these codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from analysis.errors import DesignError, LonelyPSUError

LONELY_PSU_RULES = ("fail", "adjust", "average", "certainty", "remove")
# R's "remove" and "certainty" give the same variance (the stratum contributes nothing, in
# svyrecvar and in as.svrepdesign's jknweights alike); R only warns for "remove".

# A stratum whose finite population factor is below this is self-representing (R's rule).
_CERTAINTY = 1e-7


@dataclass(frozen=True, eq=False)
class Stage:
    """One sampling stage, ready for the variance engine.

    ``unit[i]`` is the code of the unit sampled at this stage that row ``i`` belongs to;
    ``stratum[u]`` the stratum of unit ``u``; ``scale[h]`` multiplies the centred sum of
    squares of the unit totals in stratum ``h``; ``adjust[h]`` marks lonely strata centred
    on the grand mean (``lonely_psu="adjust"``); ``average_factor`` rescales the stage's
    variance for ``lonely_psu="average"`` (strata / strata with variance; NaN when no
    stratum has variance, as R). ``lonely[h]`` marks strata with one PSU that are not taken
    whole, whatever the rule, so that domains can count them (R computes "average" and
    "adjust" on the strata a domain has).
    """

    number: int
    unit: np.ndarray
    n_unit: int
    element: bool
    stratum: np.ndarray
    n_strata: int
    units_per_stratum: np.ndarray
    scale: np.ndarray
    adjust: np.ndarray
    average_factor: float
    sampling_fraction: np.ndarray  # n_h / N_h per stratum (0 when sampled with replacement)
    lonely: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    rule: str = "fail"
    _membership: list = field(default_factory=list, repr=False)

    def unit_sums(self, values: np.ndarray) -> np.ndarray:
        """Sum an ``(n,)`` or ``(n, k)`` array of row values to unit totals."""
        if self.element:
            return values
        if values.ndim == 1:
            return np.bincount(self.unit, weights=values, minlength=self.n_unit)
        return self.membership() @ values

    def membership(self) -> sparse.csr_matrix:
        """The ``(n_unit, n)`` 0/1 matrix mapping rows to units (built once, cached)."""
        if not self._membership:
            n = self.unit.shape[0]
            self._membership.append(
                sparse.csr_matrix((np.ones(n), (self.unit, np.arange(n))), shape=(self.n_unit, n))
            )
        return self._membership[0]

    def row_stratum(self) -> np.ndarray:
        """The stratum code of every row."""
        return self.stratum[self.unit]


def factorize(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (sorted by value) and the distinct values."""
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64), np.asarray(uniques)


def combine_codes(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes of the combination of two code vectors, compacted to 0..k-1."""
    key = first.astype(np.int64) * (int(second.max()) + 1 if second.size else 1) + second
    uniques, codes = np.unique(key, return_inverse=True)
    return codes.astype(np.int64), uniques.shape[0]


def _fpc_per_stratum(
    fpc: np.ndarray, stratum_rows: np.ndarray, n_strata: int, column: str, stage: int
) -> np.ndarray:
    """The fpc value of each stratum, after checking it is constant within strata."""
    if not np.all(np.isfinite(fpc)):
        raise DesignError(
            f"fpc column {column!r} (stage {stage}): expected finite numbers, "
            f"got {int((~np.isfinite(fpc)).sum())} missing or infinite values"
        )
    first = np.zeros(n_strata)
    first[stratum_rows[::-1]] = fpc[::-1]
    if not np.allclose(fpc, first[stratum_rows], rtol=1e-12, atol=0):
        raise DesignError(
            f"fpc column {column!r} (stage {stage}): expected one value per stratum, "
            "got different values within a stratum"
        )
    return first


def build_stages(
    data: pd.DataFrame,
    strata: str | None,
    psu: list[str | None],
    fpc: list[str],
    lonely_psu: str,
) -> tuple[list[Stage], np.ndarray | None]:
    """Factorise the design columns into stages; also return fpc-implied weights.

    PSUs are nested in strata and later-stage units in earlier-stage units (R's
    ``nest=TRUE``): a PSU id reused in two strata names two PSUs. Stages after one without
    an fpc are dropped (ultimate-cluster variance, as R does).
    """
    n = len(data)
    if strata is None:
        stratum_rows = np.zeros(n, dtype=np.int64)
        stratum_labels = np.array(["(all)"], dtype=object)
    else:
        stratum_rows, stratum_labels = factorize(data[strata].to_numpy())
        if (stratum_rows < 0).any():
            raise DesignError(
                f"strata column {strata!r}: expected a value on every row, "
                f"got {int((stratum_rows < 0).sum())} missing"
            )
    levels = psu if psu else [None]
    stages: list[Stage] = []
    weights_from_fpc = np.ones(n)
    previous_unit = stratum_rows
    multiplier_rows = np.ones(n)
    fpc_complete = bool(fpc)
    for number, column in enumerate(levels, start=1):
        row_stratum = stratum_rows if number == 1 else previous_unit
        n_strata = int(row_stratum.max()) + 1 if n else 0
        element = column is None
        if element:
            unit, n_unit = np.arange(n, dtype=np.int64), n
            stratum_of_unit = row_stratum.copy()
        else:
            own, _ = factorize(data[column].to_numpy())
            if (own < 0).any():
                raise DesignError(
                    f"psu column {column!r}: expected an id on every row, "
                    f"got {int((own < 0).sum())} missing"
                )
            unit, n_unit = combine_codes(previous_unit, own)
            stratum_of_unit = np.zeros(n_unit, dtype=np.int64)
            stratum_of_unit[unit] = row_stratum
        units_per_stratum = np.bincount(stratum_of_unit, minlength=n_strata)
        if fpc:
            raw = data[fpc[number - 1]].to_numpy(dtype=float)
            value = _fpc_per_stratum(raw, row_stratum, n_strata, fpc[number - 1], number)
            if np.all(value <= 1):
                if np.any(value <= 0):
                    raise DesignError(
                        f"fpc column {fpc[number - 1]!r}: sampling fractions must be in (0, 1]"
                    )
                population = units_per_stratum / value
            elif np.all(value >= 1):
                population = value
            else:
                raise DesignError(
                    f"fpc column {fpc[number - 1]!r}: expected all population sizes (>= 1) "
                    "or all sampling fractions (<= 1), got a mixture"
                )
            if np.any(population < units_per_stratum - 1e-9):
                bad = int(np.argmax(population < units_per_stratum - 1e-9))
                raise DesignError(
                    f"fpc column {fpc[number - 1]!r}: population size {population[bad]:g} is "
                    f"smaller than the {units_per_stratum[bad]} units sampled in a stratum"
                )
            finite_factor = (population - units_per_stratum) / population
            fraction = units_per_stratum / population
            weights_from_fpc *= (population / units_per_stratum)[row_stratum]
        else:
            finite_factor = np.ones(n_strata)
            fraction = np.zeros(n_strata)
        multiplier = np.zeros(n_strata)
        multiplier[row_stratum] = multiplier_rows
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(
                units_per_stratum > 1,
                finite_factor * units_per_stratum / np.maximum(units_per_stratum - 1, 1),
                finite_factor,
            )
        scale = scale * multiplier
        certainty = finite_factor < _CERTAINTY
        lonely = (units_per_stratum == 1) & ~certainty
        adjust = np.zeros(n_strata, dtype=bool)
        average_factor = 1.0
        if lonely.any():
            if lonely_psu == "fail":
                labels = (
                    stratum_labels[np.flatnonzero(lonely)[:5]]
                    if number == 1
                    else np.flatnonzero(lonely)[:5]
                )
                raise LonelyPSUError(
                    f"stage {number}: {int(lonely.sum())} stratum/strata have only one PSU "
                    f"(first: {', '.join(map(str, labels))}); its variance cannot be "
                    "estimated. Collapse strata, or pass lonely_psu='adjust', 'average', "
                    "'certainty' or 'remove'"
                )
            if lonely_psu in ("certainty", "remove"):
                scale = np.where(lonely, 0.0, scale)
            elif lonely_psu == "average":
                scale = np.where(lonely, 0.0, scale)
                ok = int(n_strata - lonely.sum())
                average_factor = n_strata / ok if ok else float("nan")
            elif lonely_psu == "adjust":
                adjust = lonely
        scale = np.where(certainty, 0.0, scale)
        stages.append(
            Stage(
                number=number,
                unit=unit,
                n_unit=n_unit,
                element=element,
                stratum=stratum_of_unit,
                n_strata=n_strata,
                units_per_stratum=units_per_stratum,
                scale=scale,
                adjust=adjust,
                average_factor=average_factor,
                sampling_fraction=fraction,
                lonely=lonely,
                rule=lonely_psu,
            )
        )
        if not fpc_complete:
            break
        multiplier_rows = multiplier_rows * fraction[row_stratum]
        previous_unit = unit
    return stages, (weights_from_fpc if fpc else None)
