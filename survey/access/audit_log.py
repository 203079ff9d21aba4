"""The audit log as admins browse it: filters read from text, entries newest first.

Writing the log is survey.kernel.audit's job; this reads it for `GET /api/v1/audit` (JSON) and
the page `GET /audit`. Filters: `action` (exact, or a family ending in `.` or `*`), `actor`,
`entity`, `entity_id` (exact), `since` (inclusive) and `until` (inclusive when a day, exclusive
when a time), each a day `YYYY-MM-DD` or an ISO time (UTC when it has no offset).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from survey.errors import InvalidInput, Problem
from survey.kernel import audit
from survey.kernel.audit import AuditEntry

if TYPE_CHECKING:
    from survey.context import AppContext

__all__ = [
    "AuditFilters",
    "AuditLogView",
    "AuditPage",
    "parse_time",
    "read_audit_log",
    "read_audit_page",
]


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """What an admin asked for, as typed (the times are read by `parse_time`)."""

    limit: int = 50
    action: str | None = None
    actor: str | None = None
    entity: str | None = None
    entity_id: str | None = None
    since: str | None = None
    until: str | None = None


@dataclass(frozen=True, slots=True)
class AuditLogView:
    entries: list[AuditEntry]


@dataclass(frozen=True, slots=True)
class AuditPage:
    """The rows of the audit page (each entry with its states as text), or why there are
    none (`error`: the filters could not be read)."""

    filters: AuditFilters
    entries: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def parse_time(value: str | None, field: str, *, end: bool = False) -> datetime | None:
    """A day (its start; with `end`, the next day's start) or an ISO time; UTC if naive."""
    if not value:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(text)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        moment.astimezone(UTC)  # a time near year 1 or 9999 may not exist in UTC
    except (ValueError, OverflowError):
        raise InvalidInput(
            "the audit filter is wrong",
            [Problem(f"expected YYYY-MM-DD or an ISO time; got {value[:40]!r}", field=field)],
        ) from None
    return moment


def read_audit_log(context: AppContext, filters: AuditFilters) -> AuditLogView:
    """The entries the filters select, newest first; InvalidInput for unreadable filters."""
    return AuditLogView(_entries(context, filters))


def read_audit_page(context: AppContext, filters: AuditFilters) -> AuditPage:
    """The page's rows; unreadable filters give an empty page that says what is wrong."""
    try:
        entries = _entries(context, filters)
    except InvalidInput as exc:
        return AuditPage(filters, error=str(exc))
    rows = [
        {**asdict(e), "before_text": _text(e.before), "after_text": _text(e.after)} for e in entries
    ]
    return AuditPage(filters, rows)


def _entries(context: AppContext, filters: AuditFilters) -> list[AuditEntry]:
    start = parse_time(filters.since, "since")
    end = parse_time(filters.until, "until", end=True)
    with context.read_sessions() as session:
        return audit.recent(
            session,
            limit=filters.limit,
            action=filters.action,
            actor=filters.actor,
            entity=filters.entity,
            entity_id=filters.entity_id,
            since=start,
            until=end,
        )


def _text(value: object) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)
