"""The staff analysis API: regression, key drivers and small areas on a period's real export."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from litestar.testing import TestClient

from analysis import SurveyDesign
from analysis.regression import regress
from survey.context import AppContext
from survey.results.export import export_responses
from tests.survey.answer_builders import AnswerWorld

PERIOD = "1404-12"  # Esfand 1404: 2026-02-20 to 2026-03-20
DAY = date(2026, 3, 1)
# (agency, service, channel, province): responses, eligible transactions
CELLS = {
    ("TAX", "TAX-01", "in_person", "tehran"): (50, 3000),
    ("TAX", "TAX-01", "in_person", "fars"): (12, 900),
    ("TAX", "TAX-01", "online", "tehran"): (45, 5000),
    ("TAX", "TAX-01", "online", "isfahan"): (8, 700),
    ("EDU", "EDU-01", "online", "tehran"): (20, 800),
    ("EDU", "EDU-01", "online", "fars"): (6, 300),
    ("EDU", "EDU-01", "online", "isfahan"): (0, 250),  # transactions, nobody answered
}


def _answers(rng: np.random.Generator) -> dict[str, object]:
    """Overall satisfaction driven mostly by time and ease, a little by respect."""
    drivers = np.clip(np.rint(rng.normal(3.2, 1.1, size=6)), 1, 5).astype(int)
    time, respect, competence, information, fairness, ease = (int(v) for v in drivers)
    overall = 0.5 * time + 0.35 * ease + 0.15 * respect + rng.normal(0, 0.5)
    return {
        "q_overall": int(np.clip(np.rint(overall), 1, 5)),
        "q_time": time,
        "q_respect": respect,
        "q_competence": competence,
        "q_information": information,
        "q_fairness": fairness,
        "q_ease": ease,
        "q_outcome": 1,
        "q_next_steps": 1,
        "q_trust": 4,
        "q_improve": "",
    }


def _period(context: AppContext) -> AnswerWorld:
    world = AnswerWorld(context)
    rng = np.random.default_rng(9)
    for (agency, service, channel, province), (answered, eligible) in CELLS.items():
        stratum = {"agency": agency, "service": service, "channel": channel}
        world.frame_count(**stratum, province=province, day=DAY, eligible=eligible)
        for _ in range(answered):
            unit = world.invite(**stratum, province=province, day=DAY)
            world.respond(unit, _answers(rng))
    return world


def _headers(world: AnswerWorld, role: str = "statistician") -> dict[str, str]:
    return {"Authorization": f"Bearer {world.staff_key(role)}"}


def test_regression_matches_the_analysis_package_on_the_export(
    client: TestClient, context: AppContext
) -> None:
    world = _period(context)
    formula = "score_q_overall ~ score_q_time + score_q_ease + C(channel)"
    response = client.post(
        "/api/v1/analysis/regress",
        json={"period": PERIOD, "formula": formula},
        headers=_headers(world),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"]["text"] == "1404-12-01 (2026-02-20) to 1404-12-29 (2026-03-20)"
    assert body["responses"] == 141
    rows = {r["term"]: r for r in body["rows"]}
    assert set(rows) == {"(Intercept)", "C(channel)[T.online]", "score_q_time", "score_q_ease"}
    # the same numbers as the analysis package on the same export
    export = export_responses(context, date(2026, 2, 20), date(2026, 3, 20)).responses
    design = SurveyDesign(
        export.assign(province=export["province"].replace("", np.nan)),
        weights="weight",
        strata="stratum",
        fpc="N_h",
        lonely_psu="adjust",
    )
    expected = regress(design, formula).set_index("term")
    for term, row in rows.items():
        assert row["estimate"] == pytest.approx(expected.loc[term, "estimate"], rel=1e-12)
        assert row["se"] == pytest.approx(expected.loc[term, "se"], rel=1e-12)
    assert 0.35 < rows["score_q_time"]["estimate"] < 0.65  # the simulated effect, 0.5
    assert rows["score_q_time"]["p_value"] < 1e-6
    # by agency, and a logistic model of the satisfied flag
    by = client.post(
        "/api/v1/analysis/regress",
        json={"period": PERIOD, "formula": "satisfied ~ score_q_time", "family": "binomial",
              "by": "agency"},
        headers=_headers(world),
    )  # fmt: skip
    assert by.status_code == 200, by.text
    assert {r["agency"] for r in by.json()["rows"]} == {"EDU", "TAX"}


def test_bad_regressions_are_422_naming_the_problem(
    client: TestClient, context: AppContext
) -> None:
    world = _period(context)
    headers = _headers(world, "admin")

    def problem(body: dict[str, object]) -> dict[str, object]:
        response = client.post("/api/v1/analysis/regress", json=body, headers=headers)
        assert response.status_code == 422, response.text
        return response.json()["problems"][0]

    assert problem({"period": "1404-13", "formula": "index ~ score_q_time"})["field"] == "period"
    unknown = problem({"period": PERIOD, "formula": "index ~ waiting"})
    assert unknown["field"] == "formula" and "'waiting' is not a column" in unknown["message"]
    evil = problem({"period": PERIOD, "formula": "index ~ I(__import__('os').getpid())"})
    assert "'__import__' is not a column" in evil["message"]
    attribute = problem({"period": PERIOD, "formula": "index ~ I(score_q_time.sum())"})
    assert "operator '.'" in attribute["message"]
    assert "~" in problem({"period": PERIOD, "formula": "index"})["message"]
    family = problem({"period": PERIOD, "formula": "index ~ score_q_time", "family": "gamma"})
    assert family["field"] == "family" and "gamma" in family["message"]
    by = problem({"period": PERIOD, "formula": "index ~ score_q_time", "by": "planet"})
    assert by["field"] == "by"
    empty = problem({"period": "1404-10", "formula": "index ~ score_q_time"})
    assert "no completed responses in 1404-10" in empty["message"]
    assert problem({"period": PERIOD})["field"] == "formula"  # required


def test_key_drivers_nationally_and_for_one_agency(client: TestClient, context: AppContext) -> None:
    world = _period(context)
    response = client.get(
        "/api/v1/analysis/drivers",
        params={"period": PERIOD, "agency": "TAX", "replicates": 50, "seed": 3},
        headers=_headers(world),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["questionnaire"] == "core-transaction"
    assert body["outcome"] == "score_q_overall"
    # the index items other than the outcome are the default drivers
    assert body["drivers"] == [
        "score_q_time", "score_q_respect", "score_q_competence", "score_q_information",
        "score_q_fairness", "score_q_ease",
    ]  # fmt: skip
    rows = pd.DataFrame(body["rows"])
    assert set(rows["scope"]) == {"national", "domain"}
    assert set(rows["agency"].dropna()) == {"TAX"}  # EDU is left out
    national = rows[rows["scope"] == "national"].set_index("driver")
    assert national["importance"].sum() == pytest.approx(1.0)
    assert national["importance"].idxmax() == "score_q_time"  # the strongest simulated driver
    assert (national["ci_low"] <= national["importance"]).all()
    tax = rows[rows["scope"] == "domain"]
    assert (tax["n"] == 115).all() and (tax["note"] == "").all()
    # EDU has 26 responses: a note instead of importances, performance still given
    edu = client.get(
        "/api/v1/analysis/drivers",
        params={"period": PERIOD, "agency": "EDU", "driver": ["q_time", "q_ease"],
                "replicates": 20},
        headers=_headers(world),
    ).json()  # fmt: skip
    edu_rows = [r for r in edu["rows"] if r["scope"] == "domain"]
    assert edu["drivers"] == ["score_q_time", "score_q_ease"]
    assert all(r["note"].startswith("too_few_responses") for r in edu_rows)
    assert all(r["importance"] is None and r["performance"] is not None for r in edu_rows)


def test_bad_driver_requests_are_422(client: TestClient, context: AppContext) -> None:
    world = _period(context)
    headers = _headers(world)

    def problem(params: dict[str, object]) -> dict[str, object]:
        response = client.get("/api/v1/analysis/drivers", params=params, headers=headers)
        assert response.status_code == 422, response.text
        return response.json()["problems"][0]

    assert problem({"period": PERIOD, "driver": ["q_time", "q_nothing"]})["field"] == "driver"
    assert problem({"period": PERIOD, "agency": "MARS"})["field"] == "agency"
    assert problem({"period": PERIOD, "method": "magic"})["field"] == "method"
    assert problem({"period": PERIOD, "replicates": 1})["field"] == "replicates"
    assert problem({"period": "last year"})["field"] == "period"


def test_small_area_estimates_are_labelled_model_based(
    client: TestClient, context: AppContext
) -> None:
    world = _period(context)
    response = client.get(
        "/api/v1/analysis/small-areas", params={"period": PERIOD}, headers=_headers(world)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["area"] == ["agency", "province"] and body["parent"] == ["agency"]
    assert body["method"] == "REML" and body["sigma2_u"] >= 0
    assert [c["term"] for c in body["coefficients"]] == ["(Intercept)", "agency_index", "log_size"]
    cells = {(r["agency"], r["province"]): r for r in body["rows"]}
    assert set(cells) == {(a, p) for a, _, _, p in CELLS}
    big = cells[("TAX", "tehran")]  # 95 responses: the direct estimate passes
    assert big["direct_ok"] is True and big["model_based"] is False
    assert big["estimate"] == pytest.approx(big["direct"])
    small = cells[("EDU", "fars")]  # 6 responses: model-based, with its MSE
    assert small["direct_ok"] is False and small["model_based"] is True
    assert small["estimate"] == pytest.approx(small["eblup"]) and small["rmse"] > 0
    empty = cells[("EDU", "isfahan")]  # transactions but no responses: synthetic
    assert empty["n"] == 0 and empty["direct"] is None
    assert empty["estimate"] == pytest.approx(empty["synthetic"])
    assert empty["frame_count"] == 250
    assert body["model_based_cells"] == sum(r["model_based"] for r in body["rows"])
    assert "model-based" in body["label"]
    # bad options name the parameter
    bad = client.get(
        "/api/v1/analysis/small-areas",
        params={"period": PERIOD, "method": "OLS"},
        headers=_headers(world),
    )
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "method"
    bad = client.get(
        "/api/v1/analysis/small-areas",
        params={"period": PERIOD, "area": "district"},
        headers=_headers(world),
    )
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "area"


def test_only_statisticians_and_admins(client: TestClient, context: AppContext) -> None:
    world = AnswerWorld(context)
    url = f"/api/v1/analysis/small-areas?period={PERIOD}"
    assert client.get(url).status_code == 401
    for role in ("viewer", "agency"):
        key = world.staff_key(role, agency="TAX" if role == "agency" else None)
        response = client.get(url, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 403


def test_odd_requests_are_4xx_never_500(client: TestClient, context: AppContext) -> None:
    world = _period(context)
    headers = _headers(world, "admin")
    posts = [
        {"period": PERIOD, "formula": "index ~ score_q_time", "level": 2},
        {"period": PERIOD, "formula": "index ~ score_q_time", "by": [1, 2]},
        {"period": PERIOD, "formula": "index ~ ~ score_q_time"},
        {"period": PERIOD, "formula": "agency ~ score_q_time", "family": "binomial"},
        {"period": PERIOD, "formula": "index ~ score_q_time +"},
        {"period": 1404, "formula": "index ~ score_q_time"},
    ]
    for body in posts:
        response = client.post("/api/v1/analysis/regress", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["problems"][0]["message"]
    gets = [
        ("drivers", {"period": PERIOD, "method": "shapley", "driver": ["q_time"] * 13}),
        ("drivers", {"period": PERIOD, "outcome": "agency", "driver": ["q_time", "q_ease"]}),
        ("drivers", {"period": PERIOD, "questionnaire": "sms-short"}),
        ("drivers", {"period": PERIOD, "replicates": "many"}),
        ("small-areas", {"period": PERIOD, "variable": "agency"}),
        ("small-areas", {"period": PERIOD, "variable": "nothing"}),
        ("small-areas", {"period": PERIOD, "parent": "service"}),
        ("small-areas", {"period": PERIOD, "bootstrap": -1}),
        ("small-areas", {"period": PERIOD, "max_cv": 0}),
    ]  # fmt: skip
    for path, params in gets:
        response = client.get(f"/api/v1/analysis/{path}", params=params, headers=headers)
        assert response.status_code in (400, 422), (path, params, response.text)


def _hostile_formulas(marker: str) -> list[str]:
    """Formulas that make patsy run a command when handed to it as text (the first is the one
    the attack report used); each would create `marker`."""
    command = f"touch {marker}"
    return [
        f"score_q_overall ~ f\"{{__import__('os').system('{command}')}}\"",
        f"score_q_overall ~ I(__import__('os').system('{command}'))",
        f"score_q_overall ~ score_q_time + I(__import__('subprocess').call(['touch', '{marker}']))",
        f"score_q_overall ~ I((lambda: __import__('os').system('{command}'))())",
        f"score_q_overall ~ score_q_time.__class__.__base__ + I(open('{marker}', 'w'))",
        f"score_q_overall ~ C(channel, __import__('os').system('{command}'))",
        f"score_q_overall ~ ｉmport('{marker}')",  # fullwidth look-alike
        "score_q_overall ~ " + " + ".join(["score_q_time"] * 2000),  # very long
        "score_q_overall ~ " + "(" * 500 + "score_q_time" + ")" * 500,  # very deep
    ]


def test_hostile_formulas_never_run_and_are_refused_naming_a_token(
    client: TestClient, context: AppContext, tmp_path: Path
) -> None:
    world = _period(context)
    marker = tmp_path / "ran"
    for formula in _hostile_formulas(str(marker)):
        response = client.post(
            "/api/v1/analysis/regress",
            json={"period": PERIOD, "formula": formula},
            headers=_headers(world),
        )
        assert response.status_code == 422, (formula[:60], response.text)
        problem = response.json()["problems"][0]
        assert problem["field"] == "formula" and "formula" in problem["message"]
        assert len(problem["message"]) < 400  # the echoed input is cut short
        assert not marker.exists(), formula[:60]
    # The same payload handed straight to patsy does run: the check above is not empty.
    export = export_responses(context, date(2026, 2, 20), date(2026, 3, 20)).responses
    design = SurveyDesign(export, weights="weight", strata="stratum", fpc="N_h")
    with pytest.raises(Exception):  # noqa: B017 (patsy fails after evaluating the call)
        regress(design, f"score_q_overall ~ I(__import__('os').system('touch {marker}'))")
    assert marker.exists()


def test_plain_formulas_still_fit_after_the_grammar(
    client: TestClient, context: AppContext
) -> None:
    world = _period(context)
    response = client.post(
        "/api/v1/analysis/regress",
        json={
            "period": PERIOD,
            "formula": "score_q_overall ~ center(score_q_time) * C(channel) + I(score_q_ease ** 2)",
        },
        headers=_headers(world),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    terms = {row["term"] for row in body["rows"]}
    assert "center(score_q_time)" in terms and "I(score_q_ease ** 2)" in terms
    assert body["formula_fitted"].startswith("score_q_overall ~ ")


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/api/v1/analysis/drivers", "seed=-1", "seed"),
        ("/api/v1/analysis/drivers", "seed=99999999999999999999", "seed"),
        ("/api/v1/analysis/small-areas", "seed=-1", "seed"),
        ("/api/v1/analysis/small-areas", "max_cv=nan", "max_cv"),
        ("/api/v1/analysis/small-areas", "min_n=-3", "min_n"),
    ],
)
def test_out_of_range_options_are_422_on_real_data(
    client: TestClient, context: AppContext, path: str, query: str, field: str
) -> None:
    world = _period(context)
    response = client.get(f"{path}?period={PERIOD}&{query}", headers=_headers(world))
    assert response.status_code == 422, response.text[:300]
    assert response.json()["problems"][0]["field"] == field
