"""HTTP API for agencies' transaction reports and staff's frame counts (thin: parse, call, map).

The request body is read raw and decoded with msgspec here, so malformed JSON gets a 400 that
says where it broke, and a batch is checked against the size limit before any work is done.
Statuses say accepted / duplicate / rejected, never whether a transaction was sampled (see
`survey.ingestion.ingest`). Phones never appear in a response: a record is named by its index and
external_id.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any, ClassVar

import anyio.to_thread
import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromQuery, QueryParameter

from survey.context import AppContext
from survey.http.guards import agency_key, agency_scope, principal_of, staff
from survey.ingestion.frames import GROUPINGS, frame_counts
from survey.ingestion.ingest import FIELDS, IngestResult, ingest_requests, ingest_transactions
from survey.kernel.principal import Principal

GROUPED_RECORDS = 8  # requests this small are committed together (see GroupCommit)


class GroupCommit:
    """Commits concurrent small requests together: one write transaction for many requests.

    On SQLite (one writer at a time) a single transaction costs more than the few records in it:
    BEGIN IMMEDIATE, the commit, a worker-thread hop and the wait for the write lock. So small
    requests queue here; one writer task stores everything queued with `ingest_requests` in a
    worker thread, and while it does, the next requests gather for the following transaction.
    Each request gets exactly the result it would have got alone, in arrival order.
    """

    def __init__(self, context: AppContext) -> None:
        self._context = context
        self._pending: list[tuple[str, list[Any], asyncio.Future[IngestResult]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, agency_code: str, records: list[Any]) -> IngestResult:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[IngestResult] = loop.create_future()
        self._pending.append((agency_code, records, future))
        if self._writer is None:
            self._writer = loop.create_task(self._write())
        return await future

    async def _write(self) -> None:
        try:
            while self._pending:
                pending, self._pending = self._pending, []
                requests = [(code, records) for code, records, _ in pending]
                try:
                    outcomes = await anyio.to_thread.run_sync(
                        ingest_requests, self._context, requests
                    )
                except Exception as exc:  # the transaction failed: every request learns why
                    for _, _, future in pending:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, _, future), outcome in zip(pending, outcomes, strict=True):
                    if future.done():  # the client went away
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._writer = None


def _group_commit(request: Request) -> GroupCommit:
    state = request.app.state
    commit = state.get("ingest_group_commit")
    if commit is None:
        commit = state["ingest_group_commit"] = GroupCommit(state.context)
    return commit  # type: ignore[no-any-return]


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
    tags: ClassVar[list[str]] = ["ingestion"]

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
    async def report(self, request: Request) -> Response[IngestResponse | dict[str, Any]]:
        context: AppContext = request.app.state.context
        principal: Principal = principal_of(request)
        body = await request.body()
        records, single = decode_transactions(body, context.settings.max_batch_size)
        if len(records) <= GROUPED_RECORDS:
            result = await _group_commit(request).submit(principal.agency_code, records)  # type: ignore[arg-type]
        else:
            result = await anyio.to_thread.run_sync(
                ingest_transactions, context, principal.agency_code, records
            )
        response = _response_of(result)
        if single and result.rejected:
            problems = [msgspec.to_builtins(p) for p in response.records[0].problems]
            return Response(
                {"error": "the transaction was rejected", "problems": problems},
                status_code=422,
                media_type=MediaType.JSON,
            )
        return Response(response, status_code=200, media_type=MediaType.JSON)

    @get(
        "/frame-counts",
        guards=[staff("admin", "statistician", "agency")],
        summary="Frame counts (population totals) by stratum",
        sync_to_thread=True,
    )
    def counts(
        self,
        request: Request,
        plan: FromQuery[int | None] = None,
        date_from: Annotated[date | None, QueryParameter(name="from")] = None,
        date_to: Annotated[date | None, QueryParameter(name="to")] = None,
        by: FromQuery[str] = "plan,stratum",
    ) -> FrameCountsResponse:
        context: AppContext = request.app.state.context
        principal: Principal = principal_of(request)
        agency_id = agency_scope(principal)  # an agency operator: its own agency only
        grouping = [name.strip() for name in by.split(",") if name.strip()]
        if not grouping:
            grouping = ["plan", "stratum"]
        with context.read_sessions() as session:
            totals = frame_counts(
                session,
                plan_version=plan,
                start=date_from,
                end=date_to,
                agency_id=agency_id,
                by=grouping,
            )
        rows = [
            {
                **total.group,
                "reported": total.reported,
                "duplicates": total.duplicates,
                "eligible": total.eligible,
                "ineligible": total.ineligible,
                "sampled": total.sampled,
            }
            for total in totals
        ]
        return FrameCountsResponse(plan, date_from, date_to, grouping, rows)


__all__ = ["GROUPINGS", "FrameCountsResponse", "IngestResponse", "TransactionController"]
