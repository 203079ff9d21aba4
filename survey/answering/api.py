"""SMS provider webhooks: inbound replies and delivery reports (thin: verify, parse, call).

    POST /api/v1/sms/inbound   {"from", "to", "text", "message_id"}  -> {"outcome": ...}
    POST /api/v1/sms/status    {"local_id", "status"}                -> {"known": bool}

Each call must carry `X-Survey-Signature: <hex HMAC-SHA256 of the raw body>` under
`SURVEY_SMS_WEBHOOK_SECRET`, compared in constant time; missing or wrong -> 401 before the body
is even parsed. Malformed JSON -> 400; missing or mistyped fields -> 422 naming them. A provider
whose push format differs gets its own small adapter route that calls the same services.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, ClassVar

from litestar import Controller, MediaType, Request, post
from litestar.exceptions import HTTPException
from litestar.params import RawBody

from survey.answering.sms_dialog import handle_inbound
from survey.context import AppContext
from survey.errors import InvalidInput, NotAuthenticated, Problem
from survey.outreach.outbox import record_delivery_report

SIGNATURE_HEADER = "x-survey-signature"


def signature_for(secret: bytes, body: RawBody) -> str:
    """The signature a provider (or our tests and demo) sends with `body`."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _verify(request: Request, body: bytes, secret: bytes) -> None:
    given = request.headers.get(SIGNATURE_HEADER, "").strip().lower()
    if not secret or not given:
        raise NotAuthenticated(f"missing {SIGNATURE_HEADER} header")
    if not hmac.compare_digest(given.encode(), signature_for(secret, body).encode()):
        raise NotAuthenticated(f"wrong {SIGNATURE_HEADER}")


def _object(body: bytes, fields: dict[str, bool]) -> dict[str, str]:
    """The JSON object's string fields (`fields`: name -> required)."""
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(status_code=400, detail=f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HTTPException(status_code=400, detail="body must be a JSON object")
    problems = []
    out: dict[str, str] = {}
    for name, required in fields.items():
        value = data.get(name)
        if value is None:
            if required:
                problems.append(Problem("is required", field=name))
        elif not isinstance(value, str):
            problems.append(Problem(f"expected a string; got {type(value).__name__}", field=name))
        else:
            out[name] = value
    if problems:
        raise InvalidInput("webhook body has missing or wrong fields", problems)
    return out


class SmsWebhookController(Controller):
    path = "/api/v1/sms"
    tags: ClassVar[list[str]] = ["sms"]

    @post("/inbound", media_type=MediaType.JSON, status_code=200, sync_to_thread=True)
    def inbound(self, request: Request, body: RawBody) -> dict[str, Any]:
        context: AppContext = request.app.state.context
        _verify(request, body, context.settings.sms_webhook_secret)
        data = _object(body, {"from": True, "to": False, "text": True, "message_id": True})
        if not data["message_id"].strip() or len(data["message_id"]) > 120:
            raise InvalidInput(
                "webhook body has missing or wrong fields",
                [Problem("must be 1 to 120 characters", field="message_id")],
            )
        result = handle_inbound(
            context, sender=data["from"], text=data["text"], message_id=data["message_id"]
        )
        return {"outcome": result.outcome.value}

    @post("/status", media_type=MediaType.JSON, status_code=200, sync_to_thread=True)
    def status(self, request: Request, body: RawBody) -> dict[str, Any]:
        context: AppContext = request.app.state.context
        _verify(request, body, context.settings.sms_webhook_secret)
        data = _object(body, {"local_id": True, "status": True})
        try:
            known = record_delivery_report(
                context.sessions, data["local_id"], data["status"].lower(), context.clock()
            )
        except ValueError as exc:
            raise InvalidInput(
                "webhook body has a wrong status", [Problem(str(exc), field="status")]
            ) from None
        return {"known": known}
