"""A YAML alias bomb sent to the plan-design API is a quick 422, never a huge answer."""

from __future__ import annotations

import time

from litestar.testing import TestClient

from survey.context import AppContext
from tests.questionnaires.test_safe_yaml import BOMB
from tests.survey.admin_builders import EXAMPLE_PLAN, add_tax_agency, staff_token


def test_a_design_file_with_aliases_is_refused(client: TestClient, context: AppContext) -> None:
    add_tax_agency(context)
    started = time.perf_counter()
    response = client.post(
        "/api/v1/plans/simulations",
        json={"plan_yaml": EXAMPLE_PLAN, "design_yaml": BOMB},
        headers=staff_token(context, "statistician"),
    )
    assert time.perf_counter() - started < 5.0
    assert response.status_code == 422, response.text[:200]
    assert len(response.content) < 2_000
    message = response.json()["error"]
    assert "design file is not valid YAML" in message and "anchors (&a)" in message
