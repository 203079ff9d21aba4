"""`file:PATH`: appends one JSON line per message, for tests and the demo.

Each line: {"to", "text", "invitation_id", "kind", "local_id"}. Idempotent by local id: a
message whose local id is already in the file is not written again, so a dispatcher that
recovers after a crash never duplicates a line. Safe across threads and processes: every
operation holds an exclusive `flock` on the file and first reads lines other writers added.
The file holds phone numbers in clear (it stands in for the provider): keep it out of logs
and out of version control.
"""

from __future__ import annotations

import fcntl
import json
import threading
from pathlib import Path
from typing import TextIO

from survey.outreach.gateways.base import (
    DeliveryStatus,
    GatewayUnavailable,
    OutgoingSms,
    SendResult,
    SmsGateway,
)

__all__ = ["FileGateway"]


class FileGateway(SmsGateway):
    name = "file"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._known: set[str] = set()
        self._offset = 0
        self._lock = threading.Lock()

    def _catch_up(self, handle: TextIO) -> None:
        handle.seek(self._offset)
        for line in handle:
            if line.endswith("\n") and line.strip():
                self._known.add(json.loads(line)["local_id"])
        self._offset = handle.tell()

    def _open(self) -> TextIO:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise GatewayUnavailable(f"cannot open SMS file {self.path}: {exc}") from exc

    def send(self, message: OutgoingSms) -> SendResult:
        line = json.dumps(
            {
                "to": message.to,
                "text": message.text,
                "invitation_id": message.invitation_id,
                "kind": message.kind,
                "local_id": message.local_id,
            },
            ensure_ascii=False,
        )
        with self._lock, self._open() as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self._catch_up(handle)
                if message.local_id not in self._known:
                    handle.write(line + "\n")
                    handle.flush()
                    self._offset = handle.tell()
                    self._known.add(message.local_id)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return SendResult(DeliveryStatus.sent, provider_id=message.local_id)

    def status(self, local_id: str) -> DeliveryStatus | None:
        with self._lock:
            if not self.path.exists():
                return None
            with self._open() as handle:
                fcntl.flock(handle, fcntl.LOCK_SH)
                try:
                    self._catch_up(handle)
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
            return DeliveryStatus.sent if local_id in self._known else None

    def lines(self) -> list[dict[str, object]]:
        """Every message in the file (for tests and the demo)."""
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
