"""The audit log as admins browse it: filters read from text, entries newest first.

Writing the log is survey.kernel.audit's job; this reads it for `GET /api/v1/audit` (JSON) and
the page `GET /audit`. Filters: `action` (exact, or a family ending in `.` or `*`), `actor`,
`entity`, `entity_id` (exact), `since` (inclusive) and `until` (inclusive when a day, exclusive
when a time), each a Tehran day in either calendar (2026-03-21, 1405-08-01, Persian digits
too) or an ISO time (UTC when it has no offset).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from survey.errors import InvalidInput, Problem
from survey.kernel import audit
from survey.kernel.audit import AuditEntry
from survey.kernel.locale import fold_digits
from survey.kernel.periods import DAY_FORMS, FIRST_GREGORIAN_YEAR, parse_day, tehran_midnight_utc

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
    """A Tehran day in either calendar, read as every day a person types is (its start; with
    `end`, the next day's start), or an ISO 8601 Gregorian time (UTC if it has no offset)."""
    if not value or not value.strip():
        return None
    text = fold_digits(value.strip())
    try:
        if "T" not in text and ":" not in text:
            day = parse_day(value, field=field)
            return tehran_midnight_utc(day + timedelta(days=1) if end else day)
        moment = datetime.fromisoformat(text)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        moment.astimezone(UTC)  # a time near year 1 or 9999 may not exist in UTC
    except (ValueError, OverflowError):
        raise _filter_error(
            field, f"expected {DAY_FORMS} or an ISO time; got {value[:40]!r}"
        ) from None
    if moment.year < FIRST_GREGORIAN_YEAR:
        raise _filter_error(
            field,
            f"{value[:40]!r} looks like a Solar Hijri date; give the day alone (1405-08-01) or "
            "an ISO 8601 Gregorian time",
        )
    return moment


def _filter_error(field: str, message: str) -> InvalidInput:
    return InvalidInput("the audit filter is wrong", [Problem(message, field=field)])


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
