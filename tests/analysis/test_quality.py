"""Quality grades and suppression: boundaries of n and CV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.quality import QualityError, QualityRules, apply_rules, effective_n, grade


def test_grade_boundaries_with_default_rules() -> None:
    n = np.array([29, 30, 30, 30, 30, 99, 100, 100, 500, 500])
    cv = np.array([0.01, 0.01, 0.05, 0.15, 0.333, 0.01, 0.05, 0.0501, 0.3331, 0.15])
    est = np.full(n.size, 50.0)
    assert grade(n, cv, est).tolist() == [
        "suppressed",  # n below 30
        "B",  # n = 30: small CV, but A needs 100 responses
        "B",
        "B",  # CV exactly 15%
        "C",  # CV exactly 33.3% is still published
        "B",
        "A",  # CV exactly 5% with 100 responses
        "B",
        "suppressed",  # CV above 33.3%
        "B",
    ]


def test_missing_estimate_or_cv_is_suppressed_and_zero_estimate_is_c() -> None:
    got = grade([100, 100, 100, 10], [np.nan, np.nan, np.inf, np.nan], [np.nan, 0.0, 5.0, 0.0])
    assert got.tolist() == ["suppressed", "C", "suppressed", "suppressed"]


def test_apply_rules_blanks_the_numbers_of_suppressed_rows() -> None:
    table = pd.DataFrame(
        {
            "estimate": [70.0, 40.0],
            "se": [1.0, 20.0],
            "ci_low": [68.0, 0.0],
            "ci_high": [72.0, 80.0],
            "df": [100.0, 10.0],
            "cv": [1 / 70, 0.5],
            "n": [200, 12],
        }
    )
    out = apply_rules(table)
    assert out["grade"].tolist() == ["A", "suppressed"]
    assert out["suppressed"].tolist() == [False, True]
    assert out.loc[1, ["estimate", "se", "ci_low", "ci_high", "df", "cv"]].isna().all()
    assert out.loc[1, "n"] == 12  # the number of responses is always shown
    assert out.loc[0, "estimate"] == 70.0
    assert table.loc[1, "estimate"] == 40.0  # the input is not changed


def test_custom_rules_and_their_description() -> None:
    rules = QualityRules(min_n=50, max_cv=0.25, a_max_cv=0.03, a_min_n=200, b_max_cv=0.1)
    assert grade([49, 50, 200], [0.01, 0.26, 0.03], [1.0, 1.0, 1.0], rules).tolist() == [
        "suppressed",
        "suppressed",
        "A",
    ]
    text = rules.describe()
    assert "50 responses" in text and "25.0%" in text


@pytest.mark.parametrize(
    "kwargs",
    [{"min_n": 0}, {"a_max_cv": 0.2, "b_max_cv": 0.1}, {"max_cv": 0.1}, {"a_min_n": 10}],
)
def test_nonsense_rules_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(QualityError):
        QualityRules(**kwargs)  # type: ignore[arg-type]


def test_effective_sample_size_suppresses_a_few_heavily_weighted_responses() -> None:
    n = np.array([40, 40, 40])
    cv = np.array([0.05, 0.05, 0.05])
    est = np.full(3, 70.0)
    got = grade(n, cv, est, n_eff=np.array([40.0, 30.0, 29.9]))
    assert got.tolist() == ["B", "B", "suppressed"]
    table = pd.DataFrame({"estimate": est, "cv": cv, "n": n, "deff": [1.0, 1.3, 1.4]})
    assert apply_rules(table)["grade"].tolist() == ["B", "B", "suppressed"]  # 40/1.4 < 30
    assert effective_n([10, 10, 1], [0.5, 2.0, np.nan]).tolist() == [10.0, 5.0, 1.0]
