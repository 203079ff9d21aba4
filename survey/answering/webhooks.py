"""What the SMS provider's webhooks do: check the signature, read the body, call the service.

Each call must carry `X-Survey-Signature: <hex HMAC-SHA256 of the raw body>` under
`SURVEY_SMS_WEBHOOK_SECRET`, compared in constant time; missing or wrong -> NotAuthenticated
(401) before the body is even parsed. A body that is not a JSON object -> `MalformedBody`
(400); missing or mistyped fields -> InvalidInput (422) naming them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import msgspec

from survey.answering.sms_dialog import handle_inbound
from survey.context import AppContext
from survey.errors import InvalidInput, NotAuthenticated, Problem, SurveyError
from survey.outreach.outbox import record_delivery_report

__all__ = [
    "SIGNATURE_HEADER",
    "DeliveryReceipt",
    "InboundReceipt",
    "MalformedBody",
    "delivery_report",
    "inbound_reply",
    "signature_for",
]

SIGNATURE_HEADER = "x-survey-signature"
MAX_MESSAGE_ID = 120


class MalformedBody(SurveyError):
    """A webhook body that is not a JSON object (400: survey.app answers a SurveyError outside
    its table of statuses with 400)."""


class InboundReceipt(msgspec.Struct, frozen=True):
    """`{"outcome": ...}`: what became of an inbound SMS (survey.answering.sms_dialog)."""

    outcome: str


class DeliveryReceipt(msgspec.Struct, frozen=True):
    """`{"known": bool}`: whether the delivery report's local id is one of ours."""

    known: bool


def signature_for(secret: bytes, body: bytes) -> str:
    """The signature a provider (or our tests and demo) sends with `body`."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def inbound_reply(context: AppContext, body: bytes, signature: str | None) -> InboundReceipt:
    """`POST /api/v1/sms/inbound` `{"from", "to", "text", "message_id"}`: one citizen's SMS."""
    _verify(body, signature, context.settings.sms_webhook_secret)
    data = _object(body, {"from": True, "to": False, "text": True, "message_id": True})
    message_id = data["message_id"]
    if not message_id.strip() or len(message_id) > MAX_MESSAGE_ID:
        raise InvalidInput(
            "webhook body has missing or wrong fields",
            [Problem(f"must be 1 to {MAX_MESSAGE_ID} characters", field="message_id")],
        )
    result = handle_inbound(context, sender=data["from"], text=data["text"], message_id=message_id)
    return InboundReceipt(result.outcome.value)


def delivery_report(context: AppContext, body: bytes, signature: str | None) -> DeliveryReceipt:
    """`POST /api/v1/sms/status` `{"local_id", "status"}`: the provider's delivery report."""
    _verify(body, signature, context.settings.sms_webhook_secret)
    data = _object(body, {"local_id": True, "status": True})
    try:
        known = record_delivery_report(
            context.sessions, data["local_id"], data["status"].lower(), context.clock()
        )
    except ValueError as exc:
        raise InvalidInput(
            "webhook body has a wrong status", [Problem(str(exc), field="status")]
        ) from None
    return DeliveryReceipt(known)


def _verify(body: bytes, signature: str | None, secret: bytes) -> None:
    given = (signature or "").strip().lower()
    if not secret or not given:
        raise NotAuthenticated(f"missing {SIGNATURE_HEADER} header")
    if not hmac.compare_digest(given.encode(), signature_for(secret, body).encode()):
        raise NotAuthenticated(f"wrong {SIGNATURE_HEADER}")


def _object(body: bytes, fields: dict[str, bool]) -> dict[str, str]:
    """The JSON object's string fields (`fields`: name -> required)."""
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedBody(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedBody("body must be a JSON object")
    problems = []
    out: dict[str, str] = {}
    for name, required in fields.items():
        value = data.get(name)
        if value is None:
            if required:
                problems.append(Problem("is required", field=name))
        elif not isinstance(value, str):
            problems.append(Problem(f"expected a string; got {type(value).__name__}", field=name))
        elif "\x00" in value and name != "text":
            problems.append(Problem("contains a NUL character", field=name))
        else:
            out[name] = value.replace("\x00", "")  # a citizen's text: NULs mean nothing
    if problems:
        raise InvalidInput("webhook body has missing or wrong fields", problems)
    return out
