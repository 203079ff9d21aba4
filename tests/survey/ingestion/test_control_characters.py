"""A NUL byte (which PostgreSQL cannot store) or another control character in a record's
identifiers rejects that record alone: the valid records of its batch are kept, on SQLite and
PostgreSQL alike, and the answer is never a 500."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from survey.context import AppContext
from tests.survey.builders import add_agency, add_plan, ingestion_totals, transaction_record


@pytest.mark.parametrize(
    ("field", "value"),
    [("external_id", "tx\x00nul"), ("external_id", "tx\nline"), ("office", "branch\x00 7")],
)
def test_a_control_character_rejects_its_record_only(
    client: TestClient, context: AppContext, field: str, value: str
) -> None:
    agency = add_agency(context, "TAX", ("TAX-01",))
    add_plan(context)
    batch = [transaction_record(1), {**transaction_record(2), field: value}, transaction_record(3)]
    response = client.post(
        "/api/v1/transactions", json=batch, headers={"Authorization": f"Bearer {agency.key}"}
    )
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    [problem] = body["records"][1]["problems"]
    assert problem["field"] == field and "control character" in problem["message"]
    assert ingestion_totals(context).stored == 2


@pytest.mark.parametrize(
    ("when", "says"),
    [
        ("0001-01-01T00:00:00+00:00", "before 2000"),
        ("1405-08-01T11:00:00+03:30", "looks like a Solar Hijri date"),
        ("0001-01-01T00:00:00+14:00", "before 2000"),  # no UTC time, and before 2000 anyway
        ("9999-12-31T23:59:59-12:00", "out of range"),
    ],
)
def test_implausible_times_reject_their_record_only(
    client: TestClient, context: AppContext, when: str, says: str
) -> None:
    """A back-dated record once broke the /ingestion page for good; one whose time has no
    UTC equivalent cost its whole batch."""
    agency = add_agency(context, "TAX", ("TAX-01",))
    add_plan(context)
    batch = [transaction_record(1), {**transaction_record(2), "completed_at": when}]
    response = client.post(
        "/api/v1/transactions", json=batch, headers={"Authorization": f"Bearer {agency.key}"}
    )
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert says in body["records"][1]["problems"][0]["message"]
