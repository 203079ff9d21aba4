"""What operators see: Prometheus metrics, request ids and one-JSON-object-per-line logs.

Metrics (`GET /metrics`, Prometheus text format):
- HTTP: `survey_http_requests_total`, `survey_http_request_duration_seconds` (histogram) and
  `survey_http_requests_in_progress` (and `survey_http_requests_error_total` for 5xx) from
  `request_context_middleware`, the names Litestar's Prometheus middleware used, labelled by the
  route *template* (`/s/{token:str}`), never by the raw path, so no token reaches a label;
- business totals read from the database at scrape time (cached 10 s per process), so they
  are exact across every worker and node and survive restarts: `survey_frame_transactions`
  {kind=reported|duplicates|eligible|ineligible|sampled}, `survey_invitations`{status} (status
  "completed" counts completed responses), `survey_sms_messages`{kind,status} (sends by
  status). They are cluster-wide: take `max` across instances, never `sum`;
- `survey_sms_send_failures_total`{gateway,outcome=retry|failed}: gateway errors counted
  in the dispatcher process (aggregated across uvicorn workers, see `survey serve`).

Who may read `/metrics`: with `SURVEY_METRICS_TOKEN` set, whoever sends
`Authorization: Bearer <token>`; without it, only clients on the loopback address, and never
in production (there the token is required, since a reverse proxy on the same host would
make every client look local).

Logs: `survey serve` logs one JSON object per line (`JsonFormatter`): time, level, logger,
message, the request id (`X-Request-ID` from the client when it is sane, else a new one;
echoed in the response) and, for the access line, method, route template, status and
duration. Every message passes `redact`, which masks phone numbers, survey tokens, API keys
and bearer credentials, so a careless log call cannot leak them.
"""

from __future__ import annotations

import contextvars
import hmac
import itertools
import json
import logging
import os
import re
import threading
import time
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from litestar import Request, get
from litestar.connection import ASGIConnection
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
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "SMS_SEND_FAILURES",
    "DatabaseCollector",
    "JsonFormatter",
    "internal_error",
    "litestar_logging_config",
    "metrics",
    "out_of_range",
    "redact",
    "request_context_middleware",
    "serve_log_config",
]

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
UNTRACKED_PATHS = ["/metrics", "/healthz", "/readyz", "/static"]

SMS_SEND_FAILURES = Counter(
    "survey_sms_send_failures_total",
    "SMS sends that failed at the gateway (outcome retry: will be tried again; failed: for good)",
    ["gateway", "outcome"],
)

# -- redaction ---------------------------------------------------------------------------------
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\bbearer\s+[^\s\"',;]+"), "Bearer [redacted]"),
    (re.compile(r"\b(agk|stk)_[A-Za-z0-9_-]{6,}"), r"\1_[redacted]"),
    (re.compile(r"/s/[A-Za-z2-7]{16}\b"), "/s/[token]"),
    (re.compile(r"(?<![\d۰-۹٠-٩])(?:\+|00)?[\d۰-۹٠-٩][\d۰-۹٠-٩ \-]{8,16}[\d۰-۹٠-٩]"), "[number]"),
)


def redact(text: str) -> str:
    """Mask phones (any run of 10+ digits, Latin or Persian), survey links, keys, bearers."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


# -- logs ----------------------------------------------------------------------------------
_ACCESS_FIELDS = ("method", "route", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the message and any traceback pass `redact`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # which worker
            "message": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        for name in _ACCESS_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["error"] = redact("".join(traceback.format_exception(*record.exc_info)))
        return json.dumps(entry, ensure_ascii=False)


def serve_log_config(level: str = "info") -> dict[str, Any]:
    """`logging.config.dictConfig` for `survey serve` (uvicorn applies it in every worker)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    quiet = {"handlers": ["json"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "survey.kernel.observability.JsonFormatter"}},
        "handlers": {"json": handler},
        "root": {"handlers": ["json"], "level": level.upper()},
        "loggers": {
            "uvicorn": quiet,
            "uvicorn.error": quiet,
            "uvicorn.access": quiet,
            "alembic": {"level": "WARNING"},
        },
    }


def litestar_logging_config() -> LoggingConfig:
    """Litestar logs unhandled errors through its `litestar` logger, which propagates to the
    root (JSON under `survey serve`) instead of a handler of its own; the root is left alone."""
    return LoggingConfig(
        configure_root_logger=False,
        log_exceptions="never",  # `internal_error` logs unexpected ones, with the request id
        loggers={"litestar": {"level": "INFO", "handlers": [], "propagate": True}},
    )


_access_log = logging.getLogger("survey.access.keys")
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
        if scope["type"] != "http":
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
                message["headers"] = [*message.get("headers", ()), header]  # type: ignore[typeddict-item]
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


class DatabaseCollector(Collector):
    """Business totals read from the database; cached `ttl` seconds per process."""

    def __init__(self, engine: sa.Engine, ttl: float = 10.0) -> None:
        self.engine = engine
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Any]] | None = None

    def collect(self) -> Iterable[Any]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > self.ttl:
                self._cached = (time.monotonic(), self._read())
            return list(self._cached[1])

    def _read(self) -> list[Any]:
        frames = CounterMetricFamily(
            "survey_frame_transactions",
            "Transactions ingested under a plan, by outcome (frame counts)",
            labels=["kind"],
        )
        invitations = GaugeMetricFamily(
            "survey_invitations", "Invitations by status (completed: responses)", labels=["status"]
        )
        messages = GaugeMetricFamily(
            "survey_sms_messages", "SMS in the outbox by kind and status", labels=["kind", "status"]
        )
        kinds = ("reported", "duplicates", "eligible", "ineligible", "sampled")
        with self.engine.connect() as conn:
            totals = conn.execute(
                sa.text(
                    "SELECT "
                    + ", ".join(f"coalesce(sum({k}), 0)" for k in kinds)
                    + " FROM frame_count"
                )
            ).one()
            for kind, total in zip(kinds, totals, strict=True):
                frames.add_metric([kind], float(total))
            for status, count in conn.execute(
                sa.text("SELECT status, count(*) FROM invitation GROUP BY status")
            ):
                invitations.add_metric([str(status)], float(count))
            for kind, status, count in conn.execute(
                sa.text("SELECT kind, status, count(*) FROM outbox_message GROUP BY kind, status")
            ):
                messages.add_metric([str(kind), str(status)], float(count))
        return [frames, invitations, messages]


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
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every worker's metrics (multiprocess mode under `survey serve --workers N`, else this
    process's) followed by the database totals. Litestar's PrometheusController serves the
    first part only, hence this handler."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    database = CollectorRegistry(auto_describe=False)
    database.register(request.app.state.metrics_collector)
    body = generate_latest(registry) + generate_latest(database)
    return Response(body, status_code=200, headers={"Content-Type": CONTENT_TYPE_LATEST})
