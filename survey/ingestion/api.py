"""HTTP API for agencies' transaction reports and staff's frame counts (thin: parse, call, map).

The request body is read raw and decoded with msgspec here, so malformed JSON gets a 400 that
says where it broke, and a batch is checked against the size limit before any work is done.
Statuses say accepted / duplicate / rejected, never whether a transaction was sampled (see
`survey.ingestion.ingest`). Phones never appear in a response: a record is named by its index and
external_id.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, cast

import anyio.to_thread
import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, QueryParameter

from survey.errors import InvalidInput, Problem
from survey.http.dependencies import Caller, Context
from survey.http.guards import agency_system, staff_or_agency_key
from survey.http.openapi import (
    documented_body,
    extra_request_media,
    json_example,
    multipart_part_types,
)
from survey.ingestion.csv_import import CsvImport, import_upload
from survey.ingestion.frames import GROUPINGS, frame_count_table, readable_agency
from survey.ingestion.group_commit import report_transactions
from survey.ingestion.ingest import FIELDS, IngestResult
from survey.kernel.periods import parse_optional_day

DAY = "a Tehran day, inclusive: Gregorian 2026-03-21 or Solar Hijri 1405-01-01 (year below 1700)"
CSV_TYPES = ("text/csv", "text/plain", "application/csv", "application/octet-stream")

Channel = Literal["in_person", "online", "phone", "kiosk"]  # survey.models.CHANNELS
Status = Literal["accepted", "duplicate", "rejected"]
Office = Annotated[str, msgspec.Meta(max_length=120, description="The office or branch")]


class TransactionIn(msgspec.Struct, forbid_unknown_fields=True):
    """One completed service transaction as an agency's system reports it (the schema of the
    body; the handler validates records itself, see survey.ingestion.ingest)."""

    external_id: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=120,
            description="The agency's own id of the transaction; a resend with the same id is "
            "a duplicate",
            examples=["TAX-2026-000123"],
        ),
    ]
    service: Annotated[
        str, msgspec.Meta(description="The service's code in the registry", examples=["TAX-01"])
    ]
    channel: Annotated[Channel, msgspec.Meta(description="How the service was delivered")]
    completed_at: Annotated[
        datetime,
        msgspec.Meta(
            description="When the service was completed: ISO 8601, Gregorian, with a UTC offset. "
            "A Solar Hijri or implausible timestamp (before 2000, in the future, older than "
            "SURVEY_MAX_RECORD_AGE_DAYS) rejects the record",
            examples=["2026-03-09T10:00:00+03:30"],
        ),
    ]
    phone: Annotated[
        str,
        msgspec.Meta(
            description="The citizen's mobile number (0912 345 6789, +98 912 345 6789; Persian "
            "or Arabic digits too). Never returned, stored encrypted only if sampled",
            examples=["0912 345 6789"],
        ),
    ]
    language: Annotated[
        Literal["fa", "en"] | None,
        msgspec.Meta(description="The language of the invitation; fa when absent"),
    ] = None
    province: Annotated[
        str | None, msgspec.Meta(description="Province code, e.g. tehran", examples=["tehran"])
    ] = None
    office: Office | None = None


class ProblemOut(msgspec.Struct, omit_defaults=True):
    message: str
    field: str | None = None


class RecordOut(msgspec.Struct, omit_defaults=True):
    """One record's outcome: `accepted`, `duplicate` or `rejected` (with problems)."""

    index: Annotated[int, msgspec.Meta(description="The record's position in the request, from 0")]
    status: Status
    external_id: str | None = None
    problems: list[ProblemOut] = []
    note: Annotated[
        str | None, msgspec.Meta(description="e.g. no sampling plan in force on that day")
    ] = None


class IngestResponse(msgspec.Struct):
    """Every record's outcome, in input order; never whether it was sampled."""

    received: int
    accepted: int
    duplicates: int
    rejected: int
    no_plan: Annotated[
        int, msgspec.Meta(description="Accepted records with no sampling plan in force")
    ]
    records: list[RecordOut]


class ImportRecordOut(msgspec.Struct, omit_defaults=True):
    """One row's outcome; `row` as a spreadsheet numbers it (the header is row 1)."""

    row: int
    status: Status
    external_id: str | None = None
    problems: list[ProblemOut] = []
    note: str | None = None


class ImportResponse(msgspec.Struct):
    """A CSV file's outcome: the counts and every row's outcome, in file order."""

    file: Annotated[str, msgspec.Meta(description="The uploaded file's name, if it had one")]
    rows: int
    accepted: int
    duplicates: int
    rejected: int
    no_plan: int
    records: list[ImportRecordOut]


class CsvUpload(msgspec.Struct):
    """A multipart form with the CSV file in the field `file`."""

    file: UploadFile


class FrameRow(msgspec.Struct, omit_defaults=True):
    """One group's frame counts: the grouping's values (those named in `by`), then the sums."""

    reported: int
    duplicates: int
    eligible: int
    ineligible: int
    sampled: int
    plan: int | None = None
    stratum: str | None = None
    day: str | None = None
    agency: str | None = None
    service: str | None = None
    channel: str | None = None
    province: str | None = None


class FrameCountsResponse(msgspec.Struct):
    plan: int | None
    date_from: date | None = msgspec.field(name="from")
    date_to: date | None = msgspec.field(name="to")
    by: list[str]
    rows: list[FrameRow]
    agency: str | None = None


def _response_of(result: IngestResult) -> IngestResponse:
    return IngestResponse(
        received=result.received,
        accepted=result.accepted,
        duplicates=result.duplicates,
        rejected=result.rejected,
        no_plan=result.no_plan,
        records=[
            RecordOut(
                index=status.index,
                status=cast(Status, status.status),
                external_id=status.external_id,
                problems=[
                    ProblemOut(problem.message, problem.field or None)
                    for problem in status.problems
                ],
                note=status.note,
            )
            for status in result.statuses
        ],
    )


def _report_response(result: IngestResult, single: bool) -> Response[Any]:
    """200 with every record's status; 422 with the problems when a single object (not an
    array) was rejected."""
    response = _response_of(result)
    if single and result.rejected:
        problems = [msgspec.to_builtins(p) for p in response.records[0].problems]
        return Response(
            {"error": "the transaction was rejected", "problems": problems},
            status_code=422,
            media_type=MediaType.JSON,
        )
    return Response(response, status_code=200, media_type=MediaType.JSON)


def _bad_request(status_code: int, message: str) -> HTTPException:
    return HTTPException(status_code=status_code, detail=message)


def decode_transactions(body: bytes, limit: int) -> tuple[list[Any], bool]:
    """The records of a request body and whether it was a single object (not an array)."""
    if not body.strip():
        raise _bad_request(400, "the request body is empty; send a transaction object or an array")
    try:
        payload = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise _bad_request(400, f"the request body is not valid JSON: {exc}") from None
    if isinstance(payload, dict):
        return [payload], True
    if isinstance(payload, list):
        if len(payload) > limit:
            raise _bad_request(
                413,
                f"a batch may hold at most {limit} transactions; got {len(payload)} "
                "(split it into smaller batches)",
            )
        if not payload:
            raise _bad_request(422, "the batch is empty; send at least one transaction")
        return payload, False
    kind = type(payload).__name__ if payload is not None else "null"
    raise _bad_request(
        422,
        f"the body must be a transaction object or an array of them; got a JSON {kind} "
        f"(fields: {', '.join(FIELDS)})",
    )


ONE = {
    "external_id": "TAX-2026-000123",
    "service": "TAX-01",
    "channel": "in_person",
    "completed_at": "2026-03-09T10:00:00+03:30",
    "phone": "0912 345 6789",
    "language": "fa",
    "province": "tehran",
    "office": "Central",
}
TWO = {
    "external_id": "TAX-2026-000124",
    "service": "TAX-02",
    "channel": "online",
    "completed_at": "2026-03-09T11:20:00Z",
    "phone": "12",
}
BAD_PHONE = {
    "message": "phone '12' is not a mobile number (it has 2 digits; expected e.g. 0912 345 6789)",
    "field": "phone",
}
REPORT_EXAMPLES = [
    json_example("One transaction", ONE),
    json_example("A batch (a JSON array, up to SURVEY_MAX_BATCH_SIZE records)", [ONE, TWO]),
]
OUTCOME_EXAMPLE = json_example(
    "A batch of two: one accepted, one rejected",
    {
        "received": 2,
        "accepted": 1,
        "duplicates": 0,
        "rejected": 1,
        "no_plan": 0,
        "records": [
            {"index": 0, "status": "accepted", "external_id": "TAX-2026-000123"},
            {
                "index": 1,
                "status": "rejected",
                "external_id": "TAX-2026-000124",
                "problems": [BAD_PHONE],
            },
        ],
    },
)
IMPORT_EXAMPLE = json_example(
    "A file of three rows",
    {
        "file": "march.csv",
        "rows": 3,
        "accepted": 1,
        "duplicates": 1,
        "rejected": 1,
        "no_plan": 0,
        "records": [
            {"row": 2, "status": "accepted", "external_id": "TAX-2026-000123"},
            {
                "row": 3,
                "status": "rejected",
                "external_id": "TAX-2026-000124",
                "problems": [BAD_PHONE],
            },
            {"row": 4, "status": "duplicate", "external_id": "TAX-2026-000123"},
        ],
    },
)
FRAME_EXAMPLE = json_example(
    "By agency and day",
    {
        "plan": 1,
        "from": "2026-03-01",
        "to": "2026-03-31",
        "by": ["agency", "day"],
        "agency": "TAX",
        "rows": [
            {
                "agency": "TAX",
                "day": "2026-03-09",
                "reported": 1250,
                "duplicates": 12,
                "eligible": 1190,
                "ineligible": 60,
                "sampled": 71,
            }
        ],
    },
)
CSV_TEXT = (
    f"The CSV file itself as the body (UTF-8). Header row: {', '.join(FIELDS)}; the first five "
    "are required, empty cells are absent fields."
)


async def _uploaded_csv(request: Request[Any, Any, Any]) -> tuple[bytes, str]:
    """The CSV file of a request and its name: a multipart form's field `file`, or the body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == RequestEncodingType.MULTI_PART:
        upload = (await request.form()).get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput(
                "the form has no file in the field 'file' (e.g. curl -F 'file=@march.csv')",
                [Problem("a CSV file is required", field="file")],
            )
        return await upload.read(), upload.filename or ""
    if not content_type or content_type in CSV_TYPES:
        return await request.body(), ""
    raise HTTPException(
        status_code=415,
        detail=f"send the CSV file as the body with Content-Type: text/csv, or as the field "
        f"'file' of a multipart/form-data form; got Content-Type: {content_type}",
    )


def _import_response(summary: CsvImport, name: str) -> ImportResponse:
    return ImportResponse(
        file=name,
        rows=summary.rows,
        accepted=summary.accepted,
        duplicates=summary.duplicates,
        rejected=summary.rejected,
        no_plan=summary.no_plan,
        records=[
            ImportRecordOut(
                row=outcome.row,
                status=cast(Status, outcome.status),
                external_id=outcome.external_id,
                problems=[ProblemOut(p.message, p.field or None) for p in outcome.problems],
                note=outcome.note,
            )
            for outcome in summary.outcomes
        ],
    )


class TransactionController(Controller):
    path = "/api/v1"
    tags = ("ingestion",)

    @post(
        "/transactions",
        operation_id="reportTransactions",
        guards=[agency_system()],
        status_code=200,
        summary="Report completed service transactions",
        description=(
            "Body: one transaction object or a JSON array of them (at most "
            "SURVEY_MAX_BATCH_SIZE). Idempotent on the agency's external_id. Each record is "
            "reported back, in input order, as accepted, duplicate or rejected with problems "
            "naming the fields; a single object that is rejected is a 422 with its problems."
        ),
        dependencies=documented_body(
            TransactionIn | list[TransactionIn],
            description="One transaction, or an array of them",
            examples=REPORT_EXAMPLES,
        ),
        responses={
            200: ResponseSpec(
                IngestResponse,
                description="Every record's outcome",
                examples=[OUTCOME_EXAMPLE],
                generate_examples=False,
            )
        },
    )
    async def report(
        self, request: Request[Any, Any, Any], context: Context, principal: Caller
    ) -> Response[IngestResponse]:
        records, single = decode_transactions(await request.body(), context.settings.max_batch_size)
        return _report_response(await report_transactions(context, principal, records), single)

    @post(
        "/transactions/import",
        operation_id="importTransactionsCsv",
        guards=[agency_system()],
        status_code=200,
        summary="Report transactions from a CSV file",
        description=(
            "For agencies without developers: the same CSV file as `survey transactions import` "
            "(columns as the JSON fields), sent as the field `file` of a multipart form or as a "
            "text/csv body. Every row gets the outcome a JSON record would get; rows are "
            "numbered as a spreadsheet shows them (the header is row 1). A file that cannot be "
            "read is a 422 naming the line, and nothing of it is stored. Limits: "
            "SURVEY_MAX_REQUEST_BYTES per file (413), SURVEY_MAX_IMPORT_ROWS rows (422)."
        ),
        dependencies=documented_body(CsvUpload, media_type=RequestEncodingType.MULTI_PART),
        opt={
            **extra_request_media(text_csv=CSV_TEXT),
            **multipart_part_types(file="text/csv"),
            "extra_errors": {"415": "The body is neither text/csv nor a multipart form"},
        },
        responses={
            200: ResponseSpec(
                ImportResponse,
                description="The counts and every row's outcome",
                examples=[IMPORT_EXAMPLE],
                generate_examples=False,
            )
        },
    )
    async def import_file(
        self, request: Request[Any, Any, Any], context: Context, principal: Caller
    ) -> Response[ImportResponse]:
        body, name = await _uploaded_csv(request)
        limit = context.settings.max_import_rows
        summary = await anyio.to_thread.run_sync(
            lambda: import_upload(context, principal, body, max_rows=limit, name=name)
        )
        return Response(_import_response(summary, name), media_type=MediaType.JSON)

    @get(
        "/frame-counts",
        operation_id="frameCounts",
        guards=[staff_or_agency_key("admin", "statistician", "agency")],
        summary="Frame counts (population totals) by stratum",
        description=(
            "Sums of the exact per-cell counters ingestion keeps. An agency's key and an "
            "agency operator read their own agency's counts only (another agency: 403)."
        ),
        sync_to_thread=True,
        responses={
            200: ResponseSpec(
                FrameCountsResponse,
                description="One row per group",
                examples=[FRAME_EXAMPLE],
                generate_examples=False,
            )
        },
    )
    def counts(
        self,
        context: Context,
        principal: Caller,
        plan: FromQuery[int | None] = None,
        date_from: Annotated[str | None, QueryParameter(name="from", description=DAY)] = None,
        date_to: Annotated[str | None, QueryParameter(name="to", description=DAY)] = None,
        by: Annotated[
            str,
            QueryParameter(description=f"Grouping, comma-separated from {', '.join(GROUPINGS)}"),
        ] = "plan,stratum",
        agency: Annotated[
            str | None,
            QueryParameter(description="Only this agency's counts (agency code)"),
        ] = None,
    ) -> FrameCountsResponse:
        start = parse_optional_day(date_from, field="from")
        end = parse_optional_day(date_to, field="to")
        table = frame_count_table(
            context,
            plan_version=plan,
            start=start,
            end=end,
            agency_id=readable_agency(context, principal, agency),
            by=by,
        )
        rows = msgspec.convert(table.rows, list[FrameRow])
        return FrameCountsResponse(plan, start, end, table.by, rows, agency)


__all__ = [
    "GROUPINGS",
    "FrameCountsResponse",
    "ImportResponse",
    "IngestResponse",
    "TransactionController",
    "TransactionIn",
]
