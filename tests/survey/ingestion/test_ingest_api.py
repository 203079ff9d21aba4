"""POST /api/v1/transactions through the real app: authentication, parsing, statuses, limits."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from survey.context import AppContext
from tests.survey.builders import (
    AgencyFixture,
    add_agency,
    add_plan,
    add_staff,
    transaction_record,
)

URL = "/api/v1/transactions"


@pytest.fixture
def tax(context: AppContext) -> AgencyFixture:
    agency = add_agency(context, "TAX", ("TAX-01", "TAX-02"))
    add_agency(context, "SSO", ("SSO-01",))
    add_plan(context)
    return agency


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _count(context: AppContext, sql: str) -> int:
    with context.engine.connect() as connection:
        return int(connection.exec_driver_sql(sql).scalar_one())


def test_a_single_transaction_is_accepted(
    client: TestClient, tax: AgencyFixture, context: AppContext
) -> None:
    response = client.post(URL, json=transaction_record(1), headers=_auth(tax.key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "received": 1,
        "accepted": 1,
        "duplicates": 0,
        "rejected": 0,
        "no_plan": 0,
        "records": [{"index": 0, "status": "accepted", "external_id": "tx-1"}],
    }
    assert _count(context, "SELECT count(*) FROM service_transaction") == 1


def test_a_batch_reports_every_record_in_input_order(
    client: TestClient, tax: AgencyFixture
) -> None:
    batch = [transaction_record(n, service="TAX-02") for n in range(50)]
    response = client.post(URL, json=batch, headers=_auth(tax.key))
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 50
    assert [r["external_id"] for r in body["records"]] == [f"tx-{n}" for n in range(50)]
    assert {r["status"] for r in body["records"]} == {"accepted"}
    # The agency is never told which transactions were sampled.
    assert "sampled" not in response.text


def test_a_mixed_batch_keeps_the_valid_records_and_names_each_problem(
    client: TestClient, tax: AgencyFixture, context: AppContext
) -> None:
    batch = [
        transaction_record(1),
        transaction_record(2, phone="12"),
        transaction_record(3, channel="walk-in"),
        transaction_record(4, completed_at="2026-03-10T11:15:00"),
        transaction_record(5, service="SSO-01"),
        transaction_record(6, external_id=6),
        "not an object",
        transaction_record(7, province="atlantis", language="de"),
        transaction_record(8, colour="blue"),
        transaction_record(9, completed_at="2027-01-01T00:00:00Z"),
        transaction_record(10, phone="021 8877 6655"),
        transaction_record(11, service="TAX-02", province="fars", office="Shiraz 2", language="en"),
    ]
    response = client.post(URL, json=batch, headers=_auth(tax.key))
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 10)
    records = body["records"]
    assert [r["status"] for r in records] == ["accepted"] + ["rejected"] * 10 + ["accepted"]

    def problems(i: int) -> list[tuple[str | None, str]]:
        return [(p.get("field"), p["message"]) for p in records[i]["problems"]]

    assert problems(1) == [
        (
            "phone",
            "phone '12' is not a mobile number (it has 2 digits; expected e.g. 0912 345 6789)",
        )
    ]
    assert (
        problems(2)[0][0] == "channel"
        and "one of in_person, online, phone, kiosk" in problems(2)[0][1]
    )
    assert problems(3) == [
        (
            "completed_at",
            "completed_at must include a UTC offset (e.g. +03:30 or Z); got '2026-03-10T11:15:00'",
        )
    ]
    assert problems(4) == [("service", "service 'SSO-01' does not belong to agency 'TAX'")]
    assert problems(5) == [("external_id", "external_id must be a string; got number")]
    assert "must be a JSON object; got string" in problems(6)[0][1]
    assert [f for f, _ in problems(7)] == ["language", "province"]
    assert problems(8)[0][0] == "colour" and "unknown field 'colour'" in problems(8)[0][1]
    assert problems(9) == [
        (
            "completed_at",
            "completed_at '2027-01-01T00:00:00Z' is in the future (the service's clock reads "
            "2026-03-10T09:30Z; 15 minutes of clock difference are allowed)",
        )
    ]
    assert problems(10) == [("phone", "phone (11 digits) is not a mobile number")]
    assert _count(context, "SELECT count(*) FROM service_transaction") == 2
    assert "8877" not in response.text


def test_the_same_batch_twice_is_stored_and_counted_once(
    client: TestClient, tax: AgencyFixture, context: AppContext
) -> None:
    batch = [transaction_record(n) for n in range(20)] + [transaction_record(3)]
    first = client.post(URL, json=batch, headers=_auth(tax.key)).json()
    second = client.post(URL, json=batch, headers=_auth(tax.key)).json()
    assert (first["accepted"], first["duplicates"]) == (20, 1)
    assert (second["accepted"], second["duplicates"]) == (0, 21)
    assert {r["status"] for r in second["records"]} == {"duplicate"}
    assert _count(context, "SELECT count(*) FROM service_transaction") == 20
    assert _count(context, "SELECT sum(reported) FROM frame_count") == 20
    assert _count(context, "SELECT sum(duplicates) FROM frame_count") == 22


def test_an_agency_may_reuse_another_agencys_external_ids(
    client: TestClient, tax: AgencyFixture, context: AppContext
) -> None:
    sso = add_agency(context, "SSO2", ("SSO2-01",))
    client.post(URL, json=transaction_record(1), headers=_auth(tax.key))
    response = client.post(
        URL, json=transaction_record(1, service="SSO2-01"), headers=_auth(sso.key)
    )
    assert response.json()["accepted"] == 1


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "missing Authorization header"),
        ({"Authorization": "Bearer agk_not-a-key"}, 401, "unknown or revoked API key"),
        ({"Authorization": "Basic abc"}, 401, "must be 'Bearer <key>'"),
    ],
)
def test_missing_or_unknown_keys_get_401(
    client: TestClient, tax: AgencyFixture, headers: dict[str, str], status: int, message: str
) -> None:
    response = client.post(URL, json=transaction_record(1), headers=headers)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_staff_keys_cannot_report_transactions(
    client: TestClient, tax: AgencyFixture, context: AppContext
) -> None:
    token = add_staff(context, "stat", "statistician")
    response = client.post(URL, json=transaction_record(1), headers=_auth(token))
    assert response.status_code == 403
    assert "agency's API key" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"external_id": "x", ', 400, "not valid JSON"),
        (b"", 400, "the request body is empty"),
        (b'"a string"', 422, "got a JSON str"),
        (b"42", 422, "got a JSON int"),
        (b"[]", 422, "the batch is empty"),
    ],
)
def test_malformed_bodies_get_a_clear_4xx(
    client: TestClient, tax: AgencyFixture, body: bytes, status: int, message: str
) -> None:
    response = client.post(
        URL, content=body, headers={**_auth(tax.key), "Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert message in response.json()["error"]


def test_a_single_rejected_transaction_gets_422_naming_the_fields(
    client: TestClient, tax: AgencyFixture
) -> None:
    record = transaction_record(1, phone=9121234567, channel=None)
    response = client.post(URL, json=record, headers=_auth(tax.key))
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "the transaction was rejected"
    assert body["problems"] == [
        {"field": "channel", "message": "channel is required"},
        {"field": "phone", "message": "phone must be a string; got number"},
    ]


def test_an_oversize_batch_gets_413_naming_the_limit(
    client: TestClient, tax: AgencyFixture, context: AppContext
) -> None:
    limit = context.settings.max_batch_size
    body = json.dumps([transaction_record(n) for n in range(limit + 1)])
    response = client.post(
        URL, content=body, headers={**_auth(tax.key), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert f"at most {limit} transactions; got {limit + 1}" in response.json()["error"]
    assert _count(context, "SELECT count(*) FROM service_transaction") == 0


def test_sampled_units_hold_the_phone_encrypted_and_nothing_else_does(
    client: TestClient, tax: AgencyFixture, context: AppContext
) -> None:
    # TAX-01 in person is sampled at rate 1.0 under the example plan.
    batch = [transaction_record(n, phone=f"+98 912 555 {n:04d}") for n in range(5)]
    batch.append(transaction_record(99, service="TAX-02", channel="online"))
    assert client.post(URL, json=batch, headers=_auth(tax.key)).status_code == 200
    with context.engine.connect() as connection:
        units = connection.execute(
            sa.text(
                "SELECT phone_ciphertext, phone_hash, inclusion_probability, stratum, "
                "questionnaire_qid, mode, status FROM sampled_unit ORDER BY id"
            )
        ).all()
    assert len(units) >= 5
    first = units[0]
    assert context.vault.decrypt(first.phone_ciphertext) == "+989125550000"
    assert first.phone_hash == context.vault.phone_hash("+989125550000")
    assert first.inclusion_probability == 1.0
    assert first.stratum == "agency=TAX|service=TAX-01|channel=in_person"
    assert (first.questionnaire_qid, first.mode, first.status) == (
        "core-transaction",
        "sms_link",
        "pending",
    )
