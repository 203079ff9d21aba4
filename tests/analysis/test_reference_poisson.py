"""Log-linear (Poisson) regression agrees with R ``survey`` 4.1-1 ``svyglm``.

Data and numbers: tests/data/poisson, made by ``poisson_ref.R`` beside them (R 4.2.2): counts
from a stratified one-stage cluster sample with fpc, unequal weights and a PSU effect, two
rows with a missing ``x1``, a domain ``dom`` that misses some PSUs, and R's JKn replicate
weights of the design::

    d  <- svydesign(id=~psu, strata=~stratum, weights=~pw, fpc=~N_h, data=dat)
    rj <- as.svrepdesign(d, type="JKn")
    svyglm(y ~ x1 + x2 + f, d, family=poisson())        # and quasipoisson(): the same SEs
    svyglm(y ~ x1 + x2 + f, rj, family=quasipoisson())
    svyglm(y ~ x1 + x2, subset(d, dom == part), family=quasipoisson())   # part = "u", "v"
    svyglm(y ~ x1 + x2, subset(rj, dom == "v"), family=quasipoisson())

glm runs to machine precision (``epsilon=1e-300, maxit=60``; see the script), so the
coefficients, standard errors and ``df.residual`` agree to rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import SurveyDesign
from analysis.regression import RegressionError, regress

DATA = Path(__file__).resolve().parents[1] / "data" / "poisson"
EXACT = 1e-10
FORMULA = "y ~ x1 + x2 + C(f)"
R_TERMS = {"C(f)[T.l]": "fl", "C(f)[T.m]": "fm"}


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(DATA / "poisson_data.csv")


@pytest.fixture(scope="module")
def taylor(data: pd.DataFrame) -> SurveyDesign:
    return SurveyDesign(data, weights="pw", strata="stratum", psu="psu", fpc="N_h")


@pytest.fixture(scope="module")
def jkn(data: pd.DataFrame) -> SurveyDesign:
    replicates = pd.read_csv(DATA / "poisson_replicates.csv")
    return SurveyDesign(
        data,
        weights="pw",
        repweights=list(replicates["column"]),
        rep_method="jkn",
        rep_rscales=replicates["rscale"].to_numpy(),
        rep_scale=float(replicates["scale"].iloc[0]),
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(DATA / "poisson_reference.csv")


def _check(got: pd.DataFrame, reference: pd.DataFrame, case: str) -> None:
    expected = reference[reference["case"] == case].set_index("term")
    ours = got.assign(term=got["term"].replace(R_TERMS)).set_index("term").loc[expected.index]
    np.testing.assert_allclose(ours["estimate"], expected["estimate"], rtol=EXACT)
    np.testing.assert_allclose(ours["se"], expected["se"], rtol=EXACT)
    assert (ours["df"] == expected["df"]).all(), case


@pytest.mark.parametrize("family", ["poisson", "quasipoisson"])
def test_taylor_design(taylor, reference, family) -> None:
    got = regress(taylor, FORMULA, family=family)
    _check(got, reference, f"taylor_{family}")
    assert (got["dropped"] == 2).all() and (got["n"] == len(taylor.data) - 2).all()


def test_replicate_design_refits_every_replicate(jkn, reference) -> None:
    _check(regress(jkn, FORMULA, family="quasipoisson"), reference, "jkn_quasipoisson")


def test_domains_have_their_own_degrees_of_freedom(taylor, reference) -> None:
    """Domain ``v`` misses PSUs: R's df.residual is its own PSUs minus strata + 1 - p."""
    got = regress(taylor, "y ~ x1 + x2", family="quasipoisson", by="dom")
    for part in ("u", "v"):
        _check(got[got["dom"] == part], reference, f"taylor_quasipoisson_dom_{part}")
    assert got.groupby("dom")["df"].first().tolist() == [14, 10]


def test_replicate_domains_have_the_rank_degrees_of_freedom(jkn, reference) -> None:
    """R: degf(subset(rj, dom == "v")) is the rank of the domain's replicate weights - 1."""
    got = regress(jkn, "y ~ x1 + x2", family="quasipoisson", by="dom")
    _check(got[got["dom"] == "v"], reference, "jkn_quasipoisson_dom_v")
    assert got.groupby("dom")["df"].first().tolist() == [14, 13]


def test_rates_and_non_integer_responses_are_fitted(taylor) -> None:
    """A quasi-likelihood: halving the response moves the intercept by log(1/2) only."""
    halved = taylor.data.assign(y=taylor.data["y"] / 2)
    design = SurveyDesign(halved, weights="pw", strata="stratum", psu="psu", fpc="N_h")
    got = regress(design, FORMULA, family="quasipoisson").set_index("term")
    base = regress(taylor, FORMULA, family="quasipoisson").set_index("term")
    shift = got["estimate"] - base["estimate"]
    assert shift["(Intercept)"] == pytest.approx(np.log(0.5), rel=1e-10)
    np.testing.assert_allclose(shift.drop("(Intercept)"), 0, atol=1e-10)
    slopes = ["x1", "x2", "C(f)[T.l]", "C(f)[T.m]"]
    np.testing.assert_allclose(got.loc[slopes, "se"], base.loc[slopes, "se"], rtol=1e-9)


def test_a_negative_count_is_an_error_naming_it(taylor) -> None:
    negative = taylor.data.assign(y=taylor.data["y"] - 1)
    design = SurveyDesign(negative, weights="pw", strata="stratum", psu="psu", fpc="N_h")
    with pytest.raises(RegressionError, match=r"expects a count .* negative values such as -1"):
        regress(design, FORMULA, family="poisson")
