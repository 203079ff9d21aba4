"""SMS provider webhooks: inbound replies and delivery reports (thin: read, call, return).

    POST /api/v1/sms/inbound   {"from", "to", "text", "message_id"}  -> {"outcome": ...}
    POST /api/v1/sms/status    {"local_id", "status"}                -> {"known": bool}

Each call must carry `X-Survey-Signature: <hex HMAC-SHA256 of the raw body>` under
`SURVEY_SMS_WEBHOOK_SECRET`, compared in constant time; missing or wrong -> 401 before the body
is even parsed. Malformed JSON -> 400; missing or mistyped fields -> 422 naming them
(survey.answering.webhooks). A provider whose push format differs gets its own small adapter
route that calls the same services.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, MediaType, post
from litestar.params import HeaderParameter, RawBody

from survey.answering import webhooks
from survey.answering.webhooks import SIGNATURE_HEADER, signature_for
from survey.http.dependencies import Context

__all__ = ["SIGNATURE_HEADER", "SmsWebhookController", "signature_for"]

Signature = Annotated[str | None, HeaderParameter(name=SIGNATURE_HEADER, required=False)]


class SmsWebhookController(Controller):
    path = "/api/v1/sms"
    tags = ("sms",)

    @post("/inbound", media_type=MediaType.JSON, status_code=200, sync_to_thread=True)
    def inbound(
        self, context: Context, body: RawBody, signature: Signature = None
    ) -> webhooks.InboundReceipt:
        return webhooks.inbound_reply(context, body, signature)

    @post("/status", media_type=MediaType.JSON, status_code=200, sync_to_thread=True)
    def status(
        self, context: Context, body: RawBody, signature: Signature = None
    ) -> webhooks.DeliveryReceipt:
        return webhooks.delivery_report(context, body, signature)
