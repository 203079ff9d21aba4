"""`survey demo`: seed a realistic registry and plan, ingest a synthetic stream, then serve."""

from __future__ import annotations

import argparse
import os
from datetime import timedelta

from survey.cli import run_server
from survey.context import AppContext, load_settings
from survey.demo import seed as demo
from survey.demo.survey_round import RateSummary, demo_sms_file
from survey.kernel import db
from survey.kernel.console import cli_principal, format_table
from survey.results.rates import DISPOSITIONS, RATES
from survey.sampling.plans import today_in


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="seed a demo registry, plan and transactions, then serve (safe to repeat)",
        description=(
            "Migrates the database, adds the demo agencies, services, questionnaires, plan and "
            "staff users where missing, ingests a new stream of synthetic transactions, sends "
            "the invitations through the file gateway (var/demo-sms.jsonl), lets simulated "
            "citizens answer on the web and by SMS, prints the response rates and an admin API "
            "token, then serves on http://HOST:PORT/ with the SMS dispatcher running."
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
    if not os.environ.get("SURVEY_PUBLIC_BASE_URL", "").strip():
        # The citizens' links point at the server the demo starts, unless configured.
        os.environ["SURVEY_PUBLIC_BASE_URL"] = f"http://{_link_host(args.host)}:{args.port}"
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
    base = f"http://{_link_host(args.host)}:{args.port}"
    lines = demo.describe(report, today=today)
    lines[-3:-3] = rate_lines(report.rates, base)
    if not args.no_serve:
        lines.insert(-2, f"serving on {base}/ (Ctrl+C to stop)")
    print("\n".join(lines), flush=True)
    if not args.no_serve:
        # The server's dispatcher keeps writing to the demo's file (reminders, dialogue
        # answers): the demo's numbers are made up and must never reach a real provider.
        os.environ["SURVEY_SMS_GATEWAY"] = f"file:{demo_sms_file(settings).as_posix()}"
        run_server(args.host, args.port)
    return 0


def _link_host(host: str) -> str:
    """A host a browser can open: a wildcard address serves every interface, so the links
    name this machine's loopback (set SURVEY_PUBLIC_BASE_URL for other machines)."""
    return "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host


def rate_lines(summary: RateSummary, base_url: str) -> list[str]:
    """The AAPOR rates by agency over the demo's days, and where to see them again."""
    headers = ["agency", *DISPOSITIONS, "total", *RATES]
    rows = [
        [r["agency"], *(r[d] for d in DISPOSITIONS), r["total"],
         *(None if r[n] is None else f"{r[n]:.3f}" for n in RATES)]
        for r in summary.table.records()
    ]  # fmt: skip
    window = summary.window
    lines = [
        f"response rates (AAPOR; README) of the sampled units of transaction days "
        f"{window.start} to {window.end - timedelta(days=1)}:",
        *("  " + line for line in format_table(headers, rows).split("\n")),
    ]
    for month in summary.months:
        lines.append(
            f"rates for {month}: survey rates --period {month} --by agency | "
            f"{base_url}/api/v1/rates?period={month}&by=agency (staff token)"
        )
    return lines
