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

import msgspec
from litestar import Controller, MediaType, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, RawBody

from survey.answering import webhooks
from survey.answering.sms_dialog import InboundOutcome
from survey.answering.webhooks import MAX_MESSAGE_ID, SIGNATURE_HEADER, signature_for
from survey.http.dependencies import Context
from survey.http.openapi import WEBHOOK_SIGNATURE, documented_body, json_example
from survey.outreach.gateways.base import DeliveryStatus

__all__ = ["SIGNATURE_HEADER", "SmsWebhookController", "signature_for"]

Signature = Annotated[str | None, HeaderParameter(name=SIGNATURE_HEADER, required=False)]
SIGNED: list[dict[str, list[str]]] = [{WEBHOOK_SIGNATURE: []}]


class InboundSms(msgspec.Struct):
    """A citizen's SMS to the survey's number, as the provider pushes it."""

    sender: Annotated[
        str, msgspec.Meta(description="The citizen's number", examples=["+989123456789"])
    ] = msgspec.field(name="from")
    text: Annotated[str, msgspec.Meta(description="What the citizen wrote", examples=["5"])]
    message_id: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=MAX_MESSAGE_ID,
            description="The provider's id of the message; a resend with the same id is ignored",
        ),
    ]
    to: Annotated[str | None, msgspec.Meta(description="The number it was sent to")] = None


class DeliveryReportIn(msgspec.Struct):
    """The provider's delivery report for a message the platform sent."""

    local_id: Annotated[
        str, msgspec.Meta(description="The id the platform gave the message when sending it")
    ]
    status: Annotated[
        DeliveryStatus, msgspec.Meta(description="Where the message is (any letter case)")
    ]


class InboundReceiptOut(msgspec.Struct):
    """What became of the SMS (survey.answering.sms_dialog)."""

    outcome: InboundOutcome


INBOUND_EXAMPLE = {"from": "+989123456789", "to": "3000123", "text": "5", "message_id": "m-81723"}
STATUS_EXAMPLE = {"local_id": "msg-000123", "status": "delivered"}


class SmsWebhookController(Controller):
    path = "/api/v1/sms"
    tags = ("sms",)

    @post(
        "/inbound",
        media_type=MediaType.JSON,
        status_code=200,
        sync_to_thread=True,
        summary="A citizen's SMS reply (the provider's webhook)",
        security=SIGNED,
        dependencies=documented_body(
            InboundSms, examples=[json_example("A reply to a question", INBOUND_EXAMPLE)]
        ),
        responses={
            200: ResponseSpec(
                InboundReceiptOut,
                description="What became of the message",
                examples=[json_example("An answer recorded", {"outcome": "answered"})],
                generate_examples=False,
            )
        },
    )
    def inbound(
        self, context: Context, body: RawBody, signature: Signature = None
    ) -> webhooks.InboundReceipt:
        return webhooks.inbound_reply(context, body, signature)

    @post(
        "/status",
        media_type=MediaType.JSON,
        status_code=200,
        sync_to_thread=True,
        summary="A delivery report (the provider's webhook)",
        security=SIGNED,
        dependencies=documented_body(
            DeliveryReportIn, examples=[json_example("Delivered", STATUS_EXAMPLE)]
        ),
    )
    def status(
        self, context: Context, body: RawBody, signature: Signature = None
    ) -> webhooks.DeliveryReceipt:
        return webhooks.delivery_report(context, body, signature)
