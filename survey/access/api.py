"""Staff users over HTTP (admin only) and the audit log (admins).

    GET  /api/v1/users, POST /api/v1/users   list, add (a token in the response once)
    POST /api/v1/users/{username}/password   JSON {"password": "..."} (ends their sessions)
    POST /api/v1/users/{username}/tokens     a new API token, in the response once
    POST /api/v1/users/{username}/deactivate | /activate | /unlock
    GET  /api/v1/audit (JSON), GET /audit (the page)

Every change is in the audit log.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import anyio.to_thread
import msgspec
from litestar import Controller, MediaType, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from survey.access import users
from survey.context import AppContext
from survey.errors import InvalidInput, Problem
from survey.http.bodies import parse_body
from survey.http.guards import principal_of, staff
from survey.kernel import audit
from survey.kernel.credentials import ONCE, IssuedKey
from survey.kernel.db import transaction


class PasswordIn(msgspec.Struct, forbid_unknown_fields=True):
    password: str


class UserChangeController(Controller):
    path = "/api/v1/users/{username:str}"
    tags: ClassVar[list[str]] = ["staff"]
    guards: ClassVar[list[Any]] = [staff("admin")]

    @post("/password", status_code=200)
    async def set_password(self, request: Request, username: FromPath[str]) -> dict[str, Any]:
        data: PasswordIn = parse_body(await request.body(), PasswordIn)
        context: AppContext = request.app.state.context
        principal = principal_of(request)

        def work() -> users.UserView:
            with transaction(context.sessions) as session:
                return users.set_password(
                    session, principal, username, data.password, now=context.clock()
                )

        view = await anyio.to_thread.run_sync(work)
        context.keys.forget()
        return {"user": asdict(view)}

    @post("/tokens", status_code=201, sync_to_thread=True)
    def issue_token(self, request: Request, username: FromPath[str]) -> dict[str, Any]:
        context: AppContext = request.app.state.context
        with transaction(context.sessions) as session:
            issued = users.issue_token(session, principal_of(request), username)
        return {"user": username, "token": issued.key, "note": f"the token is {ONCE}"}

    @post("/deactivate", status_code=200, sync_to_thread=True)
    def deactivate(self, request: Request, username: FromPath[str]) -> dict[str, Any]:
        """Every token and session of the user stops working."""
        return _change(request, username, "deactivate")

    @post("/activate", status_code=200, sync_to_thread=True)
    def activate(self, request: Request, username: FromPath[str]) -> dict[str, Any]:
        return _change(request, username, "activate")

    @post("/unlock", status_code=200, sync_to_thread=True)
    def unlock(self, request: Request, username: FromPath[str]) -> dict[str, Any]:
        """Lift a lockout after failed sign-ins."""
        return _change(request, username, "unlock")


def _change(request: Request, username: str, change: str) -> dict[str, Any]:
    context: AppContext = request.app.state.context
    now = context.clock()
    with transaction(context.sessions) as session:
        if change == "unlock":
            view = users.unlock(session, principal_of(request), username, now=now)
        else:
            view = users.set_active(
                session, principal_of(request), username, change == "activate", now=now
            )
    context.keys.forget()
    return {"user": asdict(view)}


class UserIn(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    role: str
    agency: str | None = None
    name: str = ""
    password: str | None = None  # to sign in on /login (survey.access.sessions); never stored plain


class UserController(Controller):
    path = "/api/v1"
    tags: ClassVar[list[str]] = ["staff"]

    @get("/users", guards=[staff("admin")], sync_to_thread=True)
    def list_users(self, request: Request) -> dict[str, Any]:
        context: AppContext = request.app.state.context
        with context.read_sessions() as session:
            staff_users = users.list_users(session)
        return {"users": [asdict(u) for u in staff_users]}

    @post("/users", guards=[staff("admin")], status_code=201)
    async def add_user(self, request: Request) -> dict[str, Any]:
        """Create a staff user; the response holds their first API token, once."""
        data: UserIn = parse_body(await request.body(), UserIn)
        context: AppContext = request.app.state.context
        principal = principal_of(request)

        def work() -> tuple[users.UserView, IssuedKey]:
            with transaction(context.sessions) as session:
                return users.add_user(
                    session,
                    principal,
                    username=data.username,
                    role=data.role,
                    agency=data.agency,
                    display_name=data.name,
                    password=data.password,
                )

        user, issued = await anyio.to_thread.run_sync(work)
        return {"user": asdict(user), "token": issued.key, "note": f"the token is {ONCE}"}


# The audit log for admins: `GET /api/v1/audit` (JSON) and the page `GET /audit` (HTML).

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
