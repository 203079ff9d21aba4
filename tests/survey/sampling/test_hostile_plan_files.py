"""Plan files that attack the parser: an alias bomb, control characters, huge values. Each is
a quick 422 naming the problem, never a large answer, a long wait or a 500."""

from __future__ import annotations

import time

import pytest
from litestar.testing import TestClient

from survey.context import AppContext
from tests.questionnaires.test_safe_yaml import BOMB
from tests.survey.admin_builders import EXAMPLE_PLAN, add_tax_agency, staff_token

YAML = {"Content-Type": "application/yaml"}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (BOMB.encode(), "anchors (&a) are not allowed"),
        (EXAMPLE_PLAN.encode() + b"\nextra: *rates\n", "aliases (*rates) are not allowed"),
        (b"\x00", "unacceptable character #x0000"),
        (b"name: \x07bell\n", "unacceptable character #x0007"),
        (b"default_rate: !!float half\n", "a value cannot be read"),
        (b"starts: 2026-13-01\n", "expected a month from 01 to 12; got '2026-13-01'"),
        (b"starts: 1405-12-30\n", "Solar Hijri Esfand 1405 has 29 days"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_hostile_plans_are_422_naming_the_problem(
    client: TestClient, context: AppContext, body: bytes, says: str
) -> None:
    add_tax_agency(context)
    headers = {**staff_token(context, "statistician"), **YAML}
    for path in ("/api/v1/plans/validate", "/api/v1/plans"):
        started = time.perf_counter()
        response = client.post(path, content=body, headers=headers)
        assert time.perf_counter() - started < 5.0
        assert response.status_code == 422, (path, response.text[:300])
        assert len(response.content) < 4_000
        assert says in response.text, response.text[:300]
