"""Staff HTTP API for changing users (admin only): passwords, tokens, deactivation, unlocking.

    POST /api/v1/users/{username}/password   JSON {"password": "..."} (ends their sessions)
    POST /api/v1/users/{username}/tokens     a new API token, in the response once
    POST /api/v1/users/{username}/deactivate | /activate | /unlock

Listing and adding users are in survey.registry.api. Every change is in the audit log.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar

import anyio.to_thread
import msgspec
from litestar import Controller, Request, post
from litestar.params import FromPath

from survey.access import users
from survey.context import AppContext
from survey.http.guards import principal_of, staff
from survey.kernel.db import transaction
from survey.registry.api import ONCE, parse_body


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
