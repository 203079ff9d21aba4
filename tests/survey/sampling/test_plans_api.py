"""Sampling plans over the staff HTTP API: YAML in, every problem out, versions listed."""

from __future__ import annotations

import pytest
import yaml
from litestar.testing import TestClient

from survey.context import AppContext
from tests.survey.admin_builders import EXAMPLE_PLAN, add_tax_agency, staff_token
from tests.survey.answer_builders import AnswerWorld
from tests.survey.results.test_plan_proposals import _history as history

YAML = {"Content-Type": "application/yaml"}


def test_post_a_plan_as_yaml_and_list_versions(client: TestClient, context: AppContext) -> None:
    add_tax_agency(context)
    headers = {**staff_token(context, "statistician"), **YAML}
    response = client.post("/api/v1/plans", content=EXAMPLE_PLAN.encode(), headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["version"], body["name"], body["in_force"]) == (1, "example", True)
    assert "seed" not in body and body["source"] == EXAMPLE_PLAN
    later = client.post(
        "/api/v1/plans?starts=2099-01-01", content=EXAMPLE_PLAN.encode(), headers=headers
    )
    assert later.status_code == 201 and later.json()["in_force"] is False
    listing = client.get("/api/v1/plans", headers=staff_token(context, "viewer"))
    assert listing.status_code == 200
    assert [(p["version"], p["in_force"]) for p in listing.json()["plans"]] == [
        (2, False),
        (1, True),
    ]
    assert listing.json()["today"] == "2026-03-10"
    shown = client.get("/api/v1/plans/1", headers=headers).json()
    assert shown["questionnaires"][1] == {
        "service": "TAX-02",
        "questionnaire": "sms-short",
        "version": 1,
        "mode": "sms_dialog",
    }
    assert client.get("/api/v1/plans/7", headers=headers).status_code == 404


def test_a_bad_plan_is_422_with_every_problem(client: TestClient, context: AppContext) -> None:
    add_tax_agency(context)
    headers = {**staff_token(context, "admin"), **YAML}
    text = EXAMPLE_PLAN.replace("rate: 1.0}", "rate: 1.5}").replace("TAX-02", "TAX-99")
    response = client.post("/api/v1/plans", content=text.encode(), headers=headers)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "<request body>: the sampling plan has 2 problems"
    assert body["problems"] == [
        {"field": "rates[0].rate", "message": "must be between 0 and 1, got 1.5"},
        {"field": "questionnaires[1].service", "message": "no service 'TAX-99' in the registry"},
    ]
    response = client.post("/api/v1/plans/validate", content=EXAMPLE_PLAN.encode(), headers=headers)
    assert response.status_code == 200 and response.json()["valid"] is True
    assert client.get("/api/v1/plans", headers=headers).json()["plans"] == []


def test_plans_need_the_right_role(client: TestClient, context: AppContext) -> None:
    add_tax_agency(context)
    assert (
        client.post("/api/v1/plans", content=EXAMPLE_PLAN.encode(), headers=YAML).status_code == 401
    )
    viewer = {**staff_token(context, "viewer"), **YAML}
    assert (
        client.post("/api/v1/plans", content=EXAMPLE_PLAN.encode(), headers=viewer).status_code
        == 403
    )
    operator = staff_token(context, "agency", username="op", agency="TAX")
    assert client.get("/api/v1/plans", headers=operator).status_code == 403


# ----------------------------------------------------------- the sample-design workflow


def _bearer(world: AnswerWorld, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.staff_key(role)}"}


def test_propose_simulate_and_apply_through_the_api(
    client: TestClient, context: AppContext
) -> None:
    world = history(context)
    headers = _bearer(world, "statistician")
    asked = {"period": "1405-Q1", "target_moe": 5, "by": ["agency"], "cost_per_part": 1.5}
    response = client.post("/api/v1/plans/proposals", json=asked, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"]["text"] == "1405-01-01 (2026-03-21) to 1405-03-31 (2026-06-21)"
    # The last complete months before the period, from the first day anything was reported.
    assert body["history"]["first_day"] == "2026-02-01"
    assert body["target"]["margin"] == 5.0 and body["target"]["by"] == ["agency"]
    domains = {(d["dimension"], d["domain"]): d for d in body["domains"]}
    tax = domains[("agency", "TAX")]
    assert tax["publishable"] is True and tax["note"] == "publishable"
    assert tax["assured_margin"] <= 5.0 + 1e-6 and tax["target"] == 5.0
    assert domains[("all", "all")]["target"] is None  # JSON null, not NaN
    totals = body["totals"]
    assert totals["invitations"] == pytest.approx(sum(s["invitations"] for s in body["strata"]))
    assert totals["cost"] == pytest.approx(totals["sms_parts"] * 1.5)
    assert body["plan_yaml"].startswith("# Sampling-plan proposal for 1405-Q1")
    # where each stratum's numbers came from (EDU online has no completes: assumed)
    assert sum(body["sources"]["response_rate"].values()) == len(body["strata"])
    assert body["sources"]["response_rate"]["assumed"] >= 1
    assert "stratum,agency,service" in body["inputs_csv"].splitlines()[0]
    # who asked for what, and when, is in the audit log
    audit_rows = client.get(
        "/api/v1/audit?action=plan.propose", headers=_bearer(world, "admin")
    ).json()["entries"]
    assert audit_rows[0]["actor"].startswith("staff:statistician-")
    assert audit_rows[0]["after"]["target"]["margin"] == 5.0
    assert audit_rows[0]["at"].startswith("2026-03-10")

    # staff halve every TAX rate, simulate the edited plan, then apply it
    plan = yaml.safe_load(body["plan_yaml"])
    for rule in plan["rates"]:
        if rule["agency"] == "TAX":
            rule["rate"] = rule["rate"] / 2
    edited = yaml.safe_dump(plan, sort_keys=False)
    simulated = client.post(
        "/api/v1/plans/simulations",
        json={"plan_yaml": edited, "design_yaml": body["design_yaml"], "periods": 100, "seed": 4},
        headers=headers,
    )
    assert simulated.status_code == 200, simulated.text
    result = simulated.json()
    assert result["simulation"]["periods"] == 100 and result["simulation"]["seed"] == 4
    sim_tax = next(d for d in result["simulation"]["domains"] if d["domain"] == "TAX")
    edited_tax = next(d for d in result["proposal"]["domains"] if d["domain"] == "TAX")
    assert edited_tax["margin"] == pytest.approx(tax["margin"] * 2**0.5, rel=0.02)
    assert 0 <= sim_tax["share_met"] <= 1 and sim_tax["margin_median"] > tax["margin"]
    applied = client.post("/api/v1/plans", content=edited.encode(), headers={**headers, **YAML})
    assert applied.status_code == 201, applied.text
    assert applied.json()["version"] == 2 and applied.json()["starts"] == "2026-03-21"


def test_proposal_problems_are_422_naming_the_field(
    client: TestClient, context: AppContext
) -> None:
    world = history(context)
    headers = _bearer(world, "admin")
    bad = {"period": "1405-Q5", "target_moe": -1, "by": ["planet"], "colour": "red"}
    response = client.post("/api/v1/plans/proposals", json=bad, headers=headers)
    assert response.status_code == 422
    fields = {p["field"] for p in response.json()["problems"]}
    assert fields == {"period", "target_moe", "by", "colour"}
    both = {"period": "1405-Q1", "target_moe": 3, "target_cv": 0.02}
    response = client.post("/api/v1/plans/proposals", json=both, headers=headers)
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "target_moe"
    quiet = {"period": "1405-Q1", "target_moe": 3, "history": "1403"}
    response = client.post("/api/v1/plans/proposals", json=quiet, headers=headers)
    assert response.status_code == 422
    assert "no eligible transactions" in response.json()["problems"][0]["message"]
    assert client.post("/api/v1/plans/proposals", content=b"[1", headers=headers).status_code == 422
    missing = client.post(
        "/api/v1/plans/simulations", json={"plan_yaml": "name: x\n"}, headers=headers
    )
    assert missing.status_code == 422 and missing.json()["problems"][0]["field"] == "design_yaml"
    viewer = _bearer(world, "viewer")
    assert client.post("/api/v1/plans/proposals", json=both, headers=viewer).status_code == 403
