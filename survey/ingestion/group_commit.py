"""An agency's report, stored from the event loop: small requests are committed together.

`report_transactions(context, principal, records)` is what the HTTP API awaits. A request of up
to `GROUPED_RECORDS` records joins the group commit; a larger one is a batch of its own,
ingested in a worker thread. Either way the result is what `ingest_transactions` returns.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import Any

import anyio.to_thread

from survey.context import AppContext
from survey.errors import Forbidden
from survey.ingestion.ingest import IngestResult, ingest_requests, ingest_transactions
from survey.kernel.principal import Principal

__all__ = ["GROUPED_RECORDS", "GroupCommit", "group_commit_for", "report_transactions"]

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
        self._pending: list[tuple[str, Sequence[Any], asyncio.Future[IngestResult]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, agency_code: str, records: Sequence[Any]) -> IngestResult:
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


# One GroupCommit per context and event loop: its futures and writer task belong to one loop.
# Keyed weakly by the loop, so a finished loop (a test client's) takes its entries with it.
_COMMITS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, GroupCommit]] = (
    weakref.WeakKeyDictionary()
)


def group_commit_for(context: AppContext) -> GroupCommit:
    """The context's `GroupCommit` on the running event loop."""
    loop = asyncio.get_running_loop()
    commits = _COMMITS.get(loop)
    if commits is None:
        commits = _COMMITS[loop] = {}
    commit = commits.get(id(context))  # the entry holds the context: its id stays its own
    if commit is None:
        commit = commits[id(context)] = GroupCommit(context)
    return commit


async def report_transactions(
    context: AppContext, principal: Principal, records: Sequence[Any]
) -> IngestResult:
    """Ingest one request of an agency's system (see `ingest_transactions`): small requests
    through the group commit, larger ones in a worker thread of their own.

    Raises `NotFound` if the agency is not registered, `Forbidden` for a caller that is not an
    agency's system.
    """
    agency_code = principal.agency_code
    if agency_code is None:
        raise Forbidden("this needs an agency's API key")
    if len(records) <= GROUPED_RECORDS:
        return await group_commit_for(context).submit(agency_code, records)
    return await anyio.to_thread.run_sync(ingest_transactions, context, agency_code, records)
