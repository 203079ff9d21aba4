"""Exceptions raised by :mod:`analysis`.

One small tree, so callers can catch everything from the package with one clause::

    AnalysisError                 base class; never raised itself
    ├── DesignError               the design's columns or options are unusable
    │   ├── UnknownColumnError    a named column is not in the data
    │   ├── WeightError           missing, negative or non-finite weights
    │   └── LonelyPSUError        a stratum has one PSU and lonely_psu="fail"
    ├── EstimationError           an estimate cannot be computed as asked
    │   ├── VariableError         wrong type or missing values in an analysis variable
    │   └── MethodError           unknown interval / replicate / weighting method
    └── WeightingError            poststratify, rake, calibrate, trim, nonresponse failed

Messages name the field, what was expected and what was found.
"""

from __future__ import annotations


class AnalysisError(Exception):
    """Base class of every error raised by :mod:`analysis`."""


class DesignError(AnalysisError, ValueError):
    """The design's columns or options are unusable."""


class UnknownColumnError(DesignError, KeyError):
    """A column named in a call is not in the data."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class WeightError(DesignError):
    """Weights are missing, negative or not finite."""


class LonelyPSUError(DesignError):
    """A stratum has a single PSU and ``lonely_psu="fail"`` (the default)."""


class EstimationError(AnalysisError, ValueError):
    """An estimate cannot be computed as asked."""


class VariableError(EstimationError):
    """An analysis variable has the wrong type or missing values."""


class MethodError(EstimationError):
    """An unknown interval, replicate or weighting method was requested."""


class WeightingError(AnalysisError, ValueError):
    """A weighting step (poststratify, rake, calibrate, trim, nonresponse) failed."""
