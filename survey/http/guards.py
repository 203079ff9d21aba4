"""Guards: every route states who may call it; the principal is then a handler dependency.

Staff are recognised by a bearer token (`Authorization: Bearer stk_...`, for scripts) or by the
session cookie a browser gets on `/login`. A request authenticated by the cookie that changes
something (any method but GET/HEAD/OPTIONS) must also carry the session's CSRF token, as the
`X-CSRF-Token` header or the `_csrf_token` field of a url-encoded form: another site can make a
browser send the cookie, but cannot read or compute the token. Bearer tokens need no CSRF token
(browsers never attach them on their own).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import anyio.to_thread
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from survey.access.sessions import csrf_token_for
from survey.context import AppContext
from survey.errors import Forbidden, NotAuthenticated
from survey.http.openapi import AGENCY_KEY, STAFF_SESSION, STAFF_TOKEN
from survey.kernel.principal import Principal

Guard = Callable[[ASGIConnection, BaseRouteHandler], Awaitable[None] | None]

SESSION_COOKIE = "survey_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "_csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPE = "application/x-www-form-urlencoded"
_PRINCIPAL_KEY = "principal"  # where a guard leaves the caller in the request's scope


def _remember(connection: ASGIConnection[Any, Any, Any, Any], principal: Principal) -> Principal:
    """Keep the authenticated caller in the request's scope, for `principal_of`."""
    _extras(connection)[_PRINCIPAL_KEY] = principal
    return principal


def _extras(connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
    # The ASGI scope is a plain dict at run time; its TypedDict type lists only ASGI's keys.
    return cast("dict[str, Any]", connection.scope)


def _authenticate(connection: ASGIConnection) -> Principal:
    context: AppContext = connection.app.state.context
    return _remember(connection, context.keys.resolve(connection.headers.get("authorization")))


def agency_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Only an agency's ingestion key."""
    _authenticate(connection).require_agency()


@dataclass(frozen=True, slots=True)
class AgencyKeyGuard:
    """Only an agency's ingestion key, checked on the event loop: Litestar runs a sync guard
    in a worker thread, one thread hop per request on the hottest route, and the key look-up
    is a cached dict read."""

    openapi_security: ClassVar[tuple[str, ...]] = (AGENCY_KEY,)

    async def __call__(self, connection: ASGIConnection, handler: BaseRouteHandler) -> None:
        agency_key(connection, handler)


def agency_system() -> AgencyKeyGuard:
    """The guard of routes for agencies' systems (their ingestion key)."""
    return AgencyKeyGuard()


def csrf_token(connection: ASGIConnection) -> str | None:
    """The CSRF token to put in a staff form (`<input type=hidden name=_csrf_token>`)."""
    token = connection.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    context: AppContext = connection.app.state.context
    return csrf_token_for(context.settings.secret_key, token)


async def _authenticate_staff(connection: ASGIConnection) -> Principal:
    context: AppContext = connection.app.state.context
    header = connection.headers.get("authorization")
    cookie = connection.cookies.get(SESSION_COOKIE)
    if header:
        principal = await anyio.to_thread.run_sync(context.keys.resolve, header)
    elif cookie:
        principal = await anyio.to_thread.run_sync(
            lambda: context.keys.resolve_session(cookie, now=context.clock())
        )
        if connection.scope.get("method", "GET") not in SAFE_METHODS:
            await _check_csrf(connection, csrf_token_for(context.settings.secret_key, cookie))
    else:
        raise NotAuthenticated(
            "missing Authorization header: send 'Authorization: Bearer <token>' "
            "or sign in at /login"
        )
    return _remember(connection, principal)


async def _check_csrf(connection: ASGIConnection, expected: str) -> None:
    given = connection.headers.get(CSRF_HEADER)
    if not given and isinstance(connection, Request):
        content_type = connection.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() == FORM_TYPE:
            given = (await connection.form()).get(CSRF_FIELD)
    if not given or not hmac.compare_digest(str(given), expected):
        raise Forbidden(
            "a change made with a session cookie needs the session's CSRF token "
            f"(the {CSRF_FIELD} form field or the X-CSRF-Token header)"
        )


@dataclass(frozen=True, slots=True)
class StaffGuard:
    """Only staff (bearer token or session cookie) whose role is one of `roles`."""

    roles: tuple[str, ...]
    openapi_security: ClassVar[tuple[str, ...]] = (STAFF_TOKEN, STAFF_SESSION)

    async def __call__(self, connection: ASGIConnection, _: BaseRouteHandler) -> None:
        (await _authenticate_staff(connection)).require_roles(*self.roles)


def staff(*roles: str) -> StaffGuard:
    """The guard of routes for staff whose role is one of `roles`."""
    return StaffGuard(roles)


@dataclass(frozen=True, slots=True)
class StaffOrAgencyGuard:
    """Staff whose role is one of `roles`, or an agency's system with its ingestion key
    (which the handler then confines to its own agency, see `agency_scope`)."""

    roles: tuple[str, ...]
    openapi_security: ClassVar[tuple[str, ...]] = (AGENCY_KEY, STAFF_TOKEN, STAFF_SESSION)

    async def __call__(self, connection: ASGIConnection, _: BaseRouteHandler) -> None:
        principal = await _authenticate_staff(connection)
        if principal.kind != "agency":
            principal.require_roles(*self.roles)


def staff_or_agency_key(*roles: str) -> StaffOrAgencyGuard:
    """The guard of routes for staff whose role is one of `roles` and for agencies' systems."""
    return StaffOrAgencyGuard(roles)


def agency_scope(principal: Principal) -> int | None:
    """The agency an agency operator or an agency's system is confined to (None: every agency).

    Staff with role `agency` see only their own agency's transactions, rates and unpublished
    results, an agency's key only its own agency's figures; an operator account without an
    agency sees nothing.
    """
    if principal.kind == "agency" or (principal.kind == "staff" and principal.role == "agency"):
        if principal.agency_id is None:
            raise Forbidden("this account is not linked to an agency")
        return principal.agency_id
    return None


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal a guard has authenticated (handlers get it as `principal: Caller`)."""
    principal: Principal = _extras(connection)[_PRINCIPAL_KEY]
    return principal
