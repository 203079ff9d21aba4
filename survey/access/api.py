"""Staff users over HTTP (admin only) and the audit log (admins).

    GET  /api/v1/users, POST /api/v1/users   list, add (a token in the response once)
    POST /api/v1/users/{username}/password   JSON {"password": "..."} (ends their sessions)
    POST /api/v1/users/{username}/tokens     a new API token, in the response once
    POST /api/v1/users/{username}/deactivate | /activate | /unlock
    GET  /api/v1/audit (JSON), GET /audit (the page)

Every change is in the audit log.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import msgspec
from litestar import Controller, MediaType, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from survey.access import users
from survey.access.audit_log import AuditFilters, AuditLogView, read_audit_log, read_audit_page
from survey.access.audit_page import audit_page_model
from survey.http.bodies import parse_body
from survey.http.dependencies import Caller, Context
from survey.http.guards import staff
from survey.http.openapi import documented_body, json_example
from survey.http.staff import staff_frame


class PasswordIn(msgspec.Struct, forbid_unknown_fields=True):
    password: str


class UserChangeController(Controller):
    path = "/api/v1/users/{username:str}"
    tags = ("staff",)
    guards = (staff("admin"),)

    @post(
        "/password",
        status_code=200,
        dependencies=documented_body(
            PasswordIn,
            examples=[json_example("A new password", {"password": "a long passphrase of words"})],
        ),
    )
    async def set_password(
        self,
        request: Request[Any, Any, Any],
        context: Context,
        principal: Caller,
        username: FromPath[str],
    ) -> users.UserChanged:
        data: PasswordIn = parse_body(await request.body(), PasswordIn)
        return await anyio.to_thread.run_sync(
            users.change_password, context, principal, username, data.password
        )

    @post("/tokens", status_code=201, sync_to_thread=True)
    def issue_token(
        self, context: Context, principal: Caller, username: FromPath[str]
    ) -> users.NewToken:
        return users.issue_staff_token(context, principal, username)

    @post("/deactivate", status_code=200, sync_to_thread=True)
    def deactivate(
        self, context: Context, principal: Caller, username: FromPath[str]
    ) -> users.UserChanged:
        """Every token and session of the user stops working."""
        return users.change_account(context, principal, username, "deactivate")

    @post("/activate", status_code=200, sync_to_thread=True)
    def activate(
        self, context: Context, principal: Caller, username: FromPath[str]
    ) -> users.UserChanged:
        return users.change_account(context, principal, username, "activate")

    @post("/unlock", status_code=200, sync_to_thread=True)
    def unlock(
        self, context: Context, principal: Caller, username: FromPath[str]
    ) -> users.UserChanged:
        """Lift a lockout after failed sign-ins."""
        return users.change_account(context, principal, username, "unlock")


class UserIn(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    role: str
    agency: str | None = None
    name: str = ""
    password: str | None = None  # to sign in on /login (survey.access.sessions); never stored plain


class UserController(Controller):
    path = "/api/v1"
    tags = ("staff",)

    @get("/users", guards=[staff("admin")], sync_to_thread=True)
    def list_users(self, context: Context) -> users.UserList:
        return users.list_staff(context)

    @post(
        "/users",
        guards=[staff("admin")],
        status_code=201,
        dependencies=documented_body(
            UserIn,
            examples=[
                json_example(
                    "A statistician",
                    {"username": "sara", "role": "statistician", "name": "Sara Ahmadi"},
                ),
                json_example(
                    "An agency operator who signs in at /login",
                    {
                        "username": "tax-ops",
                        "role": "agency",
                        "agency": "TAX",
                        "password": "a long passphrase of words",
                    },
                ),
            ],
        ),
    )
    async def add_user(
        self, request: Request[Any, Any, Any], context: Context, principal: Caller
    ) -> users.NewUser:
        """Create a staff user; the response holds their first API token, once."""
        data: UserIn = parse_body(await request.body(), UserIn)
        return await anyio.to_thread.run_sync(
            lambda: users.add_staff(
                context,
                principal,
                username=data.username,
                role=data.role,
                agency=data.agency,
                display_name=data.name,
                password=data.password,
            )
        )


# The audit log for admins: `GET /api/v1/audit` (JSON) and the page `GET /audit` (HTML).


class AuditController(Controller):
    path = "/"
    tags = ("staff",)
    guards = (staff("admin"),)

    @get("/api/v1/audit", sync_to_thread=True)
    def audit_log(
        self,
        context: Context,
        limit: FromQuery[int] = 50,
        action: FromQuery[str | None] = None,
        actor: FromQuery[str | None] = None,
        entity: FromQuery[str | None] = None,
        entity_id: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
    ) -> AuditLogView:
        """Audit entries, newest first: who, what, when, the state before and after."""
        filters = AuditFilters(limit, action, actor, entity, entity_id, since, until)
        return read_audit_log(context, filters)

    @get("/audit", include_in_schema=False, sync_to_thread=True)
    def audit_page(
        self,
        request: Request[Any, Any, Any],
        context: Context,
        principal: Caller,
        limit: FromQuery[int] = 100,
        action: FromQuery[str | None] = None,
        actor: FromQuery[str | None] = None,
        entity: FromQuery[str | None] = None,
        entity_id: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
    ) -> Template:
        filters = AuditFilters(limit, action, actor, entity, entity_id, since, until)
        page = read_audit_page(context, filters)
        frame = staff_frame(request, principal, "audit")
        return Template(
            template_name="access/audit_log.html.j2",
            context={**audit_page_model(page, frame["lang"]), **frame},
            status_code=422 if page.error else 200,
            media_type=MediaType.HTML,
            headers={"Cache-Control": "no-store", "Content-Language": frame["lang"]},
        )
