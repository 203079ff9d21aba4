"""`survey transactions import FILE.csv --agency C` and `survey frames`: the bulk path for
agencies without an API integration, and the frame counts as a table.

The import reads the file with survey.ingestion.csv_import (as `POST /api/v1/transactions/import`
does an upload) and sends it through the same ingestion service as the HTTP API, in batches, so a
row is validated, de-duplicated, sampled and counted exactly as if it had been posted. Row
numbers count the header as row 1, as a spreadsheet shows them. Phones are never printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from survey.context import open_context
from survey.errors import InvalidInput
from survey.ingestion.csv_import import DEFAULT_BATCH, audit_import, import_csv
from survey.ingestion.frames import COUNTERS, GROUPINGS, frame_counts
from survey.ingestion.ingest import FIELDS, REQUIRED
from survey.kernel.periods import parse_optional_day
from survey.kernel.principal import CLI_PRINCIPAL


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("transactions", help="report transactions from a file")
    actions = parser.add_subparsers(dest="transactions_command", required=True, metavar="ACTION")
    importer = actions.add_parser(
        "import",
        help="import a CSV of transactions for one agency",
        description=f"CSV with a header row; columns: {', '.join(FIELDS)} "
        f"(required: {', '.join(REQUIRED)}). Exit status 1 if any row was rejected.",
    )
    importer.add_argument("file", type=Path, help="the CSV file (UTF-8)")
    importer.add_argument("--agency", required=True, help="the reporting agency's code")
    importer.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="rows per batch")
    importer.set_defaults(handler=_import)

    frames = subparsers.add_parser("frames", help="print frame counts by stratum")
    frames.add_argument("--plan", type=int, help="sampling plan version (default: all)")
    frames.add_argument(
        "--from",
        dest="date_from",
        help="first Tehran day: 2026-03-21, or Solar Hijri 1405-01-01 (year below 1700)",
    )
    frames.add_argument("--to", dest="date_to", help="last Tehran day, inclusive")
    frames.add_argument(
        "--by",
        default="plan,stratum",
        help=f"grouping, comma-separated from {', '.join(GROUPINGS)}",
    )
    frames.set_defaults(handler=_frames)


def _import(args: argparse.Namespace) -> int:
    if args.batch_size <= 0:
        raise InvalidInput(f"--batch-size must be positive; got {args.batch_size}")
    context = open_context(args)
    try:
        with _open_csv(args.file) as handle:
            summary = import_csv(context, args.agency, handle, batch_size=args.batch_size)
        audit_import(context, CLI_PRINCIPAL, args.agency, args.file.name, summary)
    finally:
        context.close()
    for line in summary.errors:
        print(line, file=sys.stderr)
    print(
        f"{args.file.name}: {summary.rows} rows, {summary.accepted} accepted, "
        f"{summary.duplicates} duplicates, {summary.rejected} rejected"
        + (
            f" ({summary.no_plan} accepted with no sampling plan in force)"
            if summary.no_plan
            else ""
        )
    )
    return 1 if summary.rejected else 0


@contextmanager
def _open_csv(path: Path) -> Iterator[TextIO]:
    """Open a CSV as UTF-8 (with or without BOM), with a clear error when it cannot be read."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        yield handle


def _frames(args: argparse.Namespace) -> int:
    grouping = [name.strip() for name in args.by.split(",") if name.strip()]
    start = parse_optional_day(args.date_from, field="--from")
    end = parse_optional_day(args.date_to, field="--to")
    context = open_context(args)
    try:
        with context.read_sessions() as session:
            totals = frame_counts(
                session,
                plan_version=args.plan,
                start=start,
                end=end,
                by=grouping,
            )
    finally:
        context.close()
    header = [*grouping, *COUNTERS]
    rows = [
        [str(t.group[name]) for name in grouping] + [str(getattr(t, name)) for name in COUNTERS]
        for t in totals
    ]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print(
            "  ".join(
                cell.ljust(w) if i < len(grouping) else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    if not rows:
        print("(no frame counts for this selection)")
    return 0
