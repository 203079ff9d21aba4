"""The dispatcher loop: invitations for new sampled units, reminders, expiry, and sending.

`Dispatcher.run_once()` does one pass:
1. expire invitations past `expires_at` (their queued messages are cancelled);
2. create invitations (and their first message) for pending sampled units;
3. enqueue one reminder per invitation whose `reminder_due_at` passed with no answer yet
   (status sent, delivered or opened), outside quiet hours;
4. send every due message, at most `rate_per_second` per second, through the gateway (see
   survey.outreach.outbox for the exactly-once protocol).

`run_forever(stop_event)` repeats the pass, waiting `poll_seconds` between passes that found
nothing to do; it stops promptly when the event is set. Several dispatchers may run against one
PostgreSQL database (each claims its own rows); on SQLite they take turns writing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from survey.context import AppContext
from survey.kernel.db import transaction
from survey.kernel.observability import SMS_SEND_FAILURES
from survey.kernel.sms import MessageTooLong, Sender, count_parts
from survey.kernel.tokens import token_for_invitation
from survey.outreach import outbox, store
from survey.outreach.gateways.base import (
    GatewayUnavailable,
    MessageRejected,
    OutgoingSms,
    SmsGateway,
)
from survey.outreach.invitations import (
    create_invitations,
    invitation_text,
    sender_of,
    stored_link,
    with_link,
)
from survey.outreach.schedule import RetryPolicy, next_allowed

__all__ = ["DispatchOptions", "DispatchReport", "Dispatcher", "Pacer"]

log = logging.getLogger("survey.dispatch")

#: Invitations not yet answered: a reminder may go to these.
REMINDABLE = ("sent", "delivered", "opened")
#: Invitations that expire at `expires_at` (completed, opted-out and failed ones keep theirs).
EXPIRABLE = ("pending", "sent", "delivered", "opened", "partial")


@dataclass(frozen=True, slots=True)
class DispatchOptions:
    """How the dispatcher behaves; `from_settings` reads the optional `sms_*` settings."""

    rate_per_second: float = 10.0
    batch_size: int = 50
    lease: timedelta = timedelta(minutes=10)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poll_seconds: float = 5.0
    invitation_batch: int = 500
    max_messages_per_pass: int = 10_000

    def __post_init__(self) -> None:
        if self.rate_per_second <= 0:
            raise ValueError(f"rate_per_second must be positive; got {self.rate_per_second}")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive; got {self.batch_size}")

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> DispatchOptions:
        values: dict[str, Any] = {}
        rate = getattr(settings, "sms_rate_per_second", None)
        if rate:
            values["rate_per_second"] = float(rate)
        attempts = getattr(settings, "sms_max_attempts", None)
        if attempts:
            values["retry"] = RetryPolicy(max_attempts=int(attempts))
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


@dataclass
class DispatchReport:
    """What one pass did."""

    invited: int = 0
    expired: int = 0
    reminders: int = 0
    sent: int = 0
    recovered: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.invited or self.expired or self.reminders or self.sent or self.retried)


class Pacer:
    """Spaces sends at least 1/rate seconds apart (monotonic clock and sleep injectable)."""

    def __init__(
        self,
        rate_per_second: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate_per_second
        self.monotonic = monotonic
        self.sleep = sleep
        self._next: float | None = None

    def wait(self) -> None:
        now = self.monotonic()
        if self._next is not None and now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


class Dispatcher:
    """One worker. Give each thread or process its own (ids tell claims apart)."""

    def __init__(
        self,
        context: AppContext,
        gateway: SmsGateway,
        *,
        options: DispatchOptions | None = None,
        worker_id: str | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.context = context
        self.gateway = gateway
        self.options = options or DispatchOptions()
        self.worker = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pacer = pacer or Pacer(self.options.rate_per_second)
        # Set by `run_forever`'s stop event: the message in hand is finished, the rest of the
        # claimed batch is given back (outbox.release_unsent), so a SIGTERM stops the server
        # within one send instead of after the whole batch at the send rate.
        self.stopping = threading.Event()

    # -- the loop ----------------------------------------------------------------------------
    def run_once(self) -> DispatchReport:
        report = DispatchReport()
        report.expired = self.expire_invitations()
        report.invited = self.create_invitations()
        report.reminders = self.enqueue_reminders()
        self.send_due(report)
        return report

    def run_forever(self, stop_event: threading.Event) -> None:
        log.info("dispatcher %s started (gateway %s)", self.worker, self.gateway.name)
        self.stopping = stop_event
        while not stop_event.is_set():
            try:
                report = self.run_once()
            except Exception:  # keep serving: log, wait, try again
                log.exception(
                    "dispatcher pass failed; retrying after %s s", self.options.poll_seconds
                )
                report = DispatchReport()
            if not report.busy:
                stop_event.wait(self.options.poll_seconds)
        log.info("dispatcher %s stopped", self.worker)

    # -- steps -------------------------------------------------------------------------------
    def create_invitations(self) -> int:
        total = 0
        while True:
            created = create_invitations(
                self.context.sessions,
                secret_key=self.context.settings.secret_key,
                public_base_url=self.context.settings.public_base_url,
                now=self.context.clock(),
                limit=self.options.invitation_batch,
            )
            total += created.total
            if created.total < self.options.invitation_batch:
                return total

    def expire_invitations(self) -> int:
        """Expire every invitation past `expires_at`, a batch per transaction."""
        total = 0
        while True:
            expired = self._expire_batch()
            total += expired
            if expired < self.options.invitation_batch:
                return total

    def _expire_batch(self) -> int:
        now = self.context.clock()
        with transaction(self.context.sessions) as session:
            ids = store.lock_expirable_invitations(
                session, now=now, statuses=EXPIRABLE, limit=self.options.invitation_batch
            )
            if not ids:
                return 0
            store.expire_invitations(session, ids, now)
            outbox.cancel_queued(session, ids, kinds=("invite", "reminder", "question"))
        return len(ids)

    def enqueue_reminders(self) -> int:
        """Queue every reminder that is due, a batch per transaction."""
        total = 0
        while True:
            queued, seen = self._enqueue_reminder_batch()
            total += queued
            if seen < self.options.invitation_batch:
                return total

    def _enqueue_reminder_batch(self) -> tuple[int, int]:
        now = self.context.clock()
        settings = self.context.settings
        from questionnaires.schema import Questionnaire

        count = 0
        questionnaires: dict[int, Questionnaire] = {}
        with transaction(self.context.sessions) as session:
            rows = store.lock_remindable_invitations(
                session, now=now, statuses=REMINDABLE, limit=self.options.invitation_batch
            )
            senders: dict[tuple[int, int, date, str], Sender] = {}
            for invitation, agency_id, quiet_hours, version, service_id, day in rows:
                sender_key = (agency_id, service_id, day, invitation.language)
                if sender_key not in senders:
                    agency = store.get_agency(session, agency_id)
                    assert agency is not None  # foreign key
                    service = store.get_service(session, service_id)
                    senders[sender_key] = sender_of(agency, service, day, invitation.language)
                assert invitation.id is not None and version.id is not None
                if version.id not in questionnaires:
                    questionnaires[version.id] = Questionnaire.from_dict(version.content)
                try:
                    text = invitation_text(
                        "reminder",
                        mode=invitation.mode,
                        lang=invitation.language,
                        questionnaire=questionnaires[version.id],
                        url=stored_link(settings.public_base_url),  # no token at rest
                        sender=senders[sender_key],
                        position=invitation.dialog_position,
                    )
                except MessageTooLong as exc:  # never cut a text: no reminder for this one
                    log.error("invitation %s gets no reminder: %s", invitation.id, exc.message)
                    invitation.reminder_due_at = None
                    continue
                count += outbox.enqueue(
                    session,
                    invitation_id=invitation.id,
                    kind="reminder",
                    local_id=f"inv{invitation.id}-reminder",
                    body=text,
                    due_at=next_allowed(now, quiet_hours),
                    parts=count_parts(text).parts,
                    now=now,
                )
        return count, len(rows)

    def send_due(self, report: DispatchReport | None = None) -> DispatchReport:
        report = report or DispatchReport()
        handled = 0
        while handled < self.options.max_messages_per_pass:
            claimed = outbox.claim_due(
                self.context.sessions,
                worker=self.worker,
                now=self.context.clock(),
                limit=min(self.options.batch_size, self.options.max_messages_per_pass - handled),
                lease=self.options.lease,
            )
            if not claimed:
                break
            sends: list[outbox.SentMessage] = []
            for position, message in enumerate(claimed):
                if self.stopping.is_set():
                    outbox.release_unsent(
                        self.context.sessions, claimed[position:], worker=self.worker
                    )
                    break
                sent = self._deliver(message, report)
                if sent is not None:
                    sends.append(sent)
            for sent in outbox.mark_sent_many(self.context.sessions, sends, worker=self.worker):
                if sent.recovered:
                    report.recovered += 1
                else:
                    report.sent += 1
            handled += len(claimed)
            if self.stopping.is_set():
                break
        return report

    def _deliver(
        self, message: outbox.ClaimedMessage, report: DispatchReport
    ) -> outbox.SentMessage | None:
        """Send one claimed message; the send to record, or None (failure already recorded).

        Sends are recorded per claimed batch (`mark_sent_many`): a crash before that leaves the
        rows in `sending`, and their recovery asks the gateway, which knows them.
        """
        if message.needs_status_check:
            try:
                known = self.gateway.status(message.local_id)
            except GatewayUnavailable as exc:
                self._failed(message, f"status check: {exc}", permanent=False, report=report)
                return None
            if known is not None:
                return outbox.SentMessage(
                    message, known, None, self.context.clock(), recovered=True
                )
        if message.phone_ciphertext is None:
            self._failed(message, "the sampled unit has no phone", permanent=True, report=report)
            return None
        try:
            phone = self.context.vault.decrypt(message.phone_ciphertext)
        except Exception:  # wrong key or damaged ciphertext: never retried
            self._failed(message, "cannot decrypt the phone", permanent=True, report=report)
            return None
        self.pacer.wait()
        sms = OutgoingSms(
            to=phone,
            text=self._text(message),
            local_id=message.local_id,
            invitation_id=message.invitation_id,
            kind=message.kind,
        )
        try:
            result = self.gateway.send(sms)
        except MessageRejected as exc:
            self._failed(message, str(exc), permanent=True, report=report)
            return None
        except Exception as exc:  # GatewayUnavailable or anything unexpected: retry, ask first
            if not isinstance(exc, GatewayUnavailable):
                log.exception("gateway %s failed on %s", self.gateway.name, message.local_id)
            self._failed(message, f"{type(exc).__name__}: {exc}", permanent=False, report=report)
            return None
        return outbox.SentMessage(message, result.status, result.provider_id, self.context.clock())

    def _text(self, message: outbox.ClaimedMessage) -> str:
        """The text handed to the gateway: the stored one with the link's token put back (the
        only place the token exists outside the citizen's phone)."""
        if "/s/" not in message.body:
            return message.body
        token = token_for_invitation(
            self.context.settings.secret_keys, message.invitation_id, message.token_hash
        )
        return with_link(message.body, token)

    def _failed(
        self, message: outbox.ClaimedMessage, error: str, *, permanent: bool, report: DispatchReport
    ) -> None:
        status = outbox.mark_failed(
            self.context.sessions,
            message,
            worker=self.worker,
            now=self.context.clock(),
            error=error,
            permanent=permanent,
            policy=self.options.retry,
        )
        SMS_SEND_FAILURES.labels(
            self.gateway.name, "failed" if status == "failed" else "retry"
        ).inc()
        if status == "failed":
            report.failed += 1
            log.warning("outbox message %s failed for good: %s", message.local_id, error)
        else:
            report.retried += 1
            log.info("outbox message %s will be retried: %s", message.local_id, error)
