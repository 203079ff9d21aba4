"""Sampling plans over the staff HTTP API: YAML in, every problem out, versions listed."""

from __future__ import annotations

from litestar.testing import TestClient

from survey.context import AppContext
from tests.survey.admin_builders import EXAMPLE_PLAN, add_tax_agency, staff_token

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
