"""Reproduce R ``survey`` on domains of replicate-weight designs: degrees of freedom and
proportion intervals (``svyciprop``) per domain.

Data and R calls: ``tests/data/replicate_domains/replicate_domains_ref.R`` (R 4.2.2,
survey 4.1-1), which wrote ``sample.csv`` (a stratified cluster sample, domains ``dom``
a, b, c and "t" with two respondents, and 40 bootstrap replicate weights ``rw1..rw40``) and
``reference.csv``. Designs::

    jkn      <- as.svrepdesign(svydesign(id=~psu, strata=~stratum, weights=~w, data=s), type="JKn")
    boot     <- svrepdesign(data=s, repweights="rw[0-9]+", weights=~w, type="bootstrap",
                            combined.weights=TRUE)          # and boot_mse: mse=TRUE
    sub <- subset(D, dom == k)                              # per domain k
    svyciprop(~yes, sub, method=M)   # M = logit, beta, mean, xlogit; df = degf(sub)
    m <- svymean(~y, sub); confint(m, df=degf(sub))         # SE as svyby(~y, ~dom, D, svymean)

R's ``degf(sub)`` is the rank of the domain's replicate weights minus 1 (1 for "t", not the
whole design's 12), and ``svyciprop(method="logit")`` refits ``svyglm(yes ~ 1,
quasibinomial)`` in every replicate: the replicate variance of ``logit(p)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import SurveyDesign

DATA = Path(__file__).resolve().parents[1] / "data" / "replicate_domains"
EXACT = 1e-8  # R's logit refits stop at glm's convergence rule: observed 1.2e-9


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(DATA / "sample.csv")


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(DATA / "reference.csv").fillna({"domain": ""})


@pytest.fixture(scope="module")
def designs(sample) -> dict[str, SurveyDesign]:
    taylor = SurveyDesign(sample, weights="w", strata="stratum", psu="psu")
    columns = {"weights": "w", "repweights": "rw[0-9]+", "rep_method": "bootstrap"}
    return {
        "jkn": taylor.replicate("jkn"),
        "boot": SurveyDesign(sample, **columns),
        "boot_mse": SurveyDesign(sample, **columns, mse=True),
    }


def result_row(table: pd.DataFrame, domain: str) -> pd.Series:
    return table[table["dom"] == domain].iloc[0] if domain else table.iloc[0]


def assert_matches(row: pd.Series, ref: pd.Series) -> None:
    label = tuple(ref[["design", "domain", "statistic", "method"]])
    for column in ["estimate", "se", "ci_low", "ci_high"]:
        assert row[column] == pytest.approx(ref[column], rel=EXACT, abs=1e-14), (label, column)
    assert row["df"] == ref["df"], label


@pytest.mark.parametrize("name", ["jkn", "boot", "boot_mse"])
@pytest.mark.parametrize("method", ["logit", "beta", "mean", "xlogit"])
def test_proportions_per_domain(designs, reference, name, method):
    design = designs[name]
    expected = reference[
        (reference["design"] == name)
        & (reference["statistic"] == "proportion")
        & (reference["method"] == method)
    ]
    whole = design.proportion("yes", method=method)
    by_domain = design.proportion("yes", by="dom", method=method)
    checked = 0
    for _, ref in expected.iterrows():
        if name == "jkn" and method == "logit" and ref["domain"] == "t":
            continue  # R's refits diverge there: test_logit_with_a_replicate_at_zero_or_one
        table = by_domain if ref["domain"] else whole
        assert_matches(result_row(table, ref["domain"]), ref)
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize("name", ["jkn", "boot", "boot_mse"])
def test_means_per_domain_with_r_degrees_of_freedom(designs, reference, name):
    design = designs[name]
    expected = reference[(reference["design"] == name) & (reference["statistic"] == "mean")]
    whole = design.mean("y", method="wald")
    by_domain = design.mean("y", by="dom", method="wald")
    for _, ref in expected.iterrows():
        assert_matches(result_row(by_domain if ref["domain"] else whole, ref["domain"]), ref)
    assert len(expected) == 5


def test_a_domain_with_two_respondents_has_one_degree_of_freedom(designs):
    """The whole design's df is 12; the two respondents of "t" give rank 2, so t(1) as R,
    not t(12). The publication default keeps its own rule (PSUs minus strata, at least 1)."""
    for design in designs.values():
        assert design.degrees_of_freedom == 12
        wald = design.mean("y", by="dom", method="wald").set_index("dom")
        assert wald.loc["t", "df"] == 1 and wald.loc["a", "df"] == 12
        publication = design.mean("y", by="dom").set_index("dom")
        assert publication.loc["t", "df"] == 1


def test_logit_refits_replicates_and_xlogit_stays_the_delta_method(designs):
    """On a replicate design "logit" and "xlogit" differ (R: svyglm refits against the
    delta method); on a Taylor design they coincide (an intercept-only model)."""
    boot = designs["boot"].proportion("yes", by="dom", method="logit")
    delta = designs["boot"].proportion("yes", by="dom", method="xlogit")
    assert not np.allclose(boot["ci_low"], delta["ci_low"], rtol=1e-4, equal_nan=True)


def test_logit_with_a_replicate_at_zero_or_one(designs, reference):
    """Domain "t" (answers 0 and 1 in two PSUs): every JKn replicate that drops one PSU has
    p = 0 or 1, an infinite logit, so the interval is (0, 1). R's glm refits diverge there
    and give (0, NaN)."""
    row = result_row(designs["jkn"].proportion("yes", by="dom", method="logit"), "t")
    ref = reference[
        (reference["design"] == "jkn")
        & (reference["domain"] == "t")
        & (reference["method"] == "logit")
    ].iloc[0]
    assert (row["ci_low"], row["ci_high"]) == (0.0, 1.0)
    assert ref["ci_low"] == 0.0 and np.isnan(ref["ci_high"])
    assert row["estimate"] == pytest.approx(ref["estimate"], rel=EXACT)


def test_replicates_without_the_domain_are_left_out(designs, reference):
    """Some bootstrap replicates draw neither PSU of "t": its mean is undefined there and,
    as R's svrVar (na.omit), those replicates are left out rather than making the SE NaN."""
    design = designs["boot"]
    weights = design.replicate_weights[design.data["dom"].to_numpy() == "t"]
    assert (weights.sum(axis=0) == 0).any()
    row = result_row(design.mean("y", by="dom", method="wald"), "t")
    ref = reference[
        (reference["design"] == "boot")
        & (reference["domain"] == "t")
        & (reference["statistic"] == "mean")
    ].iloc[0]
    assert row["se"] == pytest.approx(ref["se"], rel=EXACT) and np.isfinite(row["se"])


def test_domain_df_is_the_rank_of_the_domains_replicate_weights():
    """R's definition checked directly, on a bootstrap with more PSUs than replicates per
    domain: "pairs" holds 8 whole strata of 2 PSUs (each stratum's counts sum to 1 in every
    replicate: rank 9 of 10 replicates), "large" PSUs of 2 big strata (full rank 10)."""
    rng = np.random.default_rng(7)
    strata = np.concatenate([np.repeat(np.arange(8), 2), np.repeat([8, 9], 30)])
    frame = pd.DataFrame(
        {
            "stratum": strata,
            "w": rng.uniform(1, 3, strata.size),
            "y": rng.normal(size=strata.size),
            "part": np.where(strata < 8, "pairs", "large"),
        }
    )
    design = SurveyDesign(frame, weights="w", strata="stratum").replicate(
        "bootstrap", replicates=10, seed=3
    )
    table = design.mean("y", by="part", method="wald").set_index("part")
    for part in ["pairs", "large"]:
        rows = design.replicate_weights[frame["part"].to_numpy() == part]
        assert table.loc[part, "df"] == np.linalg.matrix_rank(rows) - 1
    assert table["df"].to_dict() == {"large": 9, "pairs": 8}
