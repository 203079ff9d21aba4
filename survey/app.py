"""The app factory: `create_app(settings)` builds the whole service; nothing happens at import."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
from jinja2 import Environment, FileSystemLoader, PrefixLoader
from litestar import Litestar, MediaType, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template import TemplateConfig
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from survey.access.api import AuditController, UserChangeController, UserController
from survey.access.pages import LoginController
from survey.answering.api import SmsWebhookController
from survey.answering.pages import AnsweringController
from survey.config import Settings
from survey.context import AppContext
from survey.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    SurveyError,
)
from survey.http import observability
from survey.http.dependencies import DEPENDENCIES
from survey.http.health import health_handlers
from survey.http.openapi import api_documentation, complete_schema
from survey.http.security import security_headers_hook, security_middleware
from survey.http.static import STATIC_HANDLERS
from survey.ingestion.api import TransactionController
from survey.ingestion.pages import PageController
from survey.kernel.observability import DatabaseCollector
from survey.outreach.background import dispatcher_lifespan
from survey.outreach.retention import retention_lifespan
from survey.publication.api import ReleaseController
from survey.publication.pages import PublicationController, missing_page
from survey.registry.api import RegistryController
from survey.results.api import (
    AnalysisController,
    ExportController,
    PlanDesignController,
    RatesController,
)
from survey.results.pages import PlanPageController
from survey.sampling.api import PlanController

SURVEY_DIR = Path(__file__).parent
# Each domain's pages name their templates "<domain>/<file>"; the files live in <domain>/templates.
TEMPLATE_DOMAINS = ("access", "ingestion", "answering", "results", "publication")

# The one table from domain errors to HTTP statuses.
STATUS_OF: dict[type[SurveyError], int] = {
    InvalidInput: 422,
    NotAuthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
}


def _status_for(exc: SurveyError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 400


def _survey_error(_: Request, exc: SurveyError) -> Response:
    body: dict[str, object] = {"error": exc.message}
    if isinstance(exc, InvalidInput) and exc.problems:
        body["problems"] = [p.as_dict() for p in exc.problems]
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, NotAuthenticated) else None
    return Response(body, status_code=_status_for(exc), media_type=MediaType.JSON, headers=headers)


def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404 and _browser_page_request(request):
        return missing_page(request)
    body: dict[str, object] = {"error": exc.detail}
    if isinstance(exc, ValidationException) and exc.extra:
        body["problems"] = exc.extra
    return Response(
        body, status_code=exc.status_code, media_type=MediaType.JSON, headers=exc.headers
    )


def _browser_page_request(request: Request) -> bool:
    """A person's browser following a link (GET of HTML outside the API): a missing page is
    answered with a page, an API client keeps getting JSON."""
    if request.method not in ("GET", "HEAD") or request.url.path.startswith(API_PATHS):
        return False
    return "text/html" in request.headers.get("accept", "")


API_PATHS = ("/api/", "/metrics", "/healthz", "/readyz", "/static/")

# Every domain's controllers, lowest domain first.
ROUTE_HANDLERS = (
    LoginController,
    UserController,
    UserChangeController,
    AuditController,
    RegistryController,
    PlanController,
    TransactionController,
    PageController,
    AnsweringController,
    SmsWebhookController,
    AnalysisController,
    ExportController,
    RatesController,
    PlanDesignController,
    PlanPageController,
    ReleaseController,
    PublicationController,
)


def create_app(settings: Settings, *, context: AppContext | None = None) -> Litestar:
    """Build the service. Pass `context` to share a database and clock with a test."""
    app_context = context or AppContext.build(settings)
    owns_context = context is None

    def close_context() -> None:
        if owns_context:
            app_context.close()

    return Litestar(
        route_handlers=[
            *health_handlers(),
            observability.metrics,
            *ROUTE_HANDLERS,
            *STATIC_HANDLERS,
        ],
        dependencies=DEPENDENCIES,
        exception_handlers={
            SurveyError: _survey_error,
            HTTPException: _http_error,
            OverflowError: observability.out_of_range,  # SQLite: an int beyond 64 bits
            DataError: observability.out_of_range,  # PostgreSQL: out of range, too long
            # A lock or statement timeout, no free connection, no database: 503, Retry-After.
            OperationalError: observability.database_unavailable,
            PoolTimeout: observability.database_unavailable,
            sqlite3.OperationalError: observability.database_unavailable,
            psycopg.OperationalError: observability.database_unavailable,
            RecursionError: observability.too_deep,  # JSON nested past the decoder's limit
            Exception: observability.internal_error,
        },
        template_config=TemplateConfig(instance=_template_engine()),
        openapi_config=api_documentation(),
        request_max_body_size=settings.max_request_bytes,
        # Request id, HTTP metrics and access log outermost, then the hygiene checks.
        middleware=[
            observability.request_context_middleware,
            security_middleware(settings),
        ],
        before_send=[security_headers_hook(settings)],  # also on 404/405 (no route)
        logging_config=observability.litestar_logging_config(),
        # Lifespan managers exit before on_shutdown hooks: the dispatcher stops before the
        # database closes. It runs unless SURVEY_ENV=test (or SURVEY_DISPATCH_IN_SERVE=0).
        # The retention thread (hourly phone purge) runs where the dispatcher does.
        # Factories: an app may start more than once (several test clients on one app).
        lifespan=[
            lambda _app: dispatcher_lifespan(app_context),
            lambda _app: retention_lifespan(app_context),
        ],
        on_startup=[complete_schema],
        on_shutdown=[close_context],
        state=State(
            {
                "context": app_context,
                "metrics_collector": DatabaseCollector(app_context.engine),
            }
        ),
        debug=False,
    )


def _template_engine() -> JinjaTemplateEngine:
    loaders = {d: FileSystemLoader(SURVEY_DIR / d / "templates") for d in TEMPLATE_DOMAINS}
    environment = Environment(loader=PrefixLoader(loaders), autoescape=True)
    return JinjaTemplateEngine.from_environment(environment)


def app_from_env() -> Litestar:
    """Factory for ASGI servers (`uvicorn --factory survey.app:app_from_env`)."""
    return create_app(Settings.from_env())
