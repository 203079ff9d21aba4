"""The HTTP side of what operators see: request ids, HTTP metrics and the access log line per
request, `GET /metrics`, and the answers to errors no domain handler took.

The metric names, the redaction and the JSON log format are in survey.kernel.observability.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import os
import re
import time
from typing import Any

from litestar import MediaType, Request, get
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.logging.config import LoggingConfig
from litestar.response import Response
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from survey.kernel.db import is_unavailable
from survey.kernel.observability import (
    LOOPBACK,
    REQUEST_ID,
    UNTRACKED_PATHS,
)


def litestar_logging_config() -> LoggingConfig:
    """Litestar logs unhandled errors through its `litestar` logger, which propagates to the
    root (JSON under `survey serve`) instead of a handler of its own; the root is left alone."""
    return LoggingConfig(
        configure_root_logger=False,
        log_exceptions="never",  # `internal_error` logs unexpected ones, with the request id
        loggers={"litestar": {"level": "INFO", "handlers": [], "propagate": True}},
    )


_access_log = logging.getLogger("survey.access")


_error_log = logging.getLogger("survey.errors")


def out_of_range(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    """A value the database cannot hold (an id beyond 64 bits, text longer than its column)
    can only come from the request: 422 naming that, never a 500."""
    _error_log.warning(
        "%s on %s %s: %s",
        type(exc).__name__,
        request.method,
        request.scope.get("path_template") or "(no route)",
        str(exc).splitlines()[0][:200],
    )
    return Response(
        {"error": "a value in the request is out of range (too large or too long to store)"},
        status_code=422,
    )


def too_deep(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    """JSON nested a thousand levels deep makes the decoder recurse past Python's limit; no
    body of ours nests more than a few levels, so it is the request's fault: 422."""
    _error_log.warning(
        "RecursionError on %s %s", request.method, request.scope.get("path_template") or "-"
    )
    return Response(
        {"error": "the request body is nested too deeply to read; send flat JSON records"},
        status_code=422,
    )


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    """Any exception no other handler took: logged with its traceback (redacted), answered
    500 with the request id to quote, and nothing about the internals."""
    _error_log.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.scope.get("path_template") or "(no route)",
        exc_info=exc,
    )
    return Response(
        {
            "error": "internal error; quote the request id to the operators",
            "request_id": REQUEST_ID.get(),
        },
        status_code=500,
    )


_REQUEST_ID_SHAPE = re.compile(r"[A-Za-z0-9._-]{8,64}")


_UNTRACKED = tuple(UNTRACKED_PATHS)


_APP_NAME = "survey"


_HTTP_LABELS = ["method", "path", "status_code", "app_name"]


# The same series Litestar's Prometheus middleware exported (names, labels, help texts, the
# in-progress gauge's multiprocess mode), kept here so the label children can be cached.
HTTP_REQUESTS = Counter("survey_http_requests_total", "Total requests", _HTTP_LABELS)


HTTP_ERRORS = Counter("survey_http_requests_error_total", "Total errors in requests", _HTTP_LABELS)


HTTP_DURATION = Histogram(
    "survey_http_request_duration_seconds", "Request duration, in seconds", _HTTP_LABELS
)


HTTP_IN_PROGRESS = Gauge(
    "survey_http_requests_in_progress",
    "Total requests currently in progress",
    _HTTP_LABELS,
    multiprocess_mode="livesum",
)


_finished: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}


_running: dict[tuple[str, str], Any] = {}


def _finished_children(method: str, path: str, status: int) -> tuple[Any, Any, Any]:
    """(requests, duration, errors or None) children for one label set, looked up once:
    `.labels()` validates and locks on every call."""
    key = (method, path, status)
    children = _finished.get(key)
    if children is None:
        values = (method, path, str(status), _APP_NAME)
        errors = HTTP_ERRORS.labels(*values) if status >= 500 else None
        children = (HTTP_REQUESTS.labels(*values), HTTP_DURATION.labels(*values), errors)
        _finished[key] = children
    return children


def _running_child(method: str, path: str) -> Any:
    child = _running.get((method, path))
    if child is None:
        child = HTTP_IN_PROGRESS.labels(method, path, "200", _APP_NAME)
        _running[(method, path)] = child
    return child


def _request_id(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            incoming = value.decode("latin-1")
            if _REQUEST_ID_SHAPE.fullmatch(incoming):
                return incoming
            break
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"  # 32 characters, as a uuid4 hex


# Request ids need to be unique, not secret: a random prefix per process (workers are spawned,
# so each has its own) and a counter, instead of a getrandom call on every request.
_ID_PREFIX = os.urandom(8).hex()


_ID_COUNTER = itertools.count(1)


def request_context_middleware(app: ASGIApp) -> ASGIApp:
    """Give each request an id (echoed as `X-Request-ID`), count it in the HTTP metrics (by
    route template, never the raw path: survey links carry tokens) and write one access log
    line. One plain ASGI function with cached metric children: it runs on every request."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = _request_id(scope)
        header = (b"x-request-id", request_id.encode())
        reset = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        tracked = not scope["path"].startswith(_UNTRACKED)
        method: str = scope["method"]
        route: str = scope.get("path_template") or "(no route)"
        running = _running_child(method, route) if tracked else None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        if running is not None:
            running.inc()
        try:
            await app(scope, receive, send_with_id)
        finally:
            if running is not None:
                duration = time.perf_counter() - started
                running.dec()
                requests, durations, errors = _finished_children(method, route, status)
                requests.inc()
                durations.observe(duration)
                if errors is not None:
                    errors.inc()
                if _access_log.isEnabledFor(logging.INFO):
                    _access_log.info(
                        "request",
                        extra={
                            "request_id": request_id,
                            "method": method,
                            "route": route,
                            "status": status,
                            "duration_ms": round(duration * 1000, 2),
                        },
                    )
            REQUEST_ID.reset(reset)

    return middleware


def _metrics_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    settings = connection.app.state.context.settings
    token = settings.metrics_token
    if token:
        sent = connection.headers.get("authorization", "")
        if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return
        raise NotAuthorizedException(
            "metrics need the header Authorization: Bearer <SURVEY_METRICS_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if settings.env == "production":
        raise PermissionDeniedException("set SURVEY_METRICS_TOKEN to read metrics in production")
    host = connection.client.host if connection.client else ""
    if host not in LOOPBACK:
        raise PermissionDeniedException(
            "metrics are served to localhost only unless SURVEY_METRICS_TOKEN is set"
        )


@get(
    "/metrics",
    guards=[_metrics_guard],
    include_in_schema=False,
    sync_to_thread=True,
    media_type=CONTENT_TYPE_LATEST,
)
def metrics(state: State) -> Response[bytes]:
    """Every worker's metrics (multiprocess mode under `survey serve --workers N`, else this
    process's) followed by the database totals. Litestar's PrometheusController serves the
    first part only, hence this handler."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    database = CollectorRegistry(auto_describe=False)
    database.register(state.metrics_collector)
    body = generate_latest(registry) + generate_latest(database)
    return Response(body, status_code=200, headers={"Content-Type": CONTENT_TYPE_LATEST})


RETRY_AFTER_SECONDS = 5
# What a citizen's browser shows then (both languages: the page cannot know which was wanted).
BUSY_DATABASE_PAGE = """<!doctype html>
<html lang="fa" dir="rtl"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>لحظه‌ای صبر کنید / One moment</title></head><body><main>
<h1>سامانه لحظه‌ای شلوغ است</h1><p>چیزی از پاسخ شما از دست نرفته است. چند ثانیه دیگر صفحه را
دوباره باز کنید.</p>
<h1 lang="en" dir="ltr">The service is busy for a moment</h1>
<p lang="en" dir="ltr">Nothing you saved is lost. Please reload the page in a few seconds.</p>
</main></body></html>
"""


def database_unavailable(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[Any]:
    """The database is busy or away: 503 with Retry-After, never a hang or a 500. The
    request's transaction rolled back, so nothing of it was stored or acknowledged and the
    same request can simply be sent again. Other database errors are bugs: 500."""
    if not is_unavailable(exc):
        return internal_error(request, exc)
    _error_log.warning(
        "database unavailable on %s %s: %s",
        request.method,
        request.scope.get("path_template") or "(no route)",
        type(getattr(exc, "orig", None) or exc).__name__,
    )
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if "text/html" in request.headers.get("accept", ""):  # a citizen's or official's browser
        return Response(
            BUSY_DATABASE_PAGE, status_code=503, media_type=MediaType.HTML, headers=headers
        )
    return Response(
        {
            "error": "the database is busy or unavailable; nothing from this request was "
            f"stored: send it again in {RETRY_AFTER_SECONDS} seconds",
            "request_id": REQUEST_ID.get(),
        },
        status_code=503,
        headers=headers,
    )
