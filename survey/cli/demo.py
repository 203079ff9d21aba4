"""`survey demo`: seed a realistic registry and plan, ingest a synthetic stream, then serve."""

from __future__ import annotations

import argparse

from survey import db, demo
from survey.cli.common import load_settings
from survey.cli.output import cli_principal
from survey.cli.serve import run_server
from survey.context import AppContext
from survey.plans import today_in


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="seed a demo registry, plan and transactions, then serve (safe to repeat)",
        description=(
            "Migrates the database, adds the demo agencies, services, questionnaires, plan and "
            "staff users where missing, ingests a new stream of synthetic transactions, prints "
            "an admin API token, then serves the overview on http://HOST:PORT/."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--transactions",
        type=_positive,
        default=demo.DEFAULT_TRANSACTIONS,
        help=f"synthetic transactions to ingest (default {demo.DEFAULT_TRANSACTIONS:,})",
    )
    parser.add_argument(
        "--days",
        type=_positive,
        default=demo.DEFAULT_DAYS,
        help=f"spread them over this many days up to now (default {demo.DEFAULT_DAYS})",
    )
    parser.add_argument(
        "--seed", type=int, default=demo.DEFAULT_SEED, help="random seed of the stream"
    )
    parser.add_argument("--no-serve", action="store_true", help="seed and ingest, then exit")
    parser.set_defaults(handler=_demo)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _demo(args: argparse.Namespace) -> int:
    settings = load_settings()
    db.upgrade(settings)
    context = AppContext.build(settings)
    try:
        report = demo.run_demo(
            context,
            cli_principal(),
            transactions=args.transactions,
            days=args.days,
            seed_value=args.seed,
        )
        today = today_in(context.clock(), settings.timezone)
    finally:
        context.close()
    lines = demo.describe(report, today=today)
    if not args.no_serve:
        lines.insert(-2, f"serving on http://{args.host}:{args.port}/ (Ctrl+C to stop)")
    print("\n".join(lines), flush=True)
    if not args.no_serve:
        run_server(args.host, args.port)
    return 0
