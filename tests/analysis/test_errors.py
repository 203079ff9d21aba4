"""Every clear error: bad input is reported with the field, what was expected and found."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import (
    AnalysisError,
    DesignError,
    LonelyPSUError,
    MethodError,
    SurveyDesign,
    UnknownColumnError,
    VariableError,
    WeightError,
    WeightingError,
)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "stratum": [1, 1, 2, 2, 3, 3],
            "w": [10.0, 10.0, 5.0, 5.0, 2.0, 2.0],
            "N_h": [20, 20, 10, 10, 4, 4],
            "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "yes": [0, 1, 1, 0, 1, 1],
            "agency": ["a", "a", "b", "b", "a", "b"],
        }
    )


def test_unknown_column_names_the_column(frame):
    with pytest.raises(UnknownColumnError, match="strata: column 'nope'"):
        SurveyDesign(frame, weights="w", strata="nope")
    design = SurveyDesign(frame, weights="w", strata="stratum")
    with pytest.raises(UnknownColumnError, match="mean: column 'x'"):
        design.mean("x")
    with pytest.raises(UnknownColumnError, match="by: column 'region'"):
        design.mean("y", by="region")


def test_missing_weights(frame):
    with pytest.raises(WeightError, match="got neither"):
        SurveyDesign(frame, strata="stratum")
    with pytest.raises(WeightError, match="1 missing"):
        SurveyDesign(frame.assign(w=[1, 2, np.nan, 4, 5, 6]), weights="w")


def test_negative_weights(frame):
    with pytest.raises(WeightError, match="non-negative weights, got -5 at row 2"):
        SurveyDesign(frame.assign(w=[1, 2, -5, 4, 5, 6]), weights="w")


def test_lonely_psu_fails_by_default_and_names_the_stratum(frame):
    lonely = frame.iloc[:5]
    with pytest.raises(LonelyPSUError, match=r"only one PSU \(first: 3\).*lonely_psu"):
        SurveyDesign(lonely, weights="w", strata="stratum")


@pytest.mark.parametrize("rule", ["adjust", "average", "certainty"])
def test_lonely_psu_rules(frame, rule):
    lonely = frame.iloc[:5]
    design = SurveyDesign(lonely, weights="w", strata="stratum", lonely_psu=rule)
    se = design.total("y")["se"].iloc[0]
    full = SurveyDesign(lonely.iloc[:4], weights="w", strata="stratum").total("y")["se"].iloc[0]
    if rule == "certainty":
        assert se == pytest.approx(full)
    elif rule == "average":
        assert se == pytest.approx(full * np.sqrt(3 / 2))
    else:
        assert se > full


def test_proportion_needs_zero_one(frame):
    design = SurveyDesign(frame, weights="w", strata="stratum")
    with pytest.raises(VariableError, match=r"'y' must hold 0/1 or True/False, got 5 other"):
        design.proportion("y")
    with pytest.raises(VariableError, match="must be numeric"):
        design.proportion("agency")


def test_missing_values_need_dropna(frame):
    design = SurveyDesign(frame.assign(y=[1, np.nan, 3, 4, 5, 6]), weights="w", strata="stratum")
    with pytest.raises(VariableError, match=r"1 missing values.*dropna=True"):
        design.mean("y")
    assert design.mean("y", dropna=True)["n"].iloc[0] == 5


def test_unknown_methods(frame):
    design = SurveyDesign(frame, weights="w", strata="stratum")
    with pytest.raises(MethodError, match="method: expected one of"):
        design.proportion("yes", method="clopper")
    with pytest.raises(MethodError, match="method: expected one of"):
        design.mean("y", method="beta")
    with pytest.raises(MethodError, match="lonely_psu"):
        SurveyDesign(frame, weights="w", lonely_psu="drop")
    with pytest.raises(MethodError, match="replicate: method"):
        design.replicate("brr")
    with pytest.raises(MethodError, match="level"):
        design.mean("y", level=95)


def test_design_option_errors(frame):
    with pytest.raises(DesignError, match="one value per stratum"):
        SurveyDesign(
            frame.assign(N_h=[20, 21, 10, 10, 4, 4]), weights="w", strata="stratum", fpc="N_h"
        )
    with pytest.raises(DesignError, match="smaller than the 2 units"):
        SurveyDesign(frame.assign(N_h=1.5), weights="w", strata="stratum", fpc="N_h")
    with pytest.raises(DesignError, match="jk1: the design is stratified"):
        SurveyDesign(frame, weights="w", strata="stratum").replicate("jk1")
    with pytest.raises(DesignError, match="JKn replicate weights need"):
        SurveyDesign(frame, weights="w", repweights=["w"], rep_method="jkn")


def test_weighting_errors(frame):
    design = SurveyDesign(frame, weights="w", strata="stratum")
    with pytest.raises(WeightingError, match=r"sample cell\(s\) \['b'\].*no population count"):
        design.poststratify("agency", {"a": 10})
    with pytest.raises(WeightingError, match=r"population cell\(s\) \['c'\].*no sampled rows"):
        design.poststratify("agency", {"a": 10, "b": 5, "c": 1})
    with pytest.raises(WeightingError, match="different population sizes"):
        design.rake({"agency": {"a": 10, "b": 5}, "stratum": {1: 1, 2: 1, 3: 1}})
    with pytest.raises(WeightingError, match="no respondents"):
        design.adjust_nonresponse("yes", "y")  # each row its own class: some without any


def test_errors_share_one_base(frame):
    with pytest.raises(AnalysisError):
        SurveyDesign(frame, weights="nope")


def test_design_is_immutable(frame):
    design = SurveyDesign(frame, weights="w", strata="stratum")
    with pytest.raises(AttributeError, match="immutable"):
        design.lonely_psu = "adjust"
    with pytest.raises(ValueError, match="read-only"):
        design.weights[0] = 1.0
