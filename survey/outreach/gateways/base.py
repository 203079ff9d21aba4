"""The SMS gateway port: what the dispatcher needs from any provider, and nothing more.

    SmsGateway.send(OutgoingSms) -> SendResult      hand one message to the provider
    SmsGateway.status(local_id) -> DeliveryStatus | None
                                                    what the provider knows of our message

`local_id` is ours, unique per logical message (see survey.outreach.outbox). After a crash the
dispatcher asks `status(local_id)` before sending again: a provider that knows the id has the
message, so it is not sent twice. Providers that accept our local id also refuse duplicates.

Errors (the tree the dispatcher relies on):

    GatewayError
    ├── GatewayUnavailable   temporary (network, timeout, 5xx, 429): retry later, ask first
    └── MessageRejected      permanent (bad number, bad credentials, 4xx): do not retry
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DeliveryStatus",
    "GatewayError",
    "GatewayUnavailable",
    "MessageRejected",
    "OutgoingSms",
    "SendResult",
    "SmsGateway",
    "mask_phone",
    "redact_links",
]


class DeliveryStatus(StrEnum):
    """Where a message is, as providers report it."""

    queued = "queued"  # accepted by the provider, not yet handed to the operator
    sent = "sent"  # handed to the operator
    delivered = "delivered"  # the handset confirmed
    undelivered = "undelivered"  # the operator gave up (phone off for days, no such number)
    failed = "failed"  # the provider could not send it


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One message for one phone. `to` is E.164 (+98...); it is never logged."""

    to: str
    text: str
    local_id: str
    invitation_id: int
    kind: str

    def __repr__(self) -> str:  # keeps the phone out of tracebacks and logs
        return (
            f"OutgoingSms(to={mask_phone(self.to)!r}, local_id={self.local_id!r}, "
            f"invitation_id={self.invitation_id}, kind={self.kind!r})"
        )


@dataclass(frozen=True, slots=True)
class SendResult:
    """The provider accepted the message: its status now and the provider's own id."""

    status: DeliveryStatus
    provider_id: str | None = None


class GatewayError(Exception):
    """A send or status call that did not succeed."""


class GatewayUnavailable(GatewayError):
    """Temporary: the outcome is unknown or the provider is busy; retry after asking status."""


class MessageRejected(GatewayError):
    """Permanent: the provider refused this message; sending it again cannot help."""


class SmsGateway(ABC):
    """The port. Implementations: console, file, http, memory (the fake for tests)."""

    name: str = "gateway"

    @abstractmethod
    def send(self, message: OutgoingSms) -> SendResult:
        """Hand the message over; raise GatewayUnavailable or MessageRejected otherwise."""

    @abstractmethod
    def status(self, local_id: str) -> DeliveryStatus | None:
        """What the provider knows of this local id; None when it never got it."""

    def close(self) -> None:  # noqa: B027 - optional hook, most gateways hold nothing
        """Release connections or files."""


_LINK_TOKEN = re.compile(r"/s/[A-Za-z0-9_-]+")


def mask_phone(phone: str) -> str:
    """Only the last two digits: enough to tell messages apart in a log, useless otherwise."""
    digits = [ch for ch in phone if ch.isdigit()]
    return "*" * max(len(digits) - 2, 0) + "".join(digits[-2:])


def redact_links(text: str) -> str:
    """A text with answering tokens replaced, for logs (a token opens someone's survey)."""
    return _LINK_TOKEN.sub("/s/<token>", text)
