"""`survey rates --period P` and `survey export responses --from D --to D --out FILE.csv`."""

from __future__ import annotations

import argparse
import json
import sys

from survey.context import open_context
from survey.kernel.console import format_table
from survey.kernel.periods import parse_day, parse_period
from survey.results.rates import DISPOSITIONS, GROUPINGS, RATES, response_rates


def register(subparsers: argparse._SubParsersAction) -> None:
    rates = subparsers.add_parser(
        "rates",
        help="AAPOR response, cooperation and contact rates for a period",
        description="Rates of invitations whose transaction day falls in the period "
        "(definitions in docs/export.md).",
    )
    rates.add_argument(
        "--period",
        required=True,
        help="1405-01 (Solar Hijri month), 1405-Q1, 1405, or Gregorian 2026-03, 2026-Q1, 2026",
    )
    rates.add_argument("--by", choices=GROUPINGS, default="agency")
    rates.add_argument("--format", choices=("table", "csv", "json"), default="table")
    rates.set_defaults(handler=_rates)

    export = subparsers.add_parser("export", help="exports for analysis")
    kinds = export.add_subparsers(dest="export_kind", required=True, metavar="WHAT")
    responses = kinds.add_parser(
        "responses",
        help="one row per response with design columns and weights, plus frame counts",
        description="Writes FILE.csv (responses) and FILE.frame_counts.csv (calibration "
        "totals). Columns are documented in docs/export.md. Never a phone or a token.",
    )
    responses.add_argument(
        "--from",
        dest="date_from",
        required=True,
        help="first transaction day (2026-03-21 or 1405-01-01)",
    )
    responses.add_argument(
        "--to", dest="date_to", required=True, help="last transaction day, inclusive"
    )
    responses.add_argument("--out", required=True, help="the responses CSV to write")
    responses.add_argument(
        "--include-partial",
        action="store_true",
        help="also export partial responses (flagged in the status column)",
    )
    responses.set_defaults(handler=_export_responses)


def _rates(args: argparse.Namespace) -> int:
    period = parse_period(args.period)
    context = open_context(args)
    try:
        with context.read_sessions() as session:
            table = response_rates(session, period, by=args.by)
    finally:
        context.close()
    records = table.records()
    if args.format == "json":
        print(json.dumps({"period": period.label, "by": args.by, "rows": records}, indent=2))
        return 0
    headers = [args.by, *DISPOSITIONS, "total", *RATES]
    if args.format == "csv":
        table.table[headers].to_csv(sys.stdout, index=False, float_format="%.6f")
        return 0
    print(f"period {period.label}: Tehran days {period.start} to {period.end} (end excluded)")
    rows = [
        [r[args.by], *(r[d] for d in DISPOSITIONS), r["total"],
         *("-" if r[n] is None else f"{r[n]:.3f}" for n in RATES)]
        for r in records
    ]  # fmt: skip
    print(format_table(headers, rows))
    return 0


def _export_responses(args: argparse.Namespace) -> int:
    from survey.kernel.console import cli_principal
    from survey.results.export import export_responses, record_export, write_export

    start = parse_day(args.date_from, field="from")
    end = parse_day(args.date_to, field="to")
    context = open_context(args)
    try:
        result = export_responses(context, start, end, include_partial=args.include_partial)
        responses_path, frames_path = write_export(result, args.out)
        record_export(context, cli_principal(), result, target=str(responses_path))
    finally:
        context.close()
    print(
        f"wrote {len(result.responses)} responses to {responses_path} and "
        f"{len(result.frame_counts)} frame-count rows to {frames_path}"
    )
    return 0
