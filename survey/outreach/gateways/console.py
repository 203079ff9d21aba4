"""Development gateway: logs each message instead of sending it, never with the phone number
(masked to its last two digits) nor an answering token (a token opens someone's survey)."""

from __future__ import annotations

import logging
import threading

from survey.outreach.gateways.base import (
    DeliveryStatus,
    OutgoingSms,
    SendResult,
    SmsGateway,
    mask_phone,
    redact_links,
)

__all__ = ["ConsoleGateway"]

log = logging.getLogger("survey.sms.console")


class ConsoleGateway(SmsGateway):
    """Logs at INFO; remembers local ids for this process so a recovered message is not
    logged twice."""

    name = "console"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or log
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def send(self, message: OutgoingSms) -> SendResult:
        with self._lock:
            if message.local_id in self._seen:
                return SendResult(DeliveryStatus.sent, provider_id=message.local_id)
            self._seen.add(message.local_id)
        self.log.info(
            "SMS %s to %s (invitation %s, %s): %s",
            message.local_id,
            mask_phone(message.to),
            message.invitation_id,
            message.kind,
            redact_links(message.text).replace("\n", " / "),
        )
        return SendResult(DeliveryStatus.sent, provider_id=message.local_id)

    def status(self, local_id: str) -> DeliveryStatus | None:
        with self._lock:
            return DeliveryStatus.sent if local_id in self._seen else None
