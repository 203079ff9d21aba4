"""JSON nested a thousand levels and more is a 422 naming the problem, never a 500; the next
ordinary request is served as usual."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from survey.context import AppContext
from tests.survey.builders import add_agency, add_plan, transaction_record


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1200 + b"]" * 1200,
        b"[" * 100_000 + b"]" * 100_000,
        b'[{"x":' * 3000 + b"1" + b"}]" * 3000,
    ],
)
def test_deep_json_is_refused_and_valid_batches_still_go_through(
    client: TestClient, context: AppContext, body: bytes
) -> None:
    agency = add_agency(context, "TAX", ("TAX-01",))
    add_plan(context)
    headers = {"Authorization": f"Bearer {agency.key}", "Content-Type": "application/json"}
    refused = client.post("/api/v1/transactions", content=body, headers=headers)
    assert refused.status_code == 422
    assert "nested too deeply" in refused.json()["error"]
    fine = client.post("/api/v1/transactions", json=[transaction_record(1)], headers=headers)
    assert fine.status_code == 200 and fine.json()["accepted"] == 1
