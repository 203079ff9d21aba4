"""Edge cases officials meet in real exports: tiny domains, lonely strata, missing answers,
zero weights. Each has a defined, documented result, never a crash or a silent absurdity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import LonelyPSUError, SurveyDesign


@pytest.fixture
def frame() -> pd.DataFrame:
    """3 strata x 5 PSUs x 4 rows; rows 5-9 carry zero weight."""
    rng = np.random.default_rng(3)
    n = 60
    frame = pd.DataFrame(
        {
            "stratum": np.repeat([0, 1, 2], 20),
            "psu": np.arange(n) // 4,
            "w": rng.uniform(1, 5, n),
            "y": rng.normal(50, 10, n).round(),
            "yes": rng.integers(0, 2, n),
            "agency": rng.choice(list("abc"), n),
            "N_h": 200,
        }
    )
    frame.loc[5:9, "w"] = 0.0
    return frame


def design(frame: pd.DataFrame, **options: object) -> SurveyDesign:
    return SurveyDesign(frame, weights="w", strata="stratum", psu="psu", fpc="N_h", **options)


@pytest.mark.parametrize("statistic", ["mean", "proportion", "total"])
def test_zero_weight_rows_are_a_domain_of_the_whole_design(frame, statistic):
    """Zero weights leave the design's strata and PSUs intact (R keeps them: a subset()):
    the estimate is that of the domain of positive-weight rows in the full design."""
    zero = design(frame)
    full = design(frame.assign(w=frame["w"].where(frame["w"] > 0, 7.0), kept=frame["w"] > 0))
    variable = "yes" if statistic == "proportion" else "y"
    got = getattr(zero, statistic)(variable, method="wald").iloc[0]
    want = getattr(full, statistic)(variable, by="kept", method="wald").iloc[1]
    assert got["n"] == want["n"] == 55  # zero-weight rows are not counted as responses
    for column in ("estimate", "se", "ci_low", "ci_high", "df"):
        assert got[column] == pytest.approx(want[column], rel=1e-12), column


def test_a_domain_with_only_zero_weights_has_no_estimate(frame):
    frame = frame.assign(agency=np.where(frame["w"] == 0, "z", frame["agency"]))
    table = design(frame).mean("y", by="agency").set_index("agency")
    assert table.loc["z", "n"] == 0
    assert table.loc["z", ["estimate", "se", "ci_low", "ci_high"]].isna().all()
    assert table.drop(index="z")["se"].gt(0).all()
    total = design(frame).total("y", by="agency").set_index("agency")
    assert total.loc["z", "estimate"] == 0 and total.loc["z", "se"] == 0


def test_a_single_response_domain(frame):
    """One response: its mean has a zero linearised SE and no design effect; the publication
    proportion interval stays honest (Korn-Graubard on n = 1), not a point."""
    frame = frame.assign(agency=np.where(np.arange(len(frame)) == 0, "one", frame["agency"]))
    d = design(frame)
    mean = d.mean("y", by="agency").set_index("agency").loc["one"]
    assert mean["n"] == 1 and mean["se"] == 0 and np.isnan(mean["deff"])
    share = d.proportion("yes", by="agency").set_index("agency").loc["one"]
    assert share["ci_high"] - share["ci_low"] >= 0.97


def test_a_domain_in_fewer_psus_than_strata_has_no_r_interval(frame):
    """R's degrees of freedom for a domain are its PSUs minus its strata; 0 leaves R's t
    interval undefined (qt(p, 0) is NaN), so "wald" gives NaN, never a huge number; the
    publication default floors the df at 1 and gives an interval."""
    tiny = np.isin(np.arange(len(frame)), [0, 24])  # one PSU in each of two strata
    frame = frame.assign(agency=np.where(tiny, "tiny", frame["agency"]))
    d = design(frame)
    for statistic, variable in (("mean", "y"), ("proportion", "yes")):
        wald = getattr(d, statistic)(variable, by="agency", method="wald").set_index("agency")
        assert wald.loc["tiny", "df"] == 0
        assert wald.loc["tiny", ["ci_low", "ci_high"]].isna().all(), statistic
        public = getattr(d, statistic)(variable, by="agency").set_index("agency")
        assert public.loc["tiny", "df"] == 1
        assert np.isfinite(public.loc["tiny", ["ci_low", "ci_high"]].astype(float)).all()
    beta = d.proportion("yes", by="agency", method="beta").set_index("agency")
    assert beta.loc["tiny", ["ci_low", "ci_high"]].isna().all()


def test_missing_answers_and_missing_domains(frame):
    """dropna=True estimates over the rows with an answer; a domain where nobody answered
    has n 0 and no estimate; rows without a domain value belong to no domain."""
    frame = frame.assign(
        y=frame["y"].where(frame["agency"] != "c"),
        agency=frame["agency"].where(frame.index != 0),
    )
    d = design(frame)
    table = d.mean("y", by="agency", dropna=True).set_index("agency")
    assert list(table.index) == ["a", "b", "c"]
    assert table.loc["c", "n"] == 0 and np.isnan(table.loc["c", "estimate"])
    answered = frame["y"].notna() & frame["agency"].notna() & (frame["w"] > 0)
    assert table["n"].sum() == answered.sum()
    quantile = d.quantile("y", 0.5, by="agency", dropna=True).set_index("agency")
    assert np.isnan(quantile.loc["c", "estimate"]) and quantile.loc["a", "n"] > 0
    # the whole-sample mean of the answers equals the mean over the rows that have one
    kept = frame[frame["y"].notna()]
    assert d.mean("y", dropna=True)["estimate"].iloc[0] == pytest.approx(
        np.average(kept["y"], weights=kept["w"])
    )


@pytest.mark.parametrize("rule", ["certainty", "adjust", "average"])
def test_lonely_stratum_rules_for_taylor_and_replicates(frame, rule):
    """A stratum with one PSU: an error by default; each rule gives a finite SE. A JKn design
    made from it follows R's jknweights (tests/analysis/test_reference_lonely.py): no
    replicate for the lonely stratum under "certainty", the same replicates rescaled by
    PSUs / replicates under "average", one more replicate under "adjust"."""
    lonely = frame.assign(psu=np.where(frame["stratum"] == 2, 99, frame["psu"]))
    with pytest.raises(LonelyPSUError, match="first: 2"):
        design(lonely)
    d = design(lonely, lonely_psu=rule)
    certainty = design(lonely, lonely_psu="certainty").mean("y")["se"].iloc[0]
    se = d.mean("y")["se"].iloc[0]
    assert np.isfinite(se) and se > 0
    if rule == "certainty":
        assert se == certainty
    else:
        assert se > certainty  # adjust and average add a contribution for the lonely stratum
    jackknife = d.replicate("jkn")
    # one replicate per PSU of the 2 other strata; R's degf is their rank (10 - 2 + 1) - 1
    certain = design(lonely, lonely_psu="certainty").replicate("jkn")
    assert certain.degrees_of_freedom == 8
    se_certain = certain.mean("y")["se"].iloc[0]
    se_jackknife = jackknife.mean("y")["se"].iloc[0]
    if rule == "certainty":
        assert se_jackknife == pytest.approx(se_certain)
    elif rule == "average":  # 11 PSUs, 10 replicates
        assert se_jackknife == pytest.approx(se_certain * np.sqrt(11 / 10))
    else:  # a replicate that drops the lonely PSU
        assert jackknife.degrees_of_freedom == 9 and se_jackknife > se_certain
