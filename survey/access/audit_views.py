"""The audit log for admins: `GET /api/v1/audit` (JSON) and the page `GET /audit` (HTML).

Filters (both): `limit` (1-10000, default 50), `action` (exact, or a family such as `user.`),
`actor` (e.g. `staff:sara`, `cli:root`), `entity`, `entity_id`, `since` and `until` (a day
YYYY-MM-DD or an ISO time, UTC; `until` exclusive). Read-only: there is no route that changes
or deletes an entry.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from litestar import Controller, MediaType, Request, get
from litestar.params import FromQuery
from litestar.response import Template

from survey.context import AppContext
from survey.errors import InvalidInput, Problem
from survey.http.guards import principal_of, staff
from survey.kernel import audit


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
    except ValueError:
        raise InvalidInput(
            "the audit filter is wrong",
            [Problem(f"expected YYYY-MM-DD or an ISO time; got {value!r}", field=field)],
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _entries(
    request: Request[Any, Any, Any],
    limit: int,
    action: str | None,
    actor: str | None,
    entity: str | None,
    entity_id: str | None,
    since: str | None,
    until: str | None,
) -> list[audit.AuditEntry]:
    context: AppContext = request.app.state.context
    start = parse_time(since, "since")
    end = parse_time(until, "until", end=True)
    with context.read_sessions() as session:
        return audit.recent(
            session,
            limit=limit,
            action=action,
            actor=actor,
            entity=entity,
            entity_id=entity_id,
            since=start,
            until=end,
        )


def _text(value: object) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


class AuditController(Controller):
    path = "/"
    tags: ClassVar[list[str]] = ["staff"]
    guards: ClassVar[list[Any]] = [staff("admin")]

    @get("/api/v1/audit", sync_to_thread=True)
    def audit_log(
        self,
        request: Request[Any, Any, Any],
        limit: FromQuery[int] = 50,
        action: FromQuery[str | None] = None,
        actor: FromQuery[str | None] = None,
        entity: FromQuery[str | None] = None,
        entity_id: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """Audit entries, newest first: who, what, when, the state before and after."""
        entries = _entries(request, limit, action, actor, entity, entity_id, since, until)
        return {"entries": [asdict(e) for e in entries]}

    @get("/audit", include_in_schema=False, sync_to_thread=True)
    def audit_page(
        self,
        request: Request[Any, Any, Any],
        limit: FromQuery[int] = 100,
        action: FromQuery[str | None] = None,
        actor: FromQuery[str | None] = None,
        entity: FromQuery[str | None] = None,
        entity_id: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
    ) -> Template:
        filters = {
            "limit": limit,
            "action": action,
            "actor": actor,
            "entity": entity,
            "entity_id": entity_id,
            "since": since,
            "until": until,
        }
        error = ""
        rows: list[dict[str, Any]] = []
        status = 200
        try:
            entries = _entries(request, limit, action, actor, entity, entity_id, since, until)
            rows = [
                {**asdict(e), "before_text": _text(e.before), "after_text": _text(e.after)}
                for e in entries
            ]
        except InvalidInput as exc:
            error = str(exc)
            status = 422
        return Template(
            template_name="access/audit_log.html.j2",
            context={
                "entries": rows,
                "filters": filters,
                "error": error,
                "who": principal_of(request).name,
            },
            status_code=status,
            media_type=MediaType.HTML,
            headers={"Cache-Control": "no-store"},
        )
