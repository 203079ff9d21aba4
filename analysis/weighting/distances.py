"""Calibration distances (R's ``cal.linear``, ``cal.raking``, ``cal.logit``).

Each gives ``g - 1 = F(u)`` as a function of ``u = x' eta`` and its derivative, with the
g-weights kept within ``bounds``. The logit distance is written as ``low + (high - low) *
expit(A u + c)``, the same function as R's ratio of exponentials, which overflows to NaN
for large ``u`` (R then halves the step; here it stays finite).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

CALFUNS = ("linear", "raking", "logit")


@dataclass(frozen=True)
class Distance:
    """``F`` and ``F'`` of one calibration distance within ``(low, high)``."""

    name: str
    low: float
    high: float

    def offset(self, u: np.ndarray) -> np.ndarray:
        """``g - 1``."""
        if self.name == "linear":
            return np.clip(u + 1, self.low, self.high) - 1
        if self.name == "raking":
            with np.errstate(over="ignore"):
                return np.clip(np.exp(u), self.low, self.high) - 1
        return self.low + (self.high - self.low) * expit(self._slope * u + self._shift) - 1

    def derivative(self, u: np.ndarray) -> np.ndarray:
        """``dg / du`` (0 where a bound holds ``g``)."""
        if self.name == "linear":
            return ((u < self.high - 1) & (u > self.low - 1)).astype(float)
        if self.name == "raking":
            with np.errstate(over="ignore", divide="ignore"):
                g = np.exp(u)
                return np.where((g < self.high) & (g > self.low), g, 0.0)
        p = expit(self._slope * u + self._shift)
        return (self.high - self.low) * self._slope * p * (1 - p)

    def finite(self, u: np.ndarray) -> np.ndarray:
        """Per column of ``u``: whether ``g`` and its derivative are finite (raking can
        overflow)."""
        with np.errstate(over="ignore", invalid="ignore"):
            ok = np.isfinite(self.offset(u)) & np.isfinite(self.derivative(u))
        return np.asarray(ok.all(axis=0))

    @property
    def _slope(self) -> float:
        return (self.high - self.low) / ((self.high - 1) * (1 - self.low))

    @property
    def _shift(self) -> float:
        return float(np.log((1 - self.low) / (self.high - 1)))


def distance(name: str, bounds: tuple[float, float] | None) -> Distance:
    """The distance ``name`` within ``bounds`` (none: unbounded)."""
    low, high = (-np.inf, np.inf) if bounds is None else (float(bounds[0]), float(bounds[1]))
    return Distance(name, low, high)
