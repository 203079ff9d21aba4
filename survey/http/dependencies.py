"""What handlers receive by name from Litestar's dependency injection, instead of reading
`request.app.state` themselves: `context` (the running service's AppContext) and `principal`
(the caller a route's guard authenticated; only on guarded routes)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from survey.context import AppContext
from survey.http.guards import principal_of
from survey.kernel.principal import Principal


def provide_context(state: State) -> AppContext:
    """The context `create_app` put in the app's state."""
    context: AppContext = state.context
    return context


# Handler parameters: `context: Context`, `principal: Caller` (the name is what Litestar matches).
# Both are our own objects, so Litestar is told not to validate them: on the ingestion hot path
# that validation cost ~60 us a request.
Context = NamedDependency[SkipValidation[AppContext]]
Caller = NamedDependency[SkipValidation[Principal]]


def provide_principal(request: Request[Any, Any, Any], context: Context) -> Principal:
    """Who is calling, as the route's guard found it. (`context` is unused: depending on it
    makes Litestar resolve the two in turn instead of in a task group per request.)"""
    return principal_of(request)

DEPENDENCIES = {
    "context": Provide(provide_context, sync_to_thread=False),
    "principal": Provide(provide_principal, sync_to_thread=False),
}
