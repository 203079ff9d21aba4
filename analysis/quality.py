"""Quality grades and suppression of published estimates, from sample size and CV.

National statistics offices grade each published estimate by its coefficient of variation
(CV = standard error / estimate) and withhold those that are too unreliable:

* Statistics Canada (Labour Force Survey and most household surveys): CV up to 16.5%
  publish; 16.6-33.3% publish with a warning ("use with caution", E); above 33.3% too
  unreliable to be published (F).
* Australian Bureau of Statistics: relative standard error 25-50% "use with caution",
  above 50% "too unreliable for general use".
* US NCHS data presentation standards for proportions (Parker et al. 2017): a minimum
  sample size of 30 and an effective sample size of 30, besides interval-width rules.

The defaults here follow those: an estimate from fewer than 30 responses, or an effective
sample size below 30 (a few heavily weighted responses carry little information), or with
a CV above one third, is suppressed (published as "too few responses", never as a
number); the rest are graded A (CV at most 5% and at least 100 responses), B (CV at most
15%) or C (CV at most 33.3%, "use with caution"). The thresholds live in
:class:`QualityRules` so a release records exactly which rules it used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError

__all__ = ["GRADES", "QualityError", "QualityRules", "apply_rules", "effective_n", "grade"]

GRADES = ("A", "B", "C", "suppressed")
SUPPRESSED = "suppressed"


class QualityError(AnalysisError, ValueError):
    """Quality rules that make no sense (names the field, expected and got)."""


@dataclass(frozen=True)
class QualityRules:
    """Thresholds of the quality grades (CV as a fraction: 0.333 = 33.3%).

    ``min_n``: fewer responses than this and the estimate is suppressed;
    ``min_effective_n``: the same for the effective sample size (Kish's
    ``(sum w)^2 / sum w^2`` in the release; ``n / deff`` from an estimator's table);
    ``max_cv``: a larger CV is suppressed; ``a_max_cv``/``a_min_n``: grade A needs both;
    ``b_max_cv``: grade B; everything else that is published is C ("use with caution").
    An estimate whose CV is undefined (an estimate of 0, e.g. nobody satisfied) cannot be
    judged by its CV and gets grade C if it has enough responses.
    """

    min_n: int = 30
    min_effective_n: int = 30
    max_cv: float = 0.333
    a_max_cv: float = 0.05
    a_min_n: int = 100
    b_max_cv: float = 0.15

    def __post_init__(self) -> None:
        if not (isinstance(self.min_n, int) and self.min_n >= 1):
            raise QualityError(f"min_n: expected an integer >= 1, got {self.min_n!r}")
        if not (isinstance(self.min_effective_n, int) and self.min_effective_n >= 0):
            raise QualityError(
                f"min_effective_n: expected an integer >= 0, got {self.min_effective_n!r}"
            )
        if not (isinstance(self.a_min_n, int) and self.a_min_n >= self.min_n):
            raise QualityError(f"a_min_n: expected an integer >= min_n, got {self.a_min_n!r}")
        if not 0 < self.a_max_cv <= self.b_max_cv <= self.max_cv:
            raise QualityError(
                "cv thresholds: expected 0 < a_max_cv <= b_max_cv <= max_cv, got "
                f"{self.a_max_cv}, {self.b_max_cv}, {self.max_cv}"
            )

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def describe(self) -> str:
        """One sentence for the methodology note."""
        return (
            f"Suppressed when fewer than {self.min_n} responses, an effective sample size "
            f"(Kish: responses discounted for unequal weights) below {self.min_effective_n}, "
            f"or CV above "
            f"{self.max_cv:.1%}; grade A: CV at most {self.a_max_cv:.0%} and at least "
            f"{self.a_min_n} responses; B: CV at most {self.b_max_cv:.0%}; C (use with "
            f"caution): CV at most {self.max_cv:.1%}."
        )


def grade(
    n: np.ndarray | pd.Series,
    cv: np.ndarray | pd.Series,
    estimate: np.ndarray | pd.Series,
    rules: QualityRules | None = None,
    n_eff: np.ndarray | pd.Series | None = None,
) -> np.ndarray:
    """Grade per estimate: ``"A"``, ``"B"``, ``"C"`` or ``"suppressed"`` (vectorised).

    A missing estimate (no responses with a value) is suppressed too. Without ``n_eff``
    the effective sample size is taken to be ``n``.
    """
    rules = rules or QualityRules()
    n = np.asarray(n, dtype=float)
    n_eff = n if n_eff is None else np.asarray(n_eff, dtype=float)
    cv = np.asarray(cv, dtype=float)
    estimate = np.asarray(estimate, dtype=float)
    undefined_cv = ~np.isfinite(cv) & np.isfinite(estimate) & (estimate == 0)
    with np.errstate(invalid="ignore"):
        too_few = ~(n >= rules.min_n) | ~(n_eff >= rules.min_effective_n)
        too_noisy = (cv > rules.max_cv) | (~np.isfinite(cv) & ~undefined_cv)
        a = (cv <= rules.a_max_cv) & (n >= rules.a_min_n)
        b = cv <= rules.b_max_cv
    out = np.where(a, "A", np.where(b, "B", "C")).astype(object)
    out[too_few | too_noisy | ~np.isfinite(estimate)] = SUPPRESSED
    return out


def effective_n(
    n: np.ndarray | pd.Series, deff: np.ndarray | pd.Series | None = None
) -> np.ndarray:
    """``n / deff``, never above ``n`` (a design effect below 1 does not add information);
    ``n`` where the design effect is unknown (a single response) or not positive."""
    n = np.asarray(n, dtype=float)
    if deff is None:
        return n
    d = np.asarray(deff, dtype=float)
    usable = np.isfinite(d) & (d > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(usable, np.minimum(n, n / np.where(usable, d, 1.0)), n)


NUMBER_COLUMNS = ("estimate", "se", "ci_low", "ci_high", "df", "cv")


def apply_rules(
    table: pd.DataFrame,
    rules: QualityRules | None = None,
    columns: tuple[str, ...] = NUMBER_COLUMNS,
) -> pd.DataFrame:
    """Add ``grade`` and ``suppressed`` and blank the numbers of suppressed rows.

    ``table`` has ``n``, ``cv`` and ``estimate`` (and ``deff`` if known); the ``columns``
    present are set to NaN where suppressed, so a suppressed number cannot be shown by
    accident.
    """
    out = table.copy()
    if "n_eff" in out.columns:
        n_eff = out["n_eff"].to_numpy(dtype=float)
    else:
        n_eff = effective_n(out["n"], out["deff"] if "deff" in out.columns else None)
    out["grade"] = grade(out["n"], out["cv"], out["estimate"], rules, n_eff=n_eff)
    out["suppressed"] = out["grade"] == SUPPRESSED
    present = [c for c in columns if c in out.columns]
    out.loc[out["suppressed"], present] = np.nan
    return out
