"""The audit log: who changed what, when, with the state before and after. Append-only.

Every consequential act (registry changes, key issue and revocation, users, plan activation,
questionnaire registration, imports) calls `record` inside the same database transaction as
the change itself, so a change and its audit row are committed together or not at all.
Nothing in the service updates or deletes audit rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.errors import InvalidInput
from survey.kernel.principal import Principal
from survey.models import AuditLog, utcnow

__all__ = ["CITIZEN_SMS", "CITIZEN_WEB", "AuditEntry", "recent", "record", "record_on"]

MAX_LIMIT = 10_000
# Citizens act through their survey link or by SMS; the audit log names the channel, never
# the person (no phone, no token): the entity is the invitation.
CITIZEN_WEB = Principal(kind="citizen", name="web")
CITIZEN_SMS = Principal(kind="citizen", name="sms")
_AUDIT_TABLE = AuditLog.metadata.tables[str(AuditLog.__tablename__)]  # for Core inserts


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit row, as listings show it."""

    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def record(
    session: Session,
    principal: Principal,
    action: str,
    entity: str,
    entity_id: str | int = "",
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Add an audit row to the caller's transaction (it commits with the change it records).

    `before`/`after` must be JSON-compatible and must never hold secrets or phone numbers:
    callers pass key prefixes, never keys.
    """
    session.add(
        AuditLog(
            at=at or utcnow(),
            actor=principal.actor,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            before=before,
            after=after,
        )
    )


def record_on(
    connection: sa.Connection,
    principal: Principal,
    action: str,
    entity: str,
    entity_id: str | int = "",
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """`record` for code that works on a Core connection (the answering hot path)."""
    connection.execute(
        sa.insert(_AUDIT_TABLE).values(
            at=at or utcnow(),
            actor=principal.actor,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            before=before,
            after=after,
        )
    )


def recent(
    session: Session,
    *,
    limit: int = 50,
    action: str | None = None,
    actor: str | None = None,
    entity: str | None = None,
    entity_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditEntry]:
    """The latest audit rows, newest first, filtered.

    `action` is an exact action name, or a family when it ends with `.` or `*` (`user.` or
    `user.*`: every user action); `actor`, `entity` and `entity_id` are exact; `since` is
    inclusive and `until` exclusive.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}; got {limit}")
    if since is not None and until is not None and until <= since:
        raise InvalidInput("until must be later than since")
    query = sa.select(AuditLog).order_by(col(AuditLog.id).desc()).limit(limit)
    if action:
        family = action.rstrip("*")
        if family.endswith("."):
            query = query.where(col(AuditLog.action).startswith(family, autoescape=True))
        else:
            query = query.where(col(AuditLog.action) == action)
    if actor:
        query = query.where(col(AuditLog.actor) == actor)
    if entity:
        query = query.where(col(AuditLog.entity) == entity)
    if entity_id:
        query = query.where(col(AuditLog.entity_id) == entity_id)
    if since is not None:
        query = query.where(col(AuditLog.at) >= since)
    if until is not None:
        query = query.where(col(AuditLog.at) < until)
    return [
        AuditEntry(
            id=row.id or 0,
            at=row.at,
            actor=row.actor,
            action=row.action,
            entity=row.entity,
            entity_id=row.entity_id,
            before=row.before,
            after=row.after,
        )
        for row in session.scalars(query)
    ]
