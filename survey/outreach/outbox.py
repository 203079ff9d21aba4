"""The outbox: every SMS is a row, sent at most once by construction.

Each row has a `local_id` unique per logical message (`inv12-invite`, `inv12-q2`, ...), so a
message cannot be enqueued twice, and a provider can be asked about it after a crash.

State machine of a row:

    queued ──claim──> sending ──gateway ok──> sent ──delivery report──> delivered | undelivered
      ^                  │ temporary failure (attempts < max)
      └──── back-off ────┤
                         └─ permanent failure or attempts == max ──> failed
    queued ──invitation closed / number opted out──> cancelled

`sending` is committed (with `claimed_by`, `claimed_at`) BEFORE the gateway is called. Rows are
claimed with `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so dispatchers sharing one
database never claim the same row; on SQLite `BEGIN IMMEDIATE` makes claiming one writer at a
time. A row still `sending` after the lease expired belonged to a dispatcher that died: it is
claimed again, and because its attempts count is above zero the dispatcher asks the gateway
about its `local_id` before sending: known means sent (no resend), unknown means it never left.
The same question is asked before every retry, since a timeout does not say whether the
provider got the message.

The statements, locks included, are in survey.outreach.store; this module decides and holds
the transactions (one per claim, per batch of sends, per failure).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from survey.kernel.db import transaction
from survey.models import OutboxMessage
from survey.outreach import store
from survey.outreach.gateways.base import DeliveryStatus
from survey.outreach.schedule import QuietHours, RetryPolicy

__all__ = [
    "CLOSED_INVITATION_STATUSES",
    "ClaimedMessage",
    "SentMessage",
    "apply_delivery_status",
    "cancel_queued",
    "claim_due",
    "enqueue",
    "mark_failed",
    "mark_sent",
    "mark_sent_many",
    "record_delivery_report",
]

log = logging.getLogger("survey.dispatch.outbox")

#: Kinds bound by quiet hours; replies in a dialog answer the citizen's own message and go at once.
SCHEDULED_KINDS = frozenset({"invite", "reminder"})
#: Kinds that still go to a number that has opted out (the confirmation of the opt-out).
NOTICE_KINDS = frozenset({"notice"})
CLOSED_INVITATION_STATUSES = frozenset({"completed", "expired", "opted_out"})
OPEN_ROW_STATUSES = ("queued", "sending")


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A row this worker holds in `sending`, with what is needed to send it."""

    id: int
    local_id: str
    invitation_id: int
    kind: str
    body: str  # as stored: a link's token masked (survey.outreach.invitations.with_link)
    token_hash: str  # the invitation's, to recompute the token for the link
    attempts: int  # including this one
    phone_ciphertext: bytes | None
    quiet_hours: tuple[str, ...] | None

    @property
    def needs_status_check(self) -> bool:
        """Sent before (a crash or an ambiguous failure): ask the gateway before resending."""
        return self.attempts > 1


def enqueue(
    session: Session,
    *,
    invitation_id: int,
    kind: str,
    local_id: str,
    body: str,
    due_at: datetime,
    parts: int,
    now: datetime | None = None,
) -> bool:
    """Add one message; False (and nothing added) when that `local_id` already exists."""
    if store.find_message_id(session, local_id) is not None:
        return False
    row = OutboxMessage(
        invitation_id=invitation_id,
        kind=kind,
        local_id=local_id,
        body=body,
        parts=parts,
        next_attempt_at=due_at,
        created_at=now or due_at,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another writer enqueued it first
        return False
    return True


def claim_due(
    sessions: sessionmaker[Session],
    *,
    worker: str,
    now: datetime,
    limit: int,
    lease: timedelta,
) -> list[ClaimedMessage]:
    """Claim up to `limit` due rows (and rows whose `sending` lease expired) for `worker`.

    In the same transaction: rows of closed invitations or opted-out numbers are cancelled,
    and invitations/reminders that fall in their plan's quiet hours are moved to its end.
    """
    claimed: list[ClaimedMessage] = []
    with transaction(sessions) as session:
        for (
            row,
            invitation_status,
            token_hash,
            ciphertext,
            quiet_hours,
            opted_out,
        ) in store.claim_due_rows(session, now=now, lease=lease, limit=limit):
            if _should_cancel(row.kind, invitation_status, bool(opted_out)):
                row.status, row.claimed_by, row.claimed_at = "cancelled", None, None
                continue
            quiet = QuietHours.parse(quiet_hours) if row.kind in SCHEDULED_KINDS else None
            if quiet is not None and quiet.contains(now):
                row.status, row.next_attempt_at = "queued", quiet.next_allowed(now)
                continue
            if row.status == "sending":
                log.warning(
                    "recovering outbox message %s: claimed by %s at %s and never finished",
                    row.local_id,
                    row.claimed_by,
                    row.claimed_at,
                )
            row.status, row.claimed_by, row.claimed_at = "sending", worker, now
            row.attempts += 1
            assert row.id is not None  # a stored row
            claimed.append(
                ClaimedMessage(
                    id=row.id,
                    local_id=row.local_id,
                    invitation_id=row.invitation_id,
                    kind=row.kind,
                    body=row.body,
                    token_hash=token_hash,
                    attempts=row.attempts,
                    phone_ciphertext=ciphertext,
                    quiet_hours=tuple(quiet_hours) if quiet_hours else None,
                )
            )
    return claimed


def _should_cancel(kind: str, invitation_status: str, opted_out: bool) -> bool:
    if kind in NOTICE_KINDS:
        return False
    if opted_out or invitation_status == "opted_out":
        return True
    if invitation_status == "expired":
        return kind != "error"  # the polite "survey closed" reply still goes
    if invitation_status == "completed":
        return kind in SCHEDULED_KINDS
    # the citizen started answering after the reminder was queued: no need to remind
    return kind == "reminder" and invitation_status == "partial"


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message the gateway accepted (or already had), to be recorded."""

    message: ClaimedMessage
    status: DeliveryStatus
    provider_id: str | None
    sent_at: datetime
    recovered: bool = False  # the gateway already had it (found by a status check)


def mark_sent(
    sessions: sessionmaker[Session],
    message: ClaimedMessage,
    *,
    worker: str,
    now: datetime,
    status: DeliveryStatus,
    provider_id: str | None,
) -> bool:
    """Record one send; False when the row was taken from us (see `mark_sent_many`)."""
    return bool(
        mark_sent_many(sessions, [SentMessage(message, status, provider_id, now)], worker=worker)
    )


def mark_sent_many(
    sessions: sessionmaker[Session], sends: Sequence[SentMessage], *, worker: str
) -> list[SentMessage]:
    """Record sends and their effect on the invitations, in one transaction (one commit per
    batch, not per message). Returns the sends recorded; a row another worker reclaimed in the
    meantime is left alone (its recovery asks the gateway, which knows the local id).

    Set-wise, as the dispatcher's hottest step: one SELECT locks the rows this worker still
    holds (and their invitations), then one executemany UPDATE each for the messages and the
    invitations whose state changes.
    """
    if not sends:
        return []
    with transaction(sessions) as session:
        held = store.lock_held_messages(session, [sent.message.id for sent in sends], worker)
        recorded = [sent for sent in sends if sent.message.id in held]
        for sent in sends:
            if sent.message.id not in held:
                log.warning(
                    "outbox message %s was reclaimed before it was marked sent",
                    sent.message.local_id,
                )
        if not recorded:
            return recorded
        store.record_sends(
            session,
            [
                {
                    "b_id": sent.message.id,
                    "b_worker": worker,
                    "b_status": "delivered" if sent.status is DeliveryStatus.delivered else "sent",
                    "b_sent_at": sent.sent_at,
                    "b_provider_id": sent.provider_id,
                }
                for sent in recorded
            ],
        )
        invitations = store.lock_invitations_for_send(
            session, {sent.message.invitation_id for sent in recorded}
        )
        changes: dict[int, dict[str, object]] = {}
        for sent in recorded:
            row = invitations.get(sent.message.invitation_id)
            if row is None:
                continue
            state = changes.setdefault(
                row.id,
                {
                    "b_id": row.id,
                    "b_status": row.status,
                    "b_sent_at": row.sent_at,
                    "b_reminder_due_at": row.reminder_due_at,
                    "b_reminded_at": row.reminded_at,
                    "due_at": row.due_at,
                    "changed": False,
                },
            )
            _after_send(state, sent.message.kind, sent.sent_at)
        updates = [
            {k: v for k, v in state.items() if k.startswith("b_")}
            for state in changes.values()
            if state["changed"]
        ]
        if updates:
            store.update_invitations_after_send(session, updates)
    return recorded


def _after_send(state: dict[str, Any], kind: str, now: datetime) -> None:
    """An invitation's state after one of its messages went out (`state` is changed)."""
    if kind == "invite":
        if state["b_status"] == "pending":
            state["b_status"] = "sent"
            state["changed"] = True
        if state["b_sent_at"] is None:
            state["b_sent_at"] = now
            state["changed"] = True
            if state["b_reminder_due_at"] is not None and now > state["due_at"]:
                state["b_reminder_due_at"] += now - state["due_at"]
    elif kind == "reminder" and state["b_reminded_at"] is None:
        state["b_reminded_at"] = now
        state["changed"] = True


def mark_failed(
    sessions: sessionmaker[Session],
    message: ClaimedMessage,
    *,
    worker: str,
    now: datetime,
    error: str,
    permanent: bool,
    policy: RetryPolicy,
) -> str:
    """Back to `queued` after a back-off (outside quiet hours), or `failed` for good.

    Returns the row's new status.
    """
    final = permanent or message.attempts >= policy.max_attempts
    with transaction(sessions) as session:
        row = store.lock_message(session, message.id)
        if row is None or row.status != "sending" or row.claimed_by != worker:
            return row.status if row is not None else "missing"
        row.last_error = error[:500]
        row.claimed_by, row.claimed_at = None, None
        if final:
            row.status = "failed"
            invitation = store.lock_invitation(session, message.invitation_id)
            if (
                message.kind == "invite"
                and invitation is not None
                and invitation.status == "pending"
            ):
                invitation.status, invitation.failed_at = "failed", now
        else:
            row.status = "queued"
            retry_at = now + policy.delay(message.attempts)
            quiet = (
                QuietHours.parse(message.quiet_hours) if message.kind in SCHEDULED_KINDS else None
            )
            row.next_attempt_at = retry_at if quiet is None else quiet.next_allowed(retry_at)
        return row.status


def release_unsent(
    sessions: sessionmaker[Session], messages: Iterable[ClaimedMessage], *, worker: str
) -> int:
    """Give back claimed messages this worker never handed to the gateway (it is stopping):
    queued again exactly as before the claim, attempts included, so the next dispatcher sends
    them at once instead of waiting for the lease, and asks the gateway first only where it
    would have anyway (a message that was in flight before this claim)."""
    ids = [message.id for message in messages]
    if not ids:
        return 0
    with transaction(sessions) as session:
        return store.requeue_claimed(session, ids, worker)


def cancel_queued(
    session: Session, invitation_ids: Iterable[int], *, kinds: Iterable[str] | None = None
) -> int:
    """Cancel messages not yet handed to the gateway (never those in `sending`)."""
    ids = list(invitation_ids)
    if not ids:
        return 0
    return store.cancel_queued_messages(session, ids, kinds)


def apply_delivery_status(
    session: Session, local_id: str, status: DeliveryStatus, now: datetime
) -> bool:
    """A provider's delivery report; False when the local id is not ours."""
    row = store.lock_message_by_local_id(session, local_id)
    if row is None:
        return False
    if status is DeliveryStatus.delivered:
        row.status = "delivered"
    elif status in (DeliveryStatus.undelivered, DeliveryStatus.failed) and row.status in (
        "sent",
        "sending",
    ):
        row.status = status.value
    if row.kind != "invite":
        return True
    invitation = store.lock_invitation(session, row.invitation_id)
    if invitation is None:
        return True
    if status is DeliveryStatus.delivered:
        invitation.delivered_at = invitation.delivered_at or now
        if invitation.status in ("pending", "sent", "failed"):
            invitation.status = "delivered"
    elif status in (DeliveryStatus.undelivered, DeliveryStatus.failed) and invitation.status in (
        "pending",
        "sent",
    ):
        invitation.status, invitation.failed_at = "failed", now
    return True


def record_delivery_report(
    sessions: sessionmaker[Session], local_id: str, status: str, now: datetime
) -> bool:
    """A delivery report from the provider's webhook; ValueError naming the statuses when
    `status` is not one of them, False when the local id is not ours."""
    try:
        known = DeliveryStatus(status)
    except ValueError:
        raise ValueError(
            f"status must be one of {', '.join(s.value for s in DeliveryStatus)}; got {status!r}"
        ) from None
    with transaction(sessions) as session:
        return apply_delivery_status(session, local_id, known, now)
