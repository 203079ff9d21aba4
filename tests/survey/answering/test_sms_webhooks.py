"""SMS webhooks: signature refusal (missing, wrong, right), malformed bodies, delivery reports."""

from __future__ import annotations

import json

import pytest

from survey.answering.api import signature_for
from survey.models import InboundMessage, Invitation, OutboxMessage
from survey.outreach.dispatcher import Dispatcher, DispatchOptions
from survey.outreach.gateways.memory import MemoryGateway
from tests.survey.sms_builders import SmsWorld

PHONE = "+989121234567"
INBOUND = {"from": "09121234567", "to": "3000123", "text": "4", "message_id": "m-1"}


def _post(client, context, path: str, body: bytes, signature: str | None = "sign"):  # type: ignore[no-untyped-def]
    headers = {}
    if signature == "sign":
        headers["X-Survey-Signature"] = signature_for(context.settings.sms_webhook_secret, body)
    elif signature is not None:
        headers["X-Survey-Signature"] = signature
    return client.post(path, content=body, headers=headers)


@pytest.mark.parametrize("path", ["/api/v1/sms/inbound", "/api/v1/sms/status"])
@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "0" * 64,
        signature_for(b"another-secret", json.dumps(INBOUND).encode()),
        "not hex at all",
    ],
)
def test_unsigned_or_wrongly_signed_calls_get_401(client, context, path, signature) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps(INBOUND).encode()
    response = _post(client, context, path, body, signature)
    assert response.status_code == 401
    assert "X-Survey-Signature".lower() in response.json()["error"].lower()
    with context.sessions() as session:
        assert session.query(InboundMessage).count() == 0


def test_a_signature_over_a_different_body_is_refused(client, context) -> None:  # type: ignore[no-untyped-def]
    signed = json.dumps(INBOUND).encode()
    tampered = json.dumps({**INBOUND, "text": "11"}).encode()
    signature = signature_for(context.settings.sms_webhook_secret, signed)
    assert _post(client, context, "/api/v1/sms/inbound", tampered, signature).status_code == 401


def test_a_rightly_signed_call_is_processed(client, context) -> None:  # type: ignore[no-untyped-def]
    response = _post(client, context, "/api/v1/sms/inbound", json.dumps(INBOUND).encode())
    assert response.status_code == 200
    assert response.json() == {"outcome": "unknown_sender"}
    upper = signature_for(context.settings.sms_webhook_secret, b'{"x":1}').upper()
    assert _post(client, context, "/api/v1/sms/inbound", b'{"x":1}', upper).status_code == 422


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
def test_malformed_json_gets_400(client, context, body: bytes) -> None:  # type: ignore[no-untyped-def]
    response = _post(client, context, "/api/v1/sms/inbound", body)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


def test_missing_or_mistyped_fields_get_422_naming_them(client, context) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({"from": "0912", "text": 4}).encode()
    response = _post(client, context, "/api/v1/sms/inbound", body)
    assert response.status_code == 422
    problems = {p["field"]: p["message"] for p in response.json()["problems"]}
    assert problems == {"text": "expected a string; got int", "message_id": "is required"}


def test_delivery_reports_move_the_invitation(client, context) -> None:  # type: ignore[no-untyped-def]
    world = SmsWorld(context)
    world.unit(PHONE)
    Dispatcher(context, MemoryGateway(), options=DispatchOptions(rate_per_second=1e6)).run_once()
    [invitation] = world.rows(Invitation)
    local_id = f"inv{invitation.id}-invite"

    body = json.dumps({"local_id": local_id, "status": "delivered"}).encode()
    response = _post(client, context, "/api/v1/sms/status", body)
    assert response.status_code == 200 and response.json() == {"known": True}
    [invitation] = world.rows(Invitation)
    assert invitation.status == "delivered" and invitation.delivered_at == context.clock()
    assert world.rows(OutboxMessage)[0].status == "delivered"

    unknown = json.dumps({"local_id": "inv999-invite", "status": "delivered"}).encode()
    assert _post(client, context, "/api/v1/sms/status", unknown).json() == {"known": False}

    wrong = json.dumps({"local_id": local_id, "status": "read"}).encode()
    response = _post(client, context, "/api/v1/sms/status", wrong)
    assert response.status_code == 422
    assert "undelivered" in response.json()["problems"][0]["message"]


def test_an_undelivered_invitation_is_failed(client, context) -> None:  # type: ignore[no-untyped-def]
    world = SmsWorld(context)
    world.unit(PHONE)
    Dispatcher(context, MemoryGateway(), options=DispatchOptions(rate_per_second=1e6)).run_once()
    [invitation] = world.rows(Invitation)
    body = json.dumps({"local_id": f"inv{invitation.id}-invite", "status": "undelivered"}).encode()
    assert _post(client, context, "/api/v1/sms/status", body).status_code == 200
    [invitation] = world.rows(Invitation)
    assert invitation.status == "failed" and invitation.failed_at is not None
    assert world.rows(OutboxMessage)[0].status == "undelivered"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/sms/inbound", {**INBOUND, "message_id": "m\x001"}),
        ("/api/v1/sms/status", {"local_id": "inv1\x00-invite", "status": "delivered"}),
    ],
)
def test_a_nul_in_an_identifier_is_a_422_on_every_database(client, context, path, body) -> None:  # type: ignore[no-untyped-def]
    response = _post(client, context, path, json.dumps(body).encode())
    assert response.status_code == 422, response.text[:300]
    assert "NUL" in response.json()["problems"][0]["message"]
