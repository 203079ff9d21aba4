"""HTTP API for agencies' transaction reports and staff's frame counts (thin: parse, call, map).

The request body is read raw and decoded with msgspec here, so malformed JSON gets a 400 that
says where it broke, and a batch is checked against the size limit before any work is done.
Statuses say accepted / duplicate / rejected, never whether a transaction was sampled (see
`survey.ingestion.ingest`). Phones never appear in a response: a record is named by its index and
external_id.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromQuery, QueryParameter

from survey.http.dependencies import Caller, Context
from survey.http.guards import agency_key, agency_scope, staff
from survey.ingestion.frames import GROUPINGS, frame_count_table
from survey.ingestion.group_commit import report_transactions
from survey.ingestion.ingest import FIELDS, IngestResult


class ProblemOut(msgspec.Struct, omit_defaults=True):
    message: str
    field: str | None = None


class RecordOut(msgspec.Struct, omit_defaults=True):
    """One record's outcome: `accepted`, `duplicate` or `rejected` (with problems)."""

    index: int
    status: str
    external_id: str | None = None
    problems: list[ProblemOut] = []
    note: str | None = None


class IngestResponse(msgspec.Struct):
    received: int
    accepted: int
    duplicates: int
    rejected: int
    no_plan: int
    records: list[RecordOut]


class FrameCountsResponse(msgspec.Struct):
    plan: int | None
    date_from: date | None = msgspec.field(name="from")
    date_to: date | None = msgspec.field(name="to")
    by: list[str]
    rows: list[dict[str, str | int]]


async def agency_key_inline(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """`agency_key`, run on the event loop: Litestar runs a sync guard in a worker thread,
    one thread hop per request on the hottest route; the key look-up is a cached dict read."""
    agency_key(connection, handler)


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
                status=status.status,
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


def _report_response(
    result: IngestResult, single: bool
) -> Response[IngestResponse | dict[str, Any]]:
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


class TransactionController(Controller):
    path = "/api/v1"
    tags = ("ingestion",)

    @post(
        "/transactions",
        guards=[agency_key_inline],
        status_code=200,
        summary="Report completed service transactions",
        description=(
            "Body: one transaction object or a JSON array of them. Idempotent on the agency's "
            "external_id. Each record is reported back, in input order, as accepted, duplicate "
            "or rejected with problems naming the fields."
        ),
    )
    async def report(
        self, request: Request[Any, Any, Any], context: Context, principal: Caller
    ) -> Response[IngestResponse | dict[str, Any]]:
        records, single = decode_transactions(await request.body(), context.settings.max_batch_size)
        return _report_response(await report_transactions(context, principal, records), single)

    @get(
        "/frame-counts",
        guards=[staff("admin", "statistician", "agency")],
        summary="Frame counts (population totals) by stratum",
        sync_to_thread=True,
    )
    def counts(
        self,
        context: Context,
        principal: Caller,
        plan: FromQuery[int | None] = None,
        date_from: Annotated[date | None, QueryParameter(name="from")] = None,
        date_to: Annotated[date | None, QueryParameter(name="to")] = None,
        by: FromQuery[str] = "plan,stratum",
    ) -> FrameCountsResponse:
        table = frame_count_table(
            context,
            plan_version=plan,
            start=date_from,
            end=date_to,
            agency_id=agency_scope(principal),  # an agency operator: its own agency only
            by=by,
        )
        return FrameCountsResponse(plan, date_from, date_to, table.by, table.rows)


__all__ = ["GROUPINGS", "FrameCountsResponse", "IngestResponse", "TransactionController"]
