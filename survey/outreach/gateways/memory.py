"""The fake gateway for tests: records every call, can fail or "crash" on demand.

Like a provider that takes our local id, it keeps what it has accepted by local id; unlike a
real one it never dedupes unless told to, so a test sees every duplicate send.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from survey.outreach.gateways.base import (
    DeliveryStatus,
    GatewayError,
    OutgoingSms,
    SendResult,
    SmsGateway,
)

__all__ = ["MemoryGateway"]


class MemoryGateway(SmsGateway):
    """Keeps sent messages in memory. Thread-safe (racing dispatchers share one)."""

    name = "memory"

    def __init__(self, *, dedupe: bool = False) -> None:
        self.dedupe = dedupe
        self.sent: list[OutgoingSms] = []
        self.statuses: dict[str, DeliveryStatus] = {}
        self.status_calls: list[str] = []
        self._failures: list[GatewayError] = []
        self._after_send: Callable[[OutgoingSms], None] | None = None
        self._lock = threading.Lock()

    def fail_next(self, count: int, error: GatewayError) -> None:
        """The next `count` sends raise `error` without sending anything."""
        with self._lock:
            self._failures.extend([error] * count)

    def after_send(self, hook: Callable[[OutgoingSms], None] | None) -> None:
        """Call `hook` after a message is accepted (raise inside it to simulate a crash)."""
        self._after_send = hook

    def send(self, message: OutgoingSms) -> SendResult:
        with self._lock:
            if self._failures:
                raise self._failures.pop(0)
            if not (self.dedupe and message.local_id in self.statuses):
                self.sent.append(message)
            self.statuses[message.local_id] = DeliveryStatus.sent
        if self._after_send is not None:
            self._after_send(message)
        return SendResult(DeliveryStatus.sent, provider_id=f"mem-{message.local_id}")

    def status(self, local_id: str) -> DeliveryStatus | None:
        with self._lock:
            self.status_calls.append(local_id)
            return self.statuses.get(local_id)

    def texts_to(self, phone: str) -> list[str]:
        """Texts sent to one phone, in order (for dialog tests)."""
        with self._lock:
            return [m.text for m in self.sent if m.to == phone]

    def local_ids(self) -> list[str]:
        with self._lock:
            return [m.local_id for m in self.sent]
