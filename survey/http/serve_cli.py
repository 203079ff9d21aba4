"""`survey serve`: migrate, then run the service under uvicorn (one or more worker processes).

Every worker is a full copy of the service, and each runs its own SMS dispatcher and
retention thread: the outbox claims rows with `FOR UPDATE SKIP LOCKED` (PostgreSQL), so
workers and nodes never send the same message twice. With several workers the Prometheus
counters of all of them are aggregated through a shared folder (`PROMETHEUS_MULTIPROC_DIR`,
a fresh temporary one unless set). Logs are JSON lines on stderr (survey.kernel.observability).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile

import uvicorn

from survey.context import load_settings
from survey.errors import InvalidInput, Problem
from survey.kernel import db
from survey.kernel.observability import serve_log_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the HTTP service (migrates first)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default 1; about one per CPU core in production)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error")
    )
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise InvalidInput(
            "--workers must be 1 or more", [Problem(f"got {args.workers}", field="--workers")]
        )
    settings = load_settings()
    db.upgrade(settings)
    run_server(args.host, args.port, workers=args.workers, log_level=args.log_level)
    return 0


def run_server(host: str, port: int, *, workers: int = 1, log_level: str = "info") -> None:
    """Serve `survey.app:app_from_env` (settings re-read from the environment per worker)."""
    os.environ.setdefault("SURVEY_VAR_DIR", str(load_settings().var_dir))
    own_metrics_dir = None
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        own_metrics_dir = tempfile.mkdtemp(prefix="survey-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
    try:
        uvicorn.run(
            "survey.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            log_config=serve_log_config(log_level),
            access_log=False,  # survey.kernel.observability writes one access line per request
        )
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
