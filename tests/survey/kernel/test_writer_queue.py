"""Ingestion from several worker processes into one database (what `survey serve --workers N`
does): writers queue without polling (survey.kernel.db.WriterQueue on SQLite), and the frame counts
and the contact rule stay exact across processes."""

from __future__ import annotations

import multiprocessing
import time
from itertools import pairwise
from pathlib import Path

from survey.config import Settings
from survey.context import AppContext
from survey.ingestion.ingest import ingest_transactions
from survey.kernel.db import WriterQueue
from tests.survey.builders import add_agency, add_plan, ingestion_totals, transaction_record

FORK = multiprocessing.get_context("fork")


def _hold(path: str, times: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue = WriterQueue(path)
    for _ in range(times):
        with queue:
            start = time.monotonic()
            time.sleep(0.02)
            out.put((start, time.monotonic()))
    queue.close()


def test_writer_queue_lets_one_process_in_at_a_time(tmp_path: Path) -> None:
    path = str(tmp_path / "db-writers.lock")
    out: multiprocessing.Queue = FORK.Queue()  # type: ignore[type-arg]
    workers = [FORK.Process(target=_hold, args=(path, 5, out)) for _ in range(3)]
    for worker in workers:
        worker.start()
    held = sorted(out.get(timeout=30) for _ in range(15))
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    for (_, end), (next_start, _) in pairwise(held):
        assert next_start >= end, "two processes held the writer queue at once"


def _ingest(settings: Settings, agency: str, batches: list[list[dict]]) -> None:
    context = AppContext.build(settings)
    try:
        for batch in batches:
            ingest_transactions(context, agency, batch)
    finally:
        context.close()


def test_frame_counts_are_exact_when_two_processes_ingest_at_once(
    context: AppContext, migrated_settings: Settings
) -> None:
    add_agency(context, "TAX", ("TAX-01", "TAX-02"))
    add_plan(context)
    # Overlapping ids across the processes (resends), and shared phones (the contact rule).
    plans = [
        [
            [
                transaction_record(
                    n,
                    service="TAX-02" if n % 2 else "TAX-01",
                    phone=f"0912{n % 400:07d}",
                )
                for n in range(start, start + 300)
            ]
            for start in range(worker * 150, worker * 150 + 2_400, 300)
        ]
        for worker in range(2)
    ]
    posted = {r["external_id"] for batches in plans for batch in batches for r in batch}
    sent = sum(len(batch) for batches in plans for batch in batches)
    workers = [
        FORK.Process(target=_ingest, args=(migrated_settings, "TAX", batches)) for batches in plans
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    totals = ingestion_totals(context)
    assert totals.stored == totals.reported == len(posted)
    assert totals.duplicates == sent - len(posted)
    assert totals.eligible + totals.ineligible == totals.reported
    assert totals.sampled == totals.units == totals.sampled_outcomes > 0
    assert totals.phones_invited_twice == 0, "the contact rule broke across processes"
