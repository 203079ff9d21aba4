"""Design-based estimates and confidence intervals that match R ``survey``, fast.

``from analysis import SurveyDesign`` is the entry point; see ``docs/analysis.md``.
"""

from analysis.contrasts import Estimates, combine, compare_domains, joint_estimates
from analysis.design import SurveyDesign
from analysis.errors import (
    AnalysisError,
    DesignError,
    EstimationError,
    LonelyPSUError,
    MethodError,
    UnknownColumnError,
    VariableError,
    WeightError,
    WeightingError,
)

__all__ = [
    "AnalysisError",
    "DesignError",
    "Estimates",
    "EstimationError",
    "LonelyPSUError",
    "MethodError",
    "SurveyDesign",
    "UnknownColumnError",
    "VariableError",
    "WeightError",
    "WeightingError",
    "combine",
    "compare_domains",
    "joint_estimates",
]
