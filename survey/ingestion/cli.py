"""`survey transactions import FILE.csv --agency C` and `survey frames`: the bulk path for
agencies without an API integration, and the frame counts as a table.

The import sends the file through the same ingestion service as the HTTP API, in batches, so a
row is validated, de-duplicated, sampled and counted exactly as if it had been posted. Row
numbers count the header as row 1, as a spreadsheet shows them. Phones are never printed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TextIO

from survey.context import AppContext, open_context
from survey.errors import InvalidInput, Problem
from survey.ingestion.frames import COUNTERS, GROUPINGS, frame_counts
from survey.ingestion.ingest import FIELDS, REQUIRED, IngestResult, ingest_transactions
from survey.kernel.db import transaction
from survey.kernel.principal import CLI_PRINCIPAL
from survey.models import AuditLog

DEFAULT_BATCH = 1_000


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
    frames.add_argument("--from", dest="date_from", type=date.fromisoformat, help="first day")
    frames.add_argument("--to", dest="date_to", type=date.fromisoformat, help="last day")
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
        _audit(context, args.agency, args.file, summary)
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


class ImportSummary:
    """Counts over the whole file and one line per problem, `row N: message`."""

    def __init__(self) -> None:
        self.rows = self.accepted = self.duplicates = self.rejected = self.no_plan = 0
        self.errors: list[str] = []

    def add(self, result: IngestResult, first_row: int) -> None:
        self.rows += result.received
        self.accepted += result.accepted
        self.duplicates += result.duplicates
        self.rejected += result.rejected
        self.no_plan += result.no_plan
        for status in result.statuses:
            for problem in status.problems:
                self.errors.append(f"row {first_row + status.index}: {problem.message}")

    def as_dict(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "no_plan": self.no_plan,
        }


def import_csv(
    context: AppContext, agency: str, handle: TextIO, *, batch_size: int = DEFAULT_BATCH
) -> ImportSummary:
    """Send the CSV's rows through `ingest_transactions` in batches; returns the summary."""
    reader = csv.DictReader(handle)
    columns = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED if name not in columns]
    unknown = [name for name in columns if name not in FIELDS]
    if missing or unknown:
        problems = [Problem(f"missing column {name!r}", field=name) for name in missing]
        problems += [Problem(f"unknown column {name!r}", field=name) for name in unknown]
        raise InvalidInput(
            f"the CSV header must name the columns {', '.join(FIELDS)} "
            f"(required: {', '.join(REQUIRED)})",
            problems,
        )
    reader.fieldnames = columns
    summary = ImportSummary()
    try:
        for first_row, batch in _batches(reader, batch_size):
            summary.add(ingest_transactions(context, agency, batch), first_row)
    except csv.Error as exc:  # the batches before were stored and stay stored
        raise InvalidInput(
            f"the CSV file cannot be read at line {reader.line_num} ({str(exc)[:120]}); "
            f"the {summary.rows} rows before it were reported: fix the file and import "
            "it again (rows already stored count as duplicates)"
        ) from None
    return summary


def _batches(reader: csv.DictReader[str], size: int) -> Iterator[tuple[int, list[dict[str, str]]]]:
    batch: list[dict[str, str]] = []
    first_row = 2  # the header is row 1
    for row in reader:
        # Empty cells are absent fields; a row with extra cells has them under None.
        batch.append({k: v.strip() for k, v in row.items() if k is not None and v and v.strip()})
        if len(batch) == size:
            yield first_row, batch
            first_row += size
            batch = []
    if batch:
        yield first_row, batch


@contextmanager
def _open_csv(path: Path) -> Iterator[TextIO]:
    """Open a CSV as UTF-8 (with or without BOM), with a clear error when it cannot be read."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        yield handle


def _audit(context: AppContext, agency: str, path: Path, summary: ImportSummary) -> None:
    with transaction(context.sessions) as session:
        session.add(
            AuditLog(
                actor=CLI_PRINCIPAL.actor,
                action="transactions.import",
                entity="agency",
                entity_id=agency,
                after={"file": path.name, **summary.as_dict()},
            )
        )


def _frames(args: argparse.Namespace) -> int:
    grouping = [name.strip() for name in args.by.split(",") if name.strip()]
    context = open_context(args)
    try:
        with context.read_sessions() as session:
            totals = frame_counts(
                session,
                plan_version=args.plan,
                start=args.date_from,
                end=args.date_to,
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
