"""The satisfaction index: weighted mean of 0-100 scores and shares per scale point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import SurveyDesign, VariableError


@pytest.fixture
def answers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stratum": [1, 1, 1, 2, 2, 2],
            "w": [1.0, 1.0, 2.0, 3.0, 3.0, 1.0],
            "agency": ["a", "a", "b", "b", "a", "b"],
            "q1": [100, 50, np.nan, 0, 75, 100],
            "q2": [100, 0, 50, 50, np.nan, 100],
        }
    )


def test_index_from_items(answers):
    design = SurveyDesign(answers, weights="w", strata="stratum")
    table = design.index(["q1", "q2"], by="agency").set_index("agency")
    # respondent indices: a -> 100 (w1), 25 (w1), 75 (w3); b -> 50 (w2), 25 (w3), 100 (w1)
    assert table.loc["a", "estimate"] == pytest.approx((100 + 25 + 3 * 75) / 5)
    assert table.loc["b", "estimate"] == pytest.approx((2 * 50 + 3 * 25 + 100) / 6)
    # shares of answers pooled over items, weighted: agency a has answers
    # 100,100 (w1), 50,0 (w1), 75 (w3) -> total weight 7
    assert table.loc["a", "share_100"] == pytest.approx(2 / 7)
    assert table.loc["a", "share_75"] == pytest.approx(3 / 7)
    assert table.loc["a", "share_0"] == pytest.approx(1 / 7)
    shares = table[[c for c in table.columns if c.startswith("share_")]]
    assert shares.sum(axis=1).to_numpy() == pytest.approx([1.0, 1.0])
    assert {"se", "ci_low", "ci_high", "df", "n", "deff", "cv"} <= set(table.columns)


def test_index_column_matches_mean(answers):
    design = SurveyDesign(answers.assign(index=answers["q2"]), weights="w", strata="stratum")
    table = design.index("index", points=[0, 50, 100])
    expected = design.mean("index", dropna=True)
    assert table["estimate"].iloc[0] == pytest.approx(expected["estimate"].iloc[0])
    assert table["se"].iloc[0] == pytest.approx(expected["se"].iloc[0])
    assert list(table.columns[-3:]) == ["share_0", "share_50", "share_100"]


def test_scores_outside_0_100_are_rejected(answers):
    design = SurveyDesign(answers.assign(q1=answers["q1"] * 2), weights="w", strata="stratum")
    with pytest.raises(VariableError, match=r"0\.\.100"):
        design.index(["q1", "q2"])


def test_a_computed_index_column_gets_no_share_per_value(answers):
    """The export's index column (a mean of items) takes many values: no share columns,
    unless points are named; points that nobody chose have share 0."""
    rng = np.random.default_rng(1)
    many = pd.concat([answers] * 10, ignore_index=True)
    many["index"] = rng.uniform(0, 100, len(many)).round(2)
    design = SurveyDesign(many, weights="w", strata="stratum")
    table = design.index("index", by="agency")
    assert not [c for c in table.columns if c.startswith("share_")]
    named = design.index(["q1", "q2"], by="agency", points=[0, 25, 50, 75, 100])
    assert (named["share_25"] == 0).all()
    shares = named[[f"share_{p}" for p in (0, 25, 50, 75, 100)]]
    assert shares.sum(axis=1).to_numpy() == pytest.approx([1.0, 1.0])
