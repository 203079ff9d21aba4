"""Scoring against values computed by hand, including not-applicable and missing answers.

The test questionnaire's index is q_overall (likert5, weight 2), q_recommend (rating0_10,
offers "na") and q_staffed (yes_no); min_items 2; satisfied = q_overall >= 4.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from questionnaires import AnswerError, Questionnaire, load_library, score, score_response

NA = "na"


@pytest.fixture
def questionnaire(base) -> Questionnaire:
    return Questionnaire.from_dict(base)


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "q_overall": [5, 3, np.nan, 1, 4, None],
            "q_recommend": [8, NA, 10, 0, None, None],
            "q_staffed": [1, 2, None, "", 1, None],
            "q_why": [None, "slow", None, None, None, None],
            "agency": ["a", "b", "c", "d", "e", "f"],  # non-item columns are ignored
        },
        index=[10, 11, 12, 13, 14, 15],
    )


# (score_q_overall, score_q_recommend, score_q_staffed, index, satisfied), by hand:
EXPECTED = [
    (100, 80, 100, (2 * 100 + 80 + 100) / 4, 1),  # all answered
    (50, None, 0, (2 * 50 + 0) / 3, 0),  # "na" left out of the mean and its weight
    (None, 100, None, None, None),  # one index item < min_items 2 -> index missing
    (0, 0, None, 0.0, 0),  # "" is missing
    (75, None, 100, (2 * 75 + 100) / 3, 1),
    (None, None, None, None, None),  # nothing answered
]


def test_scores_match_hand_computed_values(questionnaire):
    result = score(questionnaire, frame())
    assert list(result.columns) == [
        "score_q_overall",
        "score_q_recommend",
        "score_q_staffed",
        "index",
        "satisfied",
    ]
    assert list(result.index) == [10, 11, 12, 13, 14, 15]
    assert all(dtype == np.float64 for dtype in result.dtypes)
    for row, expected in zip(result.itertuples(index=False), EXPECTED, strict=True):
        for got, want in zip(row, expected, strict=True):
            if want is None:
                assert math.isnan(got)
            else:
                assert got == pytest.approx(want, rel=1e-12)


def test_likert_and_rating_maps():
    sms = load_library()["sms-short"]
    answers = pd.DataFrame({"q_overall": [1, 2, 3, 4, 5], "q_respect": [5] * 5, "q_speed": [1] * 5})
    result = score(sms, answers)
    assert result["score_q_overall"].tolist() == [0, 25, 50, 75, 100]
    assert result["satisfied"].tolist() == [0, 0, 0, 1, 1]


def test_single_response(questionnaire):
    result = score_response(questionnaire, {"q_overall": 3, "q_recommend": NA, "q_staffed": 2})
    assert result == {
        "score_q_overall": 50.0,
        "score_q_recommend": None,
        "score_q_staffed": 0.0,
        "index": pytest.approx(100 / 3),
        "satisfied": 0.0,
    }


def test_single_response_with_nothing_scoreable(questionnaire):
    result = score_response(questionnaire, {"q_why": "text only"})
    assert result["index"] is None and result["satisfied"] is None


def test_answers_read_back_from_csv(questionnaire, tmp_path):
    path = tmp_path / "answers.csv"
    frame().to_csv(path, index=False)
    result = score(questionnaire, pd.read_csv(path))
    assert result["index"].round(6).tolist()[:2] == [95.0, round(100 / 3, 6)]


def test_string_answers_from_a_form(questionnaire):
    answers = pd.DataFrame(
        {"q_overall": ["5", "2"], "q_recommend": ["7", NA], "q_staffed": ["2", "1"]},
        dtype="string",
    )
    result = score(questionnaire, answers)
    assert result["index"].tolist() == pytest.approx([(200 + 70 + 0) / 4, (2 * 25 + 100) / 3])


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("q_overall", 7, "not possible codes"),
        ("q_overall", 0, "not possible codes"),
        ("q_overall", 3.5, "not possible codes"),
        ("q_recommend", "x", "not possible codes"),
        ("q_recommend", 11, "not possible codes"),
        ("q_staffed", 3, "not possible codes"),
        ("q_overall", NA, "not offered"),
    ],
)
def test_impossible_answers_are_refused(questionnaire, column, value, words):
    answers = frame()
    answers[column] = answers[column].astype(object)
    answers.loc[12, column] = value
    with pytest.raises(AnswerError, match=words) as caught:
        score(questionnaire, answers)
    assert column in str(caught.value) and "12" in str(caught.value)


def test_missing_index_column_is_an_error(questionnaire):
    with pytest.raises(AnswerError, match="q_staffed"):
        score(questionnaire, frame().drop(columns="q_staffed"))


def test_not_a_dataframe(questionnaire):
    with pytest.raises(TypeError, match="DataFrame"):
        score(questionnaire, {"q_overall": [1]})  # type: ignore[arg-type]


def test_compound_satisfied_rule(base):
    base["scoring"]["satisfied"] = {
        "all": [
            {"item": "q_overall", "op": "ge", "value": 4},
            {"item": "q_staffed", "op": "eq", "value": 1},
        ]
    }
    result = score(Questionnaire.from_dict(base), frame())
    # row 13: q_staffed missing -> NaN, even though q_overall = 1 already fails the rule
    np.testing.assert_array_equal(result["satisfied"], [1, 0, np.nan, np.nan, 1, np.nan])


def test_many_responses_at_once(questionnaire):
    rng = np.random.default_rng(7)
    n = 20_000
    answers = pd.DataFrame(
        {
            "q_overall": rng.integers(1, 6, n),
            "q_recommend": rng.integers(0, 11, n),
            "q_staffed": rng.integers(1, 3, n),
        }
    )
    result = score(questionnaire, answers)
    expected = (
        2 * (answers["q_overall"] - 1) * 25
        + answers["q_recommend"] * 10
        + np.where(answers["q_staffed"] == 1, 100, 0)
    ) / 4
    np.testing.assert_allclose(result["index"], expected)
    np.testing.assert_array_equal(result["satisfied"], (answers["q_overall"] >= 4).astype(float))


def test_empty_and_nullable_inputs():
    sms = load_library()["sms-short"]
    empty = score(sms, pd.DataFrame(columns=["q_overall", "q_respect", "q_speed"]))
    assert empty.empty and list(empty.columns)[-2:] == ["index", "satisfied"]
    nullable = pd.DataFrame(
        {
            "q_overall": pd.array([None, 3], dtype="Int64"),
            "q_respect": [pd.NA, "2"],
            "q_speed": [None, 5],
        }
    )
    result = score(sms, nullable)
    assert np.isnan(result["index"].iloc[0])
    assert result["index"].iloc[1] == pytest.approx((50 + 25 + 100) / 3)


def test_boolean_columns_are_not_answers():
    sms = load_library()["sms-short"]
    answers = pd.DataFrame({"q_overall": [True], "q_respect": [1], "q_speed": [1]})
    with pytest.raises(AnswerError, match="True/False"):
        score(sms, answers)
