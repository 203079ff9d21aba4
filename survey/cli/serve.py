"""`survey serve`: migrate, then run the service under uvicorn."""

from __future__ import annotations

import argparse
import os

import uvicorn

from survey import db
from survey.cli.common import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the HTTP service (migrates first)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    db.upgrade(settings)
    run_server(args.host, args.port, workers=args.workers)
    return 0


def run_server(host: str, port: int, *, workers: int = 1) -> None:
    """Serve `survey.app:app_from_env` (settings re-read from the environment per worker)."""
    os.environ.setdefault("SURVEY_VAR_DIR", str(load_settings().var_dir))
    uvicorn.run(
        "survey.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )
