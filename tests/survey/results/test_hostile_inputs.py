"""Inputs a hostile review found to give 500s or to break the service for everyone; each is
now a 4xx naming the problem."""

from __future__ import annotations

import re
import time

import pytest
from litestar.testing import TestClient

from survey.context import AppContext
from tests.survey.admin_builders import EXAMPLE_PLAN, add_tax_agency, staff_token
from tests.survey.results.test_analysis_api import PERIOD, _headers, _period

YAML = {"Content-Type": "application/yaml"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"formula": "score_q_overall ~ 0"}, "formula"),
        ({"formula": "score_q_overall ~ 1 - 1"}, "formula"),
        ({"formula": "score_q_overall ~ score_q_time", "by": ["agency", "agency"]}, "by"),
    ],
)
def test_regressions_without_terms_or_with_a_repeated_domain_are_422(
    client: TestClient, context: AppContext, body: dict[str, object], field: str
) -> None:
    world = _period(context)
    response = client.post(
        "/api/v1/analysis/regress", json={"period": PERIOD, **body}, headers=_headers(world)
    )
    assert response.status_code == 422, response.text[:300]
    assert response.json()["problems"][0]["field"] == field


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("expires_after_days: 7", "expires_after_days: 999999999"),
        ("reminder_after_hours: 48", "reminder_after_hours: 23000000000"),
        ("contact_rule_days: 90", "contact_rule_days: 1000000000"),
    ],
)
def test_plans_with_dates_beyond_the_calendar_are_refused(
    client: TestClient, context: AppContext, change: str, says: str
) -> None:
    """Such a plan once passed validation and then stopped every invitation (or every
    transaction) with an OverflowError."""
    add_tax_agency(context)
    assert change in EXAMPLE_PLAN
    plan = EXAMPLE_PLAN.replace(change, says)
    headers = {**staff_token(context, "statistician"), **YAML}
    for path in ("/api/v1/plans/validate", "/api/v1/plans"):
        response = client.post(path, content=plan.encode(), headers=headers)
        assert response.status_code == 422, (path, response.text[:300])
        assert says.split(":")[0] in response.text


def test_an_explicit_timestamp_tag_in_a_plan_is_a_422(
    client: TestClient, context: AppContext
) -> None:
    add_tax_agency(context)
    headers = {**staff_token(context, "statistician"), **YAML}
    tagged = re.sub(r"(?m)^starts: .*$", "starts: !!timestamp foo", EXAMPLE_PLAN)
    assert tagged != EXAMPLE_PLAN
    response = client.post("/api/v1/plans/validate", content=tagged.encode(), headers=headers)
    assert response.status_code == 422, response.text
    assert [p["field"] for p in response.json()["problems"]] == ["starts"], response.text


@pytest.mark.parametrize(
    "design",
    [
        "proposal: {strata: 5, target: {}}",
        "proposal: {target: {margin: 3}}",
        "proposal: {strata: [1, 2], target: {margin: abc}}",
        "when: !!timestamp foo\nproposal: {}",
        "when: 2026-13-45\nproposal: {}",
    ],
)
def test_malformed_design_files_are_422_naming_the_design(
    client: TestClient, context: AppContext, design: str
) -> None:
    add_tax_agency(context)
    response = client.post(
        "/api/v1/plans/simulations",
        json={"plan_yaml": EXAMPLE_PLAN, "design_yaml": design},
        headers=staff_token(context, "statistician"),
    )
    assert response.status_code == 422, response.text[:300]
    assert response.json()["problems"][0]["field"] == "design_yaml"


def test_an_audit_filter_beyond_the_calendar_is_a_422(
    client: TestClient, context: AppContext
) -> None:
    response = client.get(
        "/api/v1/audit",
        params={"since": "0001-01-01T00:00:00+14:00"},
        headers=staff_token(context, "admin"),
    )
    assert response.status_code == 422 and response.json()["problems"][0]["field"] == "since"


def test_a_formula_too_large_for_memory_is_refused_before_it_is_built(
    client: TestClient, context: AppContext
) -> None:
    """patsy builds the whole design matrix first: C(response_id) crossed with a few factors
    took 2.6 GB for 255 rows. The refusal comes from counting the categories instead."""
    world = _period(context)
    started = time.perf_counter()
    response = client.post(
        "/api/v1/analysis/regress",
        json={
            "period": PERIOD,
            "formula": "score_q_overall ~ C(response_id):C(agency):C(service):C(channel)",
        },
        headers=_headers(world),
    )
    assert time.perf_counter() - started < 10
    assert response.status_code == 422, response.text[:300]
    assert "coefficients" in response.json()["problems"][0]["message"]
    fine = client.post(
        "/api/v1/analysis/regress",
        json={
            "period": PERIOD,
            "formula": "score_q_overall ~ C(agency) + C(channel) * score_q_time",
        },
        headers=_headers(world),
    )
    assert fine.status_code == 200, fine.text[:300]
