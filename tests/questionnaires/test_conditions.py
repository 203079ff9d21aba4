"""Display conditions: one meaning, whether evaluated for one response or for many."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from questionnaires import Condition

FRAME = pd.DataFrame(
    {
        "q": [1, 2, 3, 4, 5, np.nan, "na", "", "3"],
        "m": ["1 3", "2", "", None, "na", "3", "1", "2 3", "1 2"],
        "t": ["slow", "", None, "na", "ok", "x", "y", "", "z"],
    }
)

CONDITIONS = [
    {"item": "q", "op": "eq", "value": 3},
    {"item": "q", "op": "ne", "value": 3},
    {"item": "q", "op": "ge", "value": 4},
    {"item": "q", "op": "lt", "value": 2},
    {"item": "q", "op": "in", "values": [1, 5]},
    {"item": "q", "op": "not_in", "values": [1, 5]},
    {"item": "q", "op": "answered"},
    {"item": "m", "op": "in", "values": [3]},
    {"item": "m", "op": "not_in", "values": [3]},
    {"item": "m", "op": "answered"},
    {"item": "t", "op": "answered"},
    {"all": [{"item": "q", "op": "ge", "value": 2}, {"item": "m", "op": "in", "values": [2]}]},
    {"any": [{"item": "q", "op": "eq", "value": 1}, {"item": "t", "op": "answered"}]},
    {"item": "absent", "op": "answered"},
]


@pytest.mark.parametrize("spec", CONDITIONS)
def test_mask_agrees_with_holds(spec):
    condition = Condition.model_validate(spec)
    one_by_one = [condition.holds(row) for row in FRAME.to_dict("records")]
    assert condition.mask(FRAME).tolist() == one_by_one


def test_missing_and_not_applicable_make_comparisons_false():
    ne = Condition(item="q", op="ne", value=3)
    assert ne.holds({"q": 2}) is True
    assert ne.holds({}) is False
    assert ne.holds({"q": "na"}) is False
    assert Condition(item="q", op="not_in", values=(1,)).holds({"q": None}) is False


def test_expected_values_by_hand():
    mask = Condition.model_validate({"item": "m", "op": "in", "values": [3]}).mask(FRAME)
    assert mask.tolist() == [True, False, False, False, False, True, False, True, False]
    answered = Condition(item="q", op="answered").mask(FRAME)
    assert answered.tolist() == [True] * 5 + [False, False, False, True]


@pytest.mark.parametrize(
    "spec",
    [
        {"item": "q"},
        {"item": "q", "op": "eq"},
        {"item": "q", "op": "in", "value": 1},
        {"item": "q", "op": "answered", "value": 1},
        {"all": [], "any": []},
        {"all": [{"item": "q", "op": "answered"}], "item": "q"},
    ],
)
def test_malformed_conditions_are_refused(spec):
    with pytest.raises(ValueError):
        Condition.model_validate(spec)
