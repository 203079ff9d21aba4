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
import json
import logging
import re
import threading
import time
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client import (
    Counter,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "SMS_SEND_FAILURES",
    "DatabaseCollector",
    "JsonFormatter",
    "redact",
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
