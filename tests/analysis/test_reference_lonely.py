"""Reproduce R ``survey`` with lonely PSUs: the four rules of ``survey.lonely.psu`` on a
Taylor design, in ``svyby`` domains, and in JKn replicate designs from ``as.svrepdesign``.

Data and R calls: ``tests/data/lonely/lonely_ref.R`` (R 4.2.2, survey 4.1-1), which wrote
``sample.csv`` and ``reference.csv``. The design: strata S1-S6 with 3, 1, 2, 4, 1, 3 PSUs
(S2 and S5 lonely); domain "b" has no row in a lonely stratum, "c" has rows in S2, S4 and
one PSU of S6, "a" is everywhere. Variant "fpc" adds population PSU counts (S3 is then
taken whole). For each rule::

    options(survey.lonely.psu=rule, survey.adjust.domain.lonely=FALSE)
    d <- svydesign(id=~psu, strata=~stratum, weights=~w, data=s[, fpc=~N])
    svymean(~y, d); svytotal(~y, d); svyby(~y, ~g, d, svymean); svyby(~y, ~g, d, svytotal)
    rd <- as.svrepdesign(d, type="JKn", mse=mse); svymean(~y, rd); svyby(~y, ~g, rd, svymean)
    degf(rd); ncol(rd$repweights$weights); rd$scale

Rule "adjust": survey 4.1 centres a lonely PSU's total at 0, survey >= 4.2 at the mean of
the PSU totals of the strata the (sub)sample has; the rows "adjust" hold the latter
(computed with 4.1's own ``svyrecvar`` on scores shifted by that mean, see the script), the
rows "adjust_r41" survey 4.1's output. ``survey.adjust.domain.lonely=TRUE`` changes nothing
for "certainty" and "remove" (rows "<rule>_domainlonely").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import SurveyDesign

DATA = Path(__file__).resolve().parents[1] / "data" / "lonely"
EXACT = 1e-9
RULES = ["certainty", "remove", "adjust", "average"]


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(DATA / "sample.csv")


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(DATA / "reference.csv").fillna({"domain": ""})


def make(sample: pd.DataFrame, variant: str, rule: str) -> SurveyDesign:
    fpc = "N" if variant == "fpc" else None
    return SurveyDesign(sample, weights="w", strata="stratum", psu="psu", fpc=fpc, lonely_psu=rule)


def rows(reference: pd.DataFrame, case: str, rule: str) -> pd.DataFrame:
    found = reference[(reference["case"] == case) & (reference["rule"] == rule)]
    assert len(found) > 0, (case, rule)
    return found


def estimate(design: SurveyDesign, statistic: str, domain: str) -> pd.Series:
    run = design.mean if statistic == "mean" else design.total
    table = run("y", by="g" if domain else None)
    return table[table["g"] == domain].iloc[0] if domain else table.iloc[0]


def check_rows(design: SurveyDesign, expected: pd.DataFrame) -> int:
    checked = 0
    for _, ref in expected[expected["statistic"].isin(["mean", "total"])].iterrows():
        row = estimate(design, ref["statistic"], ref["domain"])
        label = (ref["case"], ref["rule"], ref["domain"], ref["statistic"])
        assert row["estimate"] == pytest.approx(ref["estimate"], rel=EXACT), label
        assert row["se"] == pytest.approx(ref["se"], rel=EXACT), label
        checked += 1
    return checked


@pytest.mark.parametrize("variant", ["plain", "fpc"])
@pytest.mark.parametrize("rule", RULES)
def test_taylor_rules_whole_sample_and_domains(sample, reference, variant, rule):
    design = make(sample, variant, rule)
    expected = rows(reference, variant, rule)
    assert check_rows(design, expected) == 8  # mean and total, whole sample and 3 domains
    if rule != "adjust":
        assert design.degrees_of_freedom == expected["df"].dropna().iloc[0] == 8


@pytest.mark.parametrize("variant", ["plain", "fpc"])
@pytest.mark.parametrize("rule", ["certainty", "remove"])
def test_domain_lonely_option_changes_nothing_for_certainty_and_remove(
    sample, reference, variant, rule
):
    """R's survey.adjust.domain.lonely=TRUE only acts under "adjust" and "average"."""
    design = make(sample, variant, rule)
    assert check_rows(design, rows(reference, variant, f"{rule}_domainlonely")) == 8


def test_remove_is_certainty(sample):
    """R's "remove" gives the same variance as "certainty" (it only warns)."""
    remove, certainty = make(sample, "plain", "remove"), make(sample, "plain", "certainty")
    assert remove.lonely_psu == "remove"
    pd.testing.assert_frame_equal(remove.total("y", by="g"), certainty.total("y", by="g"))


def test_average_factor_is_computed_per_domain(sample):
    """Strata over strata with variance, counting only the strata a domain has rows in:
    "b" (no lonely stratum) 1, "c" (S2 lonely, S4, S6) 3/2, "a" (all six, two lonely) 6/4."""
    average = make(sample, "plain", "average").total("y", by="g").set_index("g")["se"]
    certainty = make(sample, "plain", "certainty").total("y", by="g").set_index("g")["se"]
    ratio = (average / certainty) ** 2
    assert ratio.to_dict() == pytest.approx({"a": 6 / 4, "b": 1.0, "c": 3 / 2}, rel=1e-12)


def test_adjust_centres_lonely_psus_at_the_mean_of_psu_totals(sample, reference):
    """survey >= 4.2 (and the package) centre a lonely PSU's total at the mean of the PSU
    totals; survey 4.1 (the Debian R here) at 0. Means agree (their scores sum to 0);
    totals differ by ``sum_lonely (t - m)^2 - t^2`` with ``m = T / (number of PSUs)``."""
    design = make(sample, "plain", "adjust")
    r41 = rows(reference, "plain", "adjust_r41").set_index(["domain", "statistic"])
    mean = design.mean("y").iloc[0]
    assert mean["se"] == pytest.approx(r41.loc[("", "mean"), "se"], rel=EXACT)
    total = design.total("y").iloc[0]
    psu_totals = (sample["w"] * sample["y"]).groupby(sample["psu"]).sum()
    lonely = psu_totals[["S2p1", "S5p1"]]
    grand = psu_totals.sum() / psu_totals.size
    r41_variance = r41.loc[("", "total"), "se"] ** 2
    expected = r41_variance + ((lonely - grand) ** 2 - lonely**2).sum()
    assert total["se"] ** 2 == pytest.approx(expected, rel=EXACT)
    assert total["se"] < r41.loc[("", "total"), "se"]  # 4,503 here against 4.1's 7,835


@pytest.mark.parametrize("variant", ["plain", "fpc"])
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("mse", [False, True])
def test_jkn_from_a_design_with_lonely_strata(sample, reference, variant, rule, mse):
    """as.svrepdesign(type="JKn"): no replicate for a lonely stratum ("certainty",
    "remove", "average" -- the last rescaling by PSUs / replicates), one extra replicate
    per lonely stratum for "adjust"; strata taken whole get no replicate."""
    design = make(sample, variant, rule).replicate("jkn", mse=mse)
    case = f"{variant}_jkn" + ("_mse" if mse else "")
    expected = rows(reference, case, rule)
    assert check_rows(design, expected) == 5  # mean, total, 3 domain means
    assert design.degrees_of_freedom == expected["df"].dropna().iloc[0]
    shape = expected[expected["statistic"] == "replicates"].iloc[0]
    assert design.replicate_weights.shape[1] == shape["estimate"]
    assert design._scheme.scale == pytest.approx(shape["se"], rel=1e-12)


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("mse", [False, True])
def test_r_svytotal_leaves_strata_taken_whole_out_of_replicate_totals(sample, reference, rule, mse):
    """R's svytotal (not svymean) on an as.svrepdesign design drops the rows of strata taken
    whole (S3) from the replicate totals but not from the full-sample total. The package
    uses the replicate weights as built (R's svymean does too); R's number is the package's
    computation on replicate totals without S3, centred as R centres them."""
    design = make(sample, "fpc", rule).replicate("jkn", mse=mse)
    case = "fpc_jkn" + ("_mse" if mse else "")
    ref = rows(reference, case, rule)
    ref = ref[ref["statistic"] == "total_selfrep"].iloc[0]
    outside = np.where(sample["stratum"] == "S3", 0.0, sample["y"].to_numpy())
    replicate_totals = design.replicate_weights.T @ outside
    full = float(design.weights @ sample["y"].to_numpy())
    centre = np.array([full]) if mse else np.array([replicate_totals.mean()])
    variance = design.replicate_variance(centre, replicate_totals[:, None])[0, 0]
    assert np.sqrt(variance) == pytest.approx(ref["se"], rel=EXACT)
    # dropping S3 shifts every replicate total alike (S3 keeps factor 1) unless an "adjust"
    # replicate rescales it; centred on the replicates' mean, a common shift cancels
    matches = rule != "adjust" and not mse
    assert bool(design.total("y").iloc[0]["se"] == pytest.approx(ref["se"], rel=EXACT)) is matches


def test_later_stages_apply_the_rules_across_the_stage(reference):
    """A two-stage design (fpc at both stages) whose PSU 2 has one sampled SSU of 5. R
    applies the rules within each PSU: "average" has nothing to average over (NaN) and 4.1's
    "adjust" centres that SSU's total at 0. The package applies them across the stage:
    "average" scales the stage-2 variance by its 4 strata (PSUs) over the 3 with variance,
    "adjust" centres the lonely SSU on the mean of the stage's 9 SSU totals."""
    two = pd.read_csv(DATA / "twostage.csv")
    ref = rows(reference, "twostage", "certainty").iloc[0]

    def total(rule: str) -> pd.Series:
        design = SurveyDesign(two, psu=["psu", "ssu"], fpc=["N1", "N2"], lonely_psu=rule)
        return design.total("y").iloc[0]

    certainty = total("certainty")
    assert (certainty["estimate"], certainty["se"]) == pytest.approx(
        (ref["estimate"], ref["se"]), rel=EXACT
    )
    assert total("remove")["se"] == pytest.approx(
        rows(reference, "twostage", "remove")["se"].iloc[0]
    )
    weights = SurveyDesign(two, psu=["psu", "ssu"], fpc=["N1", "N2"], lonely_psu="certainty")
    first_stage = (
        SurveyDesign(two.assign(w=weights.weights), weights="w", psu="psu", fpc="N1")
        .total("y")["se"]
        .iloc[0]
    )
    stage_two = certainty["se"] ** 2 - first_stage**2
    assert np.isnan(rows(reference, "twostage", "average")["se"].iloc[0])
    assert total("average")["se"] ** 2 == pytest.approx(first_stage**2 + 4 / 3 * stage_two)
    ssu_totals = weights.weights * two["y"].to_numpy()
    lonely, grand, scale = ssu_totals[two["psu"] == 2][0], ssu_totals.mean(), 4 / 10 * 4 / 5
    r41 = rows(reference, "twostage", "adjust_r41")["se"].iloc[0]
    expected = r41**2 - scale * lonely**2 + scale * (lonely - grand) ** 2
    assert total("adjust")["se"] ** 2 == pytest.approx(expected, rel=EXACT)


def test_every_reference_row_is_checked(reference):
    cases = (
        {
            (case, rule)
            for case in ["plain", "fpc"]
            for rule in [*RULES, "adjust_r41", "certainty_domainlonely", "remove_domainlonely"]
        }
        | {
            (f"{variant}_jkn{mse}", rule)
            for variant in ["plain", "fpc"]
            for mse in ["", "_mse"]
            for rule in RULES
        }
        | {("twostage", rule) for rule in ["certainty", "remove", "adjust_r41", "average"]}
    )
    assert set(map(tuple, reference[["case", "rule"]].drop_duplicates().to_numpy())) == cases
