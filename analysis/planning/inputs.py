"""The strata table read and checked: one row per stratum, the columns of STRATUM_COLUMNS."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.planning.targets import (
    _OPTIONAL_DEFAULTS,
    _REQUIRED,
    DIMENSIONS,
    STRATUM_COLUMNS,
    Target,
)
from analysis.samplesize import (
    SampleDesignError,
)


@dataclass(frozen=True)
class _Strata:
    """Validated per-stratum arrays."""

    table: pd.DataFrame
    volume: np.ndarray
    response_rate: np.ndarray
    sd: np.ndarray  # effective: S_h * sqrt(deff_h)
    raw_sd: np.ndarray
    mean: np.ndarray | None
    deff: np.ndarray
    cost_per_invitation: np.ndarray  # fixed + parts * per part
    parts: np.ndarray
    kurtosis: np.ndarray

    @property
    def capacity(self) -> np.ndarray:
        return self.volume * self.response_rate

    @property
    def cost_per_complete(self) -> np.ndarray:
        return self.cost_per_invitation / self.response_rate


def _numeric(table: pd.DataFrame, name: str) -> np.ndarray:
    try:
        values = pd.to_numeric(table[name], errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise SampleDesignError(f"{name}: expected numbers, got {exc}") from None
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad))
        raise SampleDesignError(
            f"{name}: expected a number for stratum {table['stratum'].iloc[row]!r}, got "
            f"{table[name].iloc[row]!r}"
        )
    return values


def _check_range(
    table: pd.DataFrame, name: str, values: np.ndarray, ok: np.ndarray, want: str
) -> None:
    if not ok.all():
        row = int(np.argmax(~ok))
        raise SampleDesignError(
            f"{name}: expected {want} for stratum {table['stratum'].iloc[row]!r}, "
            f"got {values[row]:g}"
        )


def _beta_kurtosis(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Kurtosis (not excess) of the beta distribution on 0-100 with this mean and SD."""
    m, v = mean / 100.0, (sd / 100.0) ** 2
    t = m * (1 - m) / v - 1.0
    a, b = m * t, (1 - m) * t
    excess = (
        6 * ((a - b) ** 2 * (a + b + 1) - a * b * (a + b + 2)) / (a * b * (a + b + 2) * (a + b + 3))
    )
    return 3.0 + excess


def _read_strata(strata: pd.DataFrame, target: Target, *, need_mean: bool = False) -> _Strata:
    if not isinstance(strata, pd.DataFrame):
        raise SampleDesignError(f"strata: expected a pandas DataFrame, got {type(strata).__name__}")
    missing = [c for c in _REQUIRED if c not in strata.columns]
    if target.measure == "mean" and "sd" not in strata.columns:
        missing.append("sd")
    need_mean = need_mean or target.measure == "proportion" or target.cv is not None
    if need_mean and "mean" not in strata.columns:
        missing.append("mean")
    if missing:
        raise SampleDesignError(
            f"strata: missing column {missing[0]!r} (expected {', '.join(STRATUM_COLUMNS)})"
        )
    if strata.empty:
        raise SampleDesignError("strata: expected at least one stratum, got none")
    table = strata.reset_index(drop=True).copy()
    for name, default in _OPTIONAL_DEFAULTS.items():
        if name not in table.columns:
            table[name] = default
    for name in ("stratum", *DIMENSIONS):
        table[name] = table[name].fillna("").astype(str)
    duplicated = table["stratum"].duplicated()
    if duplicated.any():
        raise SampleDesignError(
            f"stratum: expected unique names, got {table['stratum'][duplicated].iloc[0]!r} twice"
        )
    for name in ("agency", "service", "channel"):
        empty = table[name] == ""
        if empty.any():
            raise SampleDesignError(
                f"{name}: expected a value for stratum {table['stratum'][empty].iloc[0]!r}, got ''"
            )
    volume = _numeric(table, "volume")
    _check_range(table, "volume", volume, volume > 0, "> 0 (drop strata without transactions)")
    rr = _numeric(table, "response_rate")
    _check_range(table, "response_rate", rr, (rr > 0) & (rr <= 1), "a rate in (0, 1]")
    deff = _numeric(table, "deff")
    _check_range(table, "deff", deff, deff > 0, "> 0")
    parts = _numeric(table, "parts_per_invitation")
    _check_range(table, "parts_per_invitation", parts, parts >= 0, ">= 0")
    per_part = _numeric(table, "cost_per_part")
    _check_range(table, "cost_per_part", per_part, per_part >= 0, ">= 0")
    fixed = _numeric(table, "cost_per_invitation")
    _check_range(table, "cost_per_invitation", fixed, fixed >= 0, ">= 0")
    mean = None
    if "mean" in table.columns and (need_mean or table["mean"].notna().all()):
        mean = _numeric(table, "mean")
        _check_range(table, "mean", mean, (mean > 0) & (mean < 100), "a value in (0, 100)")
    if target.measure == "proportion":
        if "sd" in table.columns and table["sd"].notna().any():
            raise SampleDesignError(
                "sd: for proportions the SD is implied by the expected percentage in 'mean'; "
                "drop the 'sd' column"
            )
        assert mean is not None
        raw_sd = np.sqrt(mean * (100.0 - mean))
        pq = mean / 100.0 * (1 - mean / 100.0)
        kurtosis = (1 - 3 * pq) / pq
    else:
        raw_sd = _numeric(table, "sd")
        _check_range(table, "sd", raw_sd, raw_sd > 0, "> 0")
        if mean is not None:
            feasible = raw_sd**2 < mean * (100.0 - mean)
            _check_range(
                table,
                "sd",
                raw_sd,
                feasible,
                "less than sqrt(mean * (100 - mean)) on a 0-100 scale",
            )
            kurtosis = _beta_kurtosis(mean, raw_sd)
        else:
            kurtosis = np.full(volume.shape, 3.0)
    if target.measure == "mean":
        table["sd"] = raw_sd
    if mean is not None:
        table["mean"] = mean
    for name, values in (
        ("volume", volume),
        ("response_rate", rr),
        ("deff", deff),
        ("parts_per_invitation", parts),
        ("cost_per_part", per_part),
        ("cost_per_invitation", fixed),
    ):
        table[name] = values
    return _Strata(
        table=table,
        volume=volume,
        response_rate=rr,
        sd=raw_sd * np.sqrt(deff),
        raw_sd=raw_sd,
        mean=mean,
        deff=deff,
        cost_per_invitation=fixed + parts * per_part,
        parts=parts,
        kurtosis=kurtosis,
    )
