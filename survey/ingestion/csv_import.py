"""Transactions from a CSV file, for agencies without an API integration.

`survey transactions import FILE.csv` and `POST /api/v1/transactions/import` both read the file
here and send its rows through `ingest_transactions` in batches, so a row is validated,
de-duplicated, sampled and counted exactly as if it had been posted as JSON, and gets the same
outcome (accepted, duplicate or rejected with problems naming the fields).

Rows are numbered as a spreadsheet shows them: the header is row 1, the first record row 2.
Empty cells are absent fields. A file that cannot be read as CSV (a broken quote, a NUL byte,
text that is not UTF-8) is an `InvalidInput` naming the line. The console streams a file of any
size batch by batch; an upload is read whole before anything is stored, so a broken upload
stores nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

from survey.context import AppContext
from survey.errors import Forbidden, InvalidInput, Problem
from survey.ingestion.ingest import FIELDS, REQUIRED, IngestResult, ingest_transactions
from survey.kernel.audit import record
from survey.kernel.db import transaction
from survey.kernel.principal import Principal

__all__ = [
    "DEFAULT_BATCH",
    "CsvImport",
    "RowOutcome",
    "audit_import",
    "decode_upload",
    "import_csv",
    "import_upload",
]

DEFAULT_BATCH = 1_000
HEADER_ROW = 1
_BOMS = {b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16"}  # the codec reads and drops the mark


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """One row's outcome; `row` as a spreadsheet numbers it (the header is row 1)."""

    row: int
    external_id: str | None
    status: str  # accepted | duplicate | rejected
    problems: tuple[Problem, ...] = ()
    note: str | None = None


@dataclass(slots=True)
class CsvImport:
    """Counts over the whole file and every row's outcome, in file order."""

    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    no_plan: int = 0
    outcomes: list[RowOutcome] = field(default_factory=list)

    def add(self, result: IngestResult, first_row: int) -> None:
        self.rows += result.received
        self.accepted += result.accepted
        self.duplicates += result.duplicates
        self.rejected += result.rejected
        self.no_plan += result.no_plan
        self.outcomes.extend(
            RowOutcome(
                row=first_row + status.index,
                external_id=status.external_id,
                status=status.status,
                problems=tuple(Problem(p.message, field=p.field) for p in status.problems),
                note=status.note,
            )
            for status in result.statuses
        )

    @property
    def errors(self) -> list[str]:
        """One line per problem, `row N: message` (phones are never quoted in messages)."""
        return [
            f"row {outcome.row}: {problem.message}"
            for outcome in self.outcomes
            for problem in outcome.problems
        ]

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "no_plan": self.no_plan,
        }


def import_csv(
    context: AppContext, agency: str, handle: TextIO, *, batch_size: int = DEFAULT_BATCH
) -> CsvImport:
    """Stream the CSV's rows through `ingest_transactions` in batches (the console's path:
    a file of any size). A row that cannot be read stops the import; the batches before it
    stay stored and the message says so."""
    summary = CsvImport()
    reader = _Reader(handle)
    try:
        for first_row, batch in _batches(reader, batch_size):
            summary.add(ingest_transactions(context, agency, batch), first_row)
    except csv.Error as exc:  # the batches before were stored and stay stored
        raise reader.unreadable(
            exc,
            f"the {summary.rows} rows before it were reported: fix the file and import it "
            "again (rows already stored count as duplicates)",
        ) from None
    return summary


def import_upload(
    context: AppContext,
    principal: Principal,
    body: bytes,
    *,
    max_rows: int,
    batch_size: int = DEFAULT_BATCH,
    name: str = "",
) -> CsvImport:
    """An uploaded CSV file of the calling agency's system, read whole before anything is
    stored (a broken file stores nothing), then ingested in batches and audited as
    `transactions.import`. Raises InvalidInput for an unreadable file or one with more than
    `max_rows` rows, Forbidden for a caller that is not an agency's system."""
    agency = principal.agency_code
    if principal.kind != "agency" or agency is None:
        raise Forbidden("this needs an agency's API key")
    reader = _Reader(io.StringIO(decode_upload(body), newline=""))
    try:
        batches = list(_batches(reader, batch_size))
    except csv.Error as exc:
        raise reader.unreadable(exc, "nothing was imported: fix it and send it again") from None
    rows = sum(len(batch) for _, batch in batches)
    if rows > max_rows:
        raise InvalidInput(
            f"the file has {rows} rows; at most {max_rows} are accepted in one upload "
            "(split it into smaller files)"
        )
    if not rows:
        raise InvalidInput("the file has a header but no rows; send at least one transaction")
    summary = CsvImport()
    for first_row, batch in batches:
        summary.add(ingest_transactions(context, agency, batch), first_row)
    audit_import(context, principal, agency, name or "upload", summary)
    return summary


def decode_upload(body: bytes) -> str:
    """An uploaded file as text: UTF-8 (with or without a byte-order mark) or UTF-16 with
    one (Excel's "Unicode" CSV); anything else is InvalidInput naming the line."""
    if not body.strip():
        raise InvalidInput(
            "the file is empty; send a CSV file with a header row "
            f"({', '.join(FIELDS)}) and one row per transaction"
        )
    encoding = _BOMS.get(body[:2], "utf-8-sig")
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            f"the file is not UTF-8 text: line {line} has a byte ({body[exc.start]:#04x}) "
            "that is not UTF-8; save it as 'CSV UTF-8' and send it again",
            [Problem(f"line {line}: byte {exc.start} of the file is not UTF-8")],
        ) from None


def audit_import(
    context: AppContext, principal: Principal, agency: str, name: str, summary: CsvImport
) -> None:
    """The audit row of an import: who, which agency, the file's name and the counts."""
    with transaction(context.sessions) as session:
        record(
            session,
            principal,
            "transactions.import",
            "agency",
            agency,
            after={"file": name[:200], **summary.counts()},
        )


class _Reader:
    """The file's records as dicts by column, remembering the line each record starts on (a
    quote opened and never closed is reported where it opened, not at the end of the file).

    Strict CSV: an unclosed quote or text after a closing quote is an error, never a cell
    that silently swallows the rows after it."""

    def __init__(self, handle: TextIO) -> None:
        self.rows = csv.reader(handle, strict=True)
        self.started = 1
        try:
            header = next(self.rows, [])
        except csv.Error as exc:
            raise self.unreadable(exc, "nothing was imported") from None
        self.columns = [name.strip() for name in header]
        missing = [name for name in REQUIRED if name not in self.columns]
        unknown = [name for name in self.columns if name not in FIELDS]
        if missing or unknown:
            problems = [Problem(f"missing column {name!r}", field=name) for name in missing]
            problems += [Problem(f"unknown column {name!r}", field=name) for name in unknown]
            raise InvalidInput(
                f"the CSV header must name the columns {', '.join(FIELDS)} "
                f"(required: {', '.join(REQUIRED)})",
                problems,
            )

    def __iter__(self) -> Iterator[dict[str, str]]:
        width = len(self.columns)
        while True:
            self.started = self.rows.line_num + 1
            cells = next(self.rows, None)
            if cells is None:
                return
            if not cells:  # a blank line: no record (as csv.DictReader skips it)
                continue
            # Empty cells are absent fields; cells beyond the header's are ignored.
            yield {
                name: value.strip()
                for name, value in zip(self.columns, cells[:width], strict=False)
                if value.strip()
            }

    def unreadable(self, exc: csv.Error, consequence: str) -> InvalidInput:
        line, reason = self.rows.line_num, str(exc)[:120]
        where = f"line {line}"
        if self.started < line:
            where = f"the record that starts on line {self.started} (it runs to line {line})"
        return InvalidInput(
            f"the CSV file cannot be read: {where}: {reason}; {consequence}",
            [Problem(f"line {self.started}: {reason}")],
        )


def _batches(reader: _Reader, size: int) -> Iterator[tuple[int, list[dict[str, str]]]]:
    batch: list[dict[str, str]] = []
    first_row = HEADER_ROW + 1
    for row in reader:
        batch.append(row)
        if len(batch) == size:
            yield first_row, batch
            first_row += size
            batch = []
    if batch:
        yield first_row, batch
