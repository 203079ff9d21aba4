"""The `survey` command: `db` and `serve` here, then one sub-command module per domain, each with
`register(subparsers)`."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence

import uvicorn

from survey.context import load_settings
from survey.errors import InvalidInput, Problem, SurveyError
from survey.kernel import db
from survey.kernel.observability import serve_log_config

# `db` and `serve` are the service's own; each domain's module adds its sub-commands after them,
# in the order of `survey --help`.
COMMAND_MODULES = (
    "survey.registry.cli",
    "survey.sampling.cli",
    "survey.ingestion.cli",
    "survey.access.cli",
    "survey.demo.cli",
    "survey.results.cli",
    "survey.outreach.cli",
    "survey.publication.cli",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="survey",
        description="Citizen-satisfaction survey service: registry, sampling, ingestion, demo.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register_db(subparsers)
    _register_serve(subparsers)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; domain errors print as one clear message and exit 2, never a trace."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except SurveyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


# `survey db upgrade|current`: schema migrations.


def _register_db(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db", help="database schema migrations")
    actions = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="apply all migrations (safe to repeat)")
    upgrade.set_defaults(handler=_upgrade)
    current = actions.add_parser("current", help="print the schema revision in the database")
    current.set_defaults(handler=_current)


def _upgrade(_: argparse.Namespace) -> int:
    settings = load_settings()
    db.upgrade(settings)
    print(f"database at revision {db.current_revision(settings)}")
    return 0


def _current(_: argparse.Namespace) -> int:
    print(db.current_revision(load_settings()) or "empty (run `survey db upgrade`)")
    return 0


# `survey serve`: migrate, then run the service under uvicorn (one or more worker processes).


def _register_serve(subparsers: argparse._SubParsersAction) -> None:
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
    """Serve `survey.app:app_from_env` (settings re-read from the environment per worker).

    Only the proxies named in SURVEY_TRUSTED_PROXIES may set a client's address through
    X-Forwarded-For (uvicorn would otherwise believe any loopback client)."""
    settings = load_settings()
    os.environ.setdefault("SURVEY_VAR_DIR", str(settings.var_dir))
    trusted = list(settings.trusted_proxies)
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
            proxy_headers=bool(trusted),
            forwarded_allow_ips=trusted or [],
        )
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
