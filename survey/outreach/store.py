"""Outreach's SQL: every statement of invitations, the outbox, the dispatcher, retention and key
rotation, the only module of the domain that builds or runs a query.

The services decide (what to cancel, quiet hours, retries, texts) and own the transactions;
these functions take the open `Session` (ORM, the outbox and invitations) or `Connection`
(Core, retention and key rotation) and run one statement each, or one fixed pair. Locks are
part of the statements: the claims are `SELECT ... FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite
has one writer at a time), the rows about to change `SELECT ... FOR UPDATE`; see
survey.outreach.outbox for the exactly-once protocol they serve.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.kernel.db import rows_changed
from survey.models import (
    Agency,
    Contact,
    Invitation,
    OptOut,
    OutboxMessage,
    QuestionnaireVersion,
    SampledUnit,
    SamplingPlan,
    Service,
)

__all__ = [
    "ClaimRow",
    "PhoneRow",
    "ReminderRow",
    "SendStateRow",
    "blank_phone_hashes",
    "cancel_queued_messages",
    "claim_due_rows",
    "count_erasable_units",
    "count_forgettable_units",
    "count_old_contacts",
    "delete_contacts",
    "delete_opt_out",
    "erasable_unit_ids",
    "erase_phones",
    "expire_invitations",
    "find_message_id",
    "forgettable_unit_ids",
    "get_agency",
    "get_plan",
    "get_service",
    "insert_invitations",
    "insert_messages",
    "latest_questionnaire_version",
    "lock_expirable_invitations",
    "lock_held_messages",
    "lock_invitation",
    "lock_invitations_for_send",
    "lock_message",
    "lock_message_by_local_id",
    "lock_pending_units",
    "lock_remindable_invitations",
    "lock_units_to_reencrypt",
    "longest_contact_window",
    "move_contact_hashes",
    "old_contact_ids",
    "opt_out_changes",
    "opted_out_hashes",
    "phones_per_key",
    "questionnaire_version",
    "record_sends",
    "rehash_opt_out",
    "requeue_claimed",
    "set_token_hashes",
    "set_unit_statuses",
    "update_invitations_after_send",
    "update_unit_phones",
]

#: A claimed outbox row with what deciding and sending it needs: the row (locked), its
#: invitation's status and token hash, the unit's phone ciphertext, the plan's quiet hours and
#: whether the number opted out (None: never did).
ClaimRow = sa.Row[OutboxMessage, str, str, bytes | None, list[str] | None, bool]
#: An invitation due for a reminder (locked), its unit's agency, plan's quiet hours, version,
#: and the unit's service and day (the reminder names them).
ReminderRow = sa.Row[Invitation, int, list[str] | None, QuestionnaireVersion, int, date]
#: An invitation's state that a send changes: id, status, sent_at, due_at, reminder_due_at,
#: reminded_at (Core columns, untyped).
SendStateRow = sa.Row[Any, Any, Any, Any, Any, Any]
#: A unit to re-encrypt: id, phone_ciphertext, phone_key_id, phone_hash.
PhoneRow = sa.Row[int | None, bytes | None, str, str]

# Core tables (not the ORM classes) for the executemany UPDATEs below: through a Session, an
# ORM-enabled UPDATE with a list of parameter sets would become a bulk UPDATE by primary key.
_outbox = OutboxMessage.metadata.tables[str(OutboxMessage.__tablename__)]
_invitation = Invitation.metadata.tables[str(Invitation.__tablename__)]
_MARK_SENT = (
    sa.update(_outbox)
    .where(
        _outbox.c.id == sa.bindparam("b_id"),
        _outbox.c.status == "sending",
        _outbox.c.claimed_by == sa.bindparam("b_worker"),
    )
    .values(
        status=sa.bindparam("b_status"),
        sent_at=sa.bindparam("b_sent_at"),
        provider_id=sa.bindparam("b_provider_id"),
        last_error=None,
    )
)
_INVITATION_AFTER_SEND = (
    sa.update(_invitation)
    .where(_invitation.c.id == sa.bindparam("b_id"))
    .values(
        status=sa.bindparam("b_status"),
        sent_at=sa.bindparam("b_sent_at"),
        reminder_due_at=sa.bindparam("b_reminder_due_at"),
        reminded_at=sa.bindparam("b_reminded_at"),
    )
)


# -- invitations -----------------------------------------------------------------------------
def lock_pending_units(session: Session, limit: int) -> list[SampledUnit]:
    """Up to `limit` pending units with a mode and a registered questionnaire, by id, locked
    (`FOR UPDATE SKIP LOCKED`: concurrent dispatchers take disjoint units)."""
    registered = sa.select(col(QuestionnaireVersion.qid)).distinct().scalar_subquery()
    query = (
        sa.select(SampledUnit)
        .where(
            col(SampledUnit.status) == "pending",
            col(SampledUnit.mode).is_not(None),
            col(SampledUnit.questionnaire_qid).in_(registered),
        )
        .order_by(col(SampledUnit.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def opted_out_hashes(session: Session, phone_hashes: Collection[str]) -> set[str]:
    """Those of `phone_hashes` with an active opt-out."""
    return set(
        session.scalars(
            sa.select(col(OptOut.phone_hash)).where(
                col(OptOut.active).is_(True),
                col(OptOut.phone_hash).in_(phone_hashes),
            )
        )
    )


def insert_invitations(
    session: Session, rows: Sequence[dict[str, Any]]
) -> list[tuple[int | None, int]]:
    """One multi-row INSERT ... RETURNING: (invitation id, sampled unit id) in `rows`' order."""
    created = session.execute(
        sa.insert(Invitation).returning(
            col(Invitation.id),
            col(Invitation.sampled_unit_id),
            sort_by_parameter_order=True,
        ),
        rows,
    ).all()
    return [(invitation_id, unit_id) for invitation_id, unit_id in created]


def set_token_hashes(session: Session, tokens: Sequence[dict[str, Any]]) -> None:
    """`{"id", "token_hash"}` per invitation (an ORM bulk UPDATE by primary key)."""
    session.execute(sa.update(Invitation), tokens)


def insert_messages(session: Session, messages: Sequence[dict[str, Any]]) -> None:
    """Outbox rows, as column dicts, in one INSERT."""
    session.execute(sa.insert(OutboxMessage), messages)


def set_unit_statuses(session: Session, statuses: Sequence[dict[str, Any]]) -> None:
    """`{"id", "status"}` per sampled unit (an ORM bulk UPDATE by primary key)."""
    session.execute(sa.update(SampledUnit), statuses)


def get_plan(session: Session, plan_id: int) -> SamplingPlan | None:
    return session.get(SamplingPlan, plan_id)


def get_agency(session: Session, agency_id: int) -> Agency | None:
    return session.get(Agency, agency_id)


def get_service(session: Session, service_id: int) -> Service | None:
    return session.get(Service, service_id)


def questionnaire_version(
    session: Session, qid: str, version: int | None
) -> QuestionnaireVersion | None:
    """Version `version` of questionnaire `qid` (the latest when None), or None."""
    query = sa.select(QuestionnaireVersion).where(col(QuestionnaireVersion.qid) == qid)
    if version is not None:
        query = query.where(col(QuestionnaireVersion.version) == version)
    return session.scalars(
        query.order_by(col(QuestionnaireVersion.version).desc()).limit(1)
    ).first()


def latest_questionnaire_version(session: Session, qid: str) -> QuestionnaireVersion:
    """The latest version of questionnaire `qid`; NoResultFound when there is none."""
    return session.scalars(
        sa.select(QuestionnaireVersion)
        .where(col(QuestionnaireVersion.qid) == qid)
        .order_by(col(QuestionnaireVersion.version).desc())
        .limit(1)
    ).one()


# -- expiry and reminders (the dispatcher) ---------------------------------------------------
def lock_expirable_invitations(
    session: Session, *, now: datetime, statuses: Iterable[str], limit: int
) -> list[int]:
    """Ids of up to `limit` invitations in `statuses` past `expires_at`, locked (SKIP LOCKED)."""
    return [
        invitation_id  # a stored row's id is never None; this narrows `int | None`
        for invitation_id in session.scalars(
            sa.select(col(Invitation.id))
            .where(col(Invitation.expires_at) <= now, col(Invitation.status).in_(statuses))
            .order_by(col(Invitation.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if invitation_id is not None
    ]


def expire_invitations(session: Session, ids: Sequence[int], now: datetime) -> None:
    session.execute(
        sa.update(Invitation)
        .where(col(Invitation.id).in_(ids))
        .values(status="expired", expired_at=now)
    )


def lock_remindable_invitations(
    session: Session, *, now: datetime, statuses: Iterable[str], limit: int
) -> Sequence[ReminderRow]:
    """Up to `limit` invitations in `statuses` whose reminder is due, not yet reminded nor
    expired and with no reminder in the outbox, by id, locked (SKIP LOCKED, the invitations)."""
    has_reminder = (
        sa.select(col(OutboxMessage.id))
        .where(
            col(OutboxMessage.invitation_id) == col(Invitation.id),
            col(OutboxMessage.kind) == "reminder",
        )
        .exists()
    )
    query = (
        sa.select(
            Invitation,
            col(SampledUnit.agency_id),
            col(SamplingPlan.quiet_hours),
            QuestionnaireVersion,
            col(SampledUnit.service_id),
            col(SampledUnit.day),
        )
        .join(SampledUnit, col(SampledUnit.id) == col(Invitation.sampled_unit_id))
        .join(SamplingPlan, col(SamplingPlan.id) == col(SampledUnit.plan_id))
        .join(
            QuestionnaireVersion,
            col(QuestionnaireVersion.id) == col(Invitation.questionnaire_version_id),
        )
        .where(
            col(Invitation.reminder_due_at) <= now,
            col(Invitation.reminded_at).is_(None),
            col(Invitation.status).in_(statuses),
            col(Invitation.expires_at) > now,
            ~has_reminder,
        )
        .order_by(col(Invitation.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=Invitation)
    )
    return session.execute(query).all()


# -- the outbox ------------------------------------------------------------------------------
def find_message_id(session: Session, local_id: str) -> int | None:
    """The id of the outbox row with that `local_id`, or None."""
    return session.scalar(
        sa.select(col(OutboxMessage.id)).where(col(OutboxMessage.local_id) == local_id)
    )


def claim_due_rows(
    session: Session, *, now: datetime, lease: timedelta, limit: int
) -> Sequence[ClaimRow]:
    """Up to `limit` rows due (`queued` with `next_attempt_at` passed, or `sending` with the
    lease expired), oldest due first, locked `FOR UPDATE SKIP LOCKED OF outbox_message`."""
    due = sa.or_(
        sa.and_(col(OutboxMessage.status) == "queued", col(OutboxMessage.next_attempt_at) <= now),
        sa.and_(
            col(OutboxMessage.status) == "sending", col(OutboxMessage.claimed_at) < now - lease
        ),
    )
    query = (
        sa.select(
            OutboxMessage,
            col(Invitation.status),
            col(Invitation.token_hash),
            col(SampledUnit.phone_ciphertext),
            col(SamplingPlan.quiet_hours),
            col(OptOut.active),
        )
        .join(Invitation, col(Invitation.id) == col(OutboxMessage.invitation_id))
        .join(SampledUnit, col(SampledUnit.id) == col(Invitation.sampled_unit_id))
        .join(SamplingPlan, col(SamplingPlan.id) == col(SampledUnit.plan_id))
        .outerjoin(OptOut, col(OptOut.phone_hash) == col(SampledUnit.phone_hash))
        .where(due)
        .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=OutboxMessage)
    )
    return session.execute(query).all()


def lock_held_messages(session: Session, ids: Sequence[int], worker: str) -> set[int]:
    """Those of `ids` still `sending` and claimed by `worker`, locked (`FOR UPDATE`)."""
    return set(
        session.scalars(
            sa.select(_outbox.c.id)
            .where(
                _outbox.c.id.in_(ids),
                _outbox.c.status == "sending",
                _outbox.c.claimed_by == worker,
            )
            .with_for_update()
        )
    )


def record_sends(session: Session, sends: Sequence[dict[str, Any]]) -> None:
    """One executemany UPDATE: each row (`b_id`) still `sending` for `b_worker` gets `b_status`,
    `b_sent_at`, `b_provider_id` and no last error."""
    session.execute(_MARK_SENT, sends)


def lock_invitations_for_send(session: Session, ids: Collection[int]) -> dict[int, SendStateRow]:
    """The state a send changes (id, status, sent_at, due_at, reminder_due_at, reminded_at) of
    these invitations, by id, locked (`FOR UPDATE`)."""
    return {
        row.id: row
        for row in session.execute(
            sa.select(
                _invitation.c.id,
                _invitation.c.status,
                _invitation.c.sent_at,
                _invitation.c.due_at,
                _invitation.c.reminder_due_at,
                _invitation.c.reminded_at,
            )
            .where(_invitation.c.id.in_(ids))
            .with_for_update()
        )
    }


def update_invitations_after_send(session: Session, updates: Sequence[dict[str, Any]]) -> None:
    """One executemany UPDATE: `b_status`, `b_sent_at`, `b_reminder_due_at`, `b_reminded_at` of
    invitation `b_id`."""
    session.execute(_INVITATION_AFTER_SEND, updates)


def lock_message(session: Session, message_id: int) -> OutboxMessage | None:
    """The outbox row, locked (`FOR UPDATE`)."""
    return session.get(OutboxMessage, message_id, with_for_update=True)


def lock_message_by_local_id(session: Session, local_id: str) -> OutboxMessage | None:
    """The outbox row with that `local_id`, locked (`FOR UPDATE`)."""
    return session.scalar(
        sa.select(OutboxMessage).where(col(OutboxMessage.local_id) == local_id).with_for_update()
    )


def lock_invitation(session: Session, invitation_id: int) -> Invitation | None:
    """The invitation, locked (`FOR UPDATE`)."""
    return session.get(Invitation, invitation_id, with_for_update=True)


def requeue_claimed(session: Session, ids: Sequence[int], worker: str) -> int:
    """Rows of `ids` still `sending` for `worker` back to `queued`, unclaimed, one attempt
    fewer; how many."""
    return rows_changed(
        session.execute(
            sa.update(OutboxMessage)
            .where(
                col(OutboxMessage.id).in_(ids),
                col(OutboxMessage.status) == "sending",
                col(OutboxMessage.claimed_by) == worker,
            )
            .values(
                status="queued",
                claimed_by=None,
                claimed_at=None,
                attempts=col(OutboxMessage.attempts) - 1,
            )
        )
    )


def cancel_queued_messages(
    session: Session, invitation_ids: Sequence[int], kinds: Iterable[str] | None = None
) -> int:
    """These invitations' `queued` rows (of `kinds`, or all) to `cancelled`; how many."""
    condition = [
        col(OutboxMessage.invitation_id).in_(invitation_ids),
        col(OutboxMessage.status) == "queued",
    ]
    if kinds is not None:
        condition.append(col(OutboxMessage.kind).in_(list(kinds)))
    return rows_changed(
        session.execute(sa.update(OutboxMessage).where(*condition).values(status="cancelled"))
    )


# -- retention -------------------------------------------------------------------------------
def longest_contact_window(conn: Connection) -> int:
    """The longest `contact_rule_days` of any plan (0 without plans)."""
    return int(
        conn.execute(sa.select(sa.func.max(col(SamplingPlan.contact_rule_days)))).scalar() or 0
    )


def _erasable_units(cutoff: datetime, finished_statuses: Iterable[str]) -> sa.Select[Any]:
    """Units whose phone is past retention: finished invitations, or never invited."""
    finished_at = sa.func.coalesce(
        col(Invitation.completed_at),
        col(Invitation.opted_out_at),
        col(Invitation.expired_at),
        col(Invitation.failed_at),
    )
    finished = (
        sa.select(col(SampledUnit.id))
        .join(Invitation, col(Invitation.sampled_unit_id) == col(SampledUnit.id))
        .where(
            col(SampledUnit.phone_ciphertext).is_not(None),
            col(Invitation.status).in_(finished_statuses),
            finished_at <= cutoff,
        )
    )
    never_invited = sa.select(col(SampledUnit.id)).where(
        col(SampledUnit.phone_ciphertext).is_not(None),
        col(SampledUnit.created_at) <= cutoff,
        sa.or_(col(SampledUnit.status) != "pending", col(SampledUnit.mode).is_(None)),
        ~sa.exists().where(col(Invitation.sampled_unit_id) == col(SampledUnit.id)),
    )
    return sa.union_all(finished, never_invited).subquery().select()


def _old_contacts(contact_cutoff: datetime) -> sa.Select[Any]:
    return sa.select(col(Contact.id)).where(col(Contact.contacted_at) <= contact_cutoff)


def _forgettable_units(contact_cutoff: datetime) -> sa.Select[Any]:
    """Units with the phone erased, drawn before every contact window closed."""
    return sa.select(col(SampledUnit.id)).where(
        col(SampledUnit.phone_ciphertext).is_(None),
        col(SampledUnit.phone_hash) != "",
        col(SampledUnit.created_at) <= contact_cutoff,
    )


def _count(conn: Connection, query: sa.Select[Any]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one())


def _ids(conn: Connection, query: sa.Select[Any], limit: int) -> list[int]:
    return [row[0] for row in conn.execute(query.limit(limit))]


def count_erasable_units(
    conn: Connection, cutoff: datetime, finished_statuses: Iterable[str]
) -> int:
    """Units holding a phone whose invitation finished (in `finished_statuses`) by `cutoff`, or
    drawn by `cutoff` and never to be invited."""
    return _count(conn, _erasable_units(cutoff, finished_statuses))


def erasable_unit_ids(
    conn: Connection, cutoff: datetime, finished_statuses: Iterable[str], limit: int
) -> list[int]:
    """Up to `limit` of the units `count_erasable_units` counts."""
    return _ids(conn, _erasable_units(cutoff, finished_statuses), limit)


def erase_phones(conn: Connection, ids: Sequence[int]) -> None:
    conn.execute(
        sa.update(SampledUnit)
        .where(col(SampledUnit.id).in_(ids))
        .values(phone_ciphertext=None, phone_key_id="")
    )


def count_old_contacts(conn: Connection, contact_cutoff: datetime) -> int:
    """Contact-rule rows made by `contact_cutoff`."""
    return _count(conn, _old_contacts(contact_cutoff))


def old_contact_ids(conn: Connection, contact_cutoff: datetime, limit: int) -> list[int]:
    return _ids(conn, _old_contacts(contact_cutoff), limit)


def delete_contacts(conn: Connection, ids: Sequence[int]) -> None:
    conn.execute(sa.delete(Contact).where(col(Contact.id).in_(ids)))


def count_forgettable_units(conn: Connection, contact_cutoff: datetime) -> int:
    """Units with the phone erased and a phone hash, drawn by `contact_cutoff`."""
    return _count(conn, _forgettable_units(contact_cutoff))


def forgettable_unit_ids(conn: Connection, contact_cutoff: datetime, limit: int) -> list[int]:
    return _ids(conn, _forgettable_units(contact_cutoff), limit)


def blank_phone_hashes(conn: Connection, ids: Sequence[int]) -> None:
    conn.execute(sa.update(SampledUnit).where(col(SampledUnit.id).in_(ids)).values(phone_hash=""))


# -- key rotation ----------------------------------------------------------------------------
def phones_per_key(conn: Connection) -> dict[str, int]:
    """Stored phones (ciphertexts) per `phone_key_id`, in one grouped query."""
    query = (
        sa.select(col(SampledUnit.phone_key_id), sa.func.count())
        .where(col(SampledUnit.phone_ciphertext).is_not(None))
        .group_by(col(SampledUnit.phone_key_id))
    )
    return {str(key): int(n) for key, n in conn.execute(query)}


def lock_units_to_reencrypt(
    conn: Connection, *, after: int, key_id: str, limit: int
) -> Sequence[PhoneRow]:
    """(id, phone_ciphertext, phone_key_id, phone_hash) of up to `limit` units with id > `after`
    holding a phone under another key than `key_id`, by id; locked (SKIP LOCKED) except on
    SQLite (one writer)."""
    query = (
        sa.select(
            col(SampledUnit.id),
            col(SampledUnit.phone_ciphertext),
            col(SampledUnit.phone_key_id),
            col(SampledUnit.phone_hash),
        )
        .where(
            col(SampledUnit.id) > after,
            col(SampledUnit.phone_ciphertext).is_not(None),
            col(SampledUnit.phone_key_id) != key_id,
        )
        .order_by(col(SampledUnit.id))
        .limit(limit)
    )
    if conn.dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    return conn.execute(query).all()


def update_unit_phones(conn: Connection, updates: Sequence[dict[str, object]]) -> None:
    """One executemany UPDATE: unit `row_id` gets `blob`, `key_id` and `new_hash`."""
    conn.execute(
        sa.update(SampledUnit)
        .where(col(SampledUnit.id) == sa.bindparam("row_id"))
        .values(
            phone_ciphertext=sa.bindparam("blob"),
            phone_key_id=sa.bindparam("key_id"),
            phone_hash=sa.bindparam("new_hash"),
        ),
        updates,
    )


def move_contact_hashes(conn: Connection, pairs: Sequence[dict[str, str]]) -> int:
    """Contact-rule rows from hash `old` to `new` (executemany); how many moved."""
    result = conn.execute(
        sa.update(Contact)
        .where(col(Contact.phone_hash) == sa.bindparam("old"))
        .values(phone_hash=sa.bindparam("new")),
        pairs,
    )
    return max(result.rowcount, 0)


def opt_out_changes(conn: Connection, hashes: Collection[str]) -> dict[str, datetime]:
    """When the opt-out (or opt-in) of each of these hashes that has a row was last changed."""
    return {
        row.phone_hash: row.changed_at
        for row in conn.execute(sa.select(OptOut).where(col(OptOut.phone_hash).in_(hashes)))
    }


def delete_opt_out(conn: Connection, phone_hash: str) -> None:
    conn.execute(sa.delete(OptOut).where(col(OptOut.phone_hash) == phone_hash))


def rehash_opt_out(conn: Connection, old: str, new: str) -> None:
    conn.execute(sa.update(OptOut).where(col(OptOut.phone_hash) == old).values(phone_hash=new))
