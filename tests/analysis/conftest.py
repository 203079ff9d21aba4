"""Shared fixtures: the R ``api`` samples and the R reference results (tests/data/api)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis import SurveyDesign

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def api_reference() -> pd.DataFrame:
    return pd.read_csv(DATA / "api" / "api_reference.csv").set_index("id")


@pytest.fixture(scope="session")
def apistrat() -> pd.DataFrame:
    return pd.read_csv(DATA / "api" / "apistrat.csv")


@pytest.fixture(scope="session")
def apiclus1() -> pd.DataFrame:
    return pd.read_csv(DATA / "api" / "apiclus1.csv")


@pytest.fixture(scope="session")
def dstrat(apistrat: pd.DataFrame) -> SurveyDesign:
    """svydesign(id=~1, strata=~stype, weights=~pw, data=apistrat, fpc=~fpc)"""
    return SurveyDesign(apistrat, weights="pw", strata="stype", fpc="fpc")


@pytest.fixture(scope="session")
def dclus1(apiclus1: pd.DataFrame) -> SurveyDesign:
    """svydesign(id=~dnum, weights=~pw, data=apiclus1, fpc=~fpc)"""
    return SurveyDesign(apiclus1, weights="pw", psu="dnum", fpc="fpc")


@pytest.fixture(scope="session")
def dclus2() -> SurveyDesign:
    """svydesign(id=~dnum+snum, fpc=~fpc1+fpc2, data=apiclus2)"""
    data = pd.read_csv(DATA / "api" / "apiclus2.csv")
    return SurveyDesign(data, psu=["dnum", "snum"], fpc=["fpc1", "fpc2"])


@pytest.fixture(scope="session")
def dsrs() -> SurveyDesign:
    """svydesign(id=~1, fpc=~fpc, data=apisrs)"""
    return SurveyDesign(pd.read_csv(DATA / "api" / "apisrs.csv"), fpc="fpc")
