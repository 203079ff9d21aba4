"""Guards: every route states who may call it; the principal is then a handler dependency."""

from __future__ import annotations

from collections.abc import Callable

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from survey.access import Principal
from survey.context import AppContext

Guard = Callable[[ASGIConnection, BaseRouteHandler], None]


def _authenticate(connection: ASGIConnection) -> Principal:
    context: AppContext = connection.app.state.context
    principal = context.keys.resolve(connection.headers.get("authorization"))
    connection.scope["principal"] = principal  # type: ignore[typeddict-unknown-key]
    return principal


def agency_key(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Only an agency's ingestion key."""
    _authenticate(connection).require_agency()


def staff(*roles: str) -> Guard:
    """Only staff tokens whose role is one of `roles`."""

    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        _authenticate(connection).require_roles(*roles)

    guard.__name__ = f"staff_{'_'.join(roles)}"
    return guard


def principal_of(connection: ASGIConnection) -> Principal:
    """Dependency: the principal a guard has authenticated."""
    return connection.scope["principal"]  # type: ignore[typeddict-item]
