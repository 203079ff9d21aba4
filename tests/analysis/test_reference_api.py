"""Reproduce R ``survey`` 4.1-1 on the ``api`` samples (tests/data/api/api_reference.csv).

The R code (tests/data/api_ref.R) that made each reference row::

    dstrat <- svydesign(id=~1, strata=~stype, weights=~pw, data=apistrat, fpc=~fpc)
    dclus1 <- svydesign(id=~dnum, weights=~pw, data=apiclus1, fpc=~fpc)
    dclus2 <- svydesign(id=~dnum+snum, fpc=~fpc1+fpc2, data=apiclus2)
    dsrs   <- svydesign(id=~1, fpc=~fpc, data=apisrs)
    svymean(~api00, d, deff=TRUE); degf(d); confint(m, df=degf(dstrat))
    svytotal(~enroll, d)                      # na.rm=TRUE for clus2
    svyratio(~api.stu, ~enroll, d)
    svyby(~api00, ~stype, d, svymean)
    svyciprop(~I(sch.wide=="Yes"), d, method=M)   # M = logit, likelihood, beta, mean, xlogit
    postStratify(dclus1, ~stype, data.frame(stype=c("E","H","M"), Freq=c(4421,755,1018)))
    rake(dclus1, list(~stype, ~sch.wide), list(pop.types, data.frame(sch.wide=c("No","Yes"),
         Freq=c(1072,5122))))
    calibrate(dclus1, ~stype+api99, c(`(Intercept)`=6194, stypeH=755, stypeM=1018,
              api99=3914069))
    as.svrepdesign(dclus1, type="JK1"); as.svrepdesign(dstrat, type="JKn")
    svyquantile(~api00, dstrat, c(0.5), ci=TRUE)
"""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import SurveyDesign

EXACT = 1e-8


def check(row: pd.Series, reference: pd.Series, columns: tuple[str, ...], rel: float = EXACT):
    for column in columns:
        assert row[column] == pytest.approx(float(reference[column]), rel=rel), column


@pytest.mark.parametrize("name", ["strat", "clus1", "clus2", "srs"])
def test_mean_api00(name, request, api_reference):
    """svymean(~api00, d, deff=TRUE); degf(d)"""
    design: SurveyDesign = request.getfixturevalue(f"d{name}")
    row = design.mean("api00", method="wald").iloc[0]
    reference = api_reference.loc[f"{name}_mean_api00"]
    check(row, reference, ("estimate", "se"))
    if not pd.isna(reference["deff"]):
        check(row, reference, ("deff",))
    if not pd.isna(reference["df"]):
        assert row["df"] == float(reference["df"]) == design.degrees_of_freedom


def test_strat_mean_t_interval(dstrat, api_reference):
    """confint(svymean(~api00, dstrat), df=degf(dstrat))"""
    row = dstrat.mean("api00", method="wald").iloc[0]
    check(row, api_reference.loc["strat_mean_api00_ci_t"], ("ci_low", "ci_high"))


@pytest.mark.parametrize("name", ["strat", "clus1", "clus2"])
def test_total_enroll(name, request, api_reference):
    """svytotal(~enroll, d) (na.rm=TRUE for clus2, which has a missing enroll)"""
    design: SurveyDesign = request.getfixturevalue(f"d{name}")
    row = design.total("enroll", dropna=True).iloc[0]
    check(row, api_reference.loc[f"{name}_total_enroll"], ("estimate", "se"))


@pytest.mark.parametrize("name", ["strat", "clus1"])
def test_ratio(name, request, api_reference):
    """svyratio(~api.stu, ~enroll, d)"""
    design: SurveyDesign = request.getfixturevalue(f"d{name}")
    row = design.ratio("api.stu", "enroll").iloc[0]
    check(row, api_reference.loc[f"{name}_ratio_apistu_enroll"], ("estimate", "se"))


@pytest.mark.parametrize("name", ["strat", "clus1"])
def test_by_stype(name, request, api_reference):
    """svyby(~api00, ~stype, d, svymean)"""
    design: SurveyDesign = request.getfixturevalue(f"d{name}")
    table = design.mean("api00", by="stype")
    assert list(table["stype"]) == ["E", "H", "M"]
    for _, row in table.iterrows():
        check(
            row, api_reference.loc[f"{name}_by_stype_mean_api00_{row['stype']}"], ("estimate", "se")
        )
