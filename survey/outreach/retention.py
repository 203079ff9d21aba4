"""Retention: citizens' phones are kept only while they are needed.

- A sampled unit's phone (the ciphertext) is erased `SURVEY_PHONE_RETENTION_DAYS` after its
  invitation finished (completed, expired, opted out or failed for good), or that long after
  the unit was drawn when it never got an invitation (unsendable, no questionnaire).
- The keyed phone hash is what the contact rule ("at most once in N days") remembers. It
  stays until the longest contact window of any plan has passed since the contact: then the
  contact row is deleted and the erased unit's hash blanked. Opt-outs are kept (a citizen who
  said STOP must never be contacted again); they hold only the keyed hash.

`purge_phones` does both, in batches of short transactions; `survey maintenance purge-phones`
runs it by hand and the server's maintenance thread runs it every hour.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread
from sqlalchemy.engine import Connection

from survey.context import AppContext
from survey.outreach import store
from survey.outreach.background import wanted_in_serve

__all__ = [
    "FINISHED_STATUSES",
    "PurgeReport",
    "RetentionWorker",
    "purge_phones",
    "retention_lifespan",
]

FINISHED_STATUSES = ("completed", "expired", "opted_out", "failed")
PURGE_INTERVAL_SECONDS = 3600.0

log = logging.getLogger("survey.retention")


@dataclass
class PurgeReport:
    """What one purge erased."""

    phones_erased: int = 0
    contacts_deleted: int = 0
    hashes_blanked: int = 0
    retention_days: int = 0
    contact_window_days: int = 0

    def lines(self) -> list[str]:
        return [
            f"phones erased: {self.phones_erased} "
            f"(finished more than {self.retention_days} days ago)",
            f"contact-rule hashes forgotten: {self.contacts_deleted} contacts, "
            f"{self.hashes_blanked} units (older than {self.contact_window_days} days)",
        ]


def purge_phones(
    context: AppContext,
    *,
    retention_days: int | None = None,
    now: datetime | None = None,
    batch_size: int = 1000,
    dry_run: bool = False,
) -> PurgeReport:
    """Erase phones past retention and contact hashes past every contact window."""
    days = context.settings.phone_retention_days if retention_days is None else retention_days
    if days < 0:
        raise ValueError(f"retention_days must be 0 or more; got {days}")
    now = now or context.clock()
    cutoff = now - timedelta(days=days)
    report = PurgeReport(retention_days=days)
    with context.engine.connect() as conn:
        window = store.longest_contact_window(conn)
    report.contact_window_days = window
    contact_cutoff = now - timedelta(days=window)

    if dry_run:
        with context.engine.connect() as conn:
            report.phones_erased = store.count_erasable_units(conn, cutoff, FINISHED_STATUSES)
            report.contacts_deleted = store.count_old_contacts(conn, contact_cutoff)
            report.hashes_blanked = store.count_forgettable_units(conn, contact_cutoff)
        return report

    report.phones_erased = _in_batches(
        context,
        lambda conn, limit: store.erasable_unit_ids(conn, cutoff, FINISHED_STATUSES, limit),
        store.erase_phones,
        batch_size,
    )
    report.contacts_deleted = _in_batches(
        context,
        lambda conn, limit: store.old_contact_ids(conn, contact_cutoff, limit),
        store.delete_contacts,
        batch_size,
    )
    report.hashes_blanked = _in_batches(
        context,
        lambda conn, limit: store.forgettable_unit_ids(conn, contact_cutoff, limit),
        store.blank_phone_hashes,
        batch_size,
    )
    return report


def _in_batches(
    context: AppContext,
    next_ids: Callable[[Connection, int], list[int]],
    apply: Callable[[Connection, list[int]], None],
    batch_size: int,
) -> int:
    """Apply `apply(conn, ids)` to the ids `next_ids(conn, batch_size)` yields, one transaction
    per batch, until there are none."""
    done = 0
    while True:
        with context.engine.begin() as conn:
            ids = next_ids(conn, batch_size)
            if not ids:
                return done
            apply(conn, ids)
        done += len(ids)


class RetentionWorker:
    """A daemon thread that purges every `interval` seconds (first pass at start)."""

    def __init__(self, context: AppContext, interval: float = PURGE_INTERVAL_SECONDS) -> None:
        self.context = context
        self.interval = interval
        self.stop_event = threading.Event()
        self.passes = 0
        self.thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                report = purge_phones(self.context)
                if report.phones_erased or report.contacts_deleted or report.hashes_blanked:
                    log.info(
                        "retention: %d phones erased, %d contacts and %d unit hashes forgotten",
                        report.phones_erased,
                        report.contacts_deleted,
                        report.hashes_blanked,
                    )
            except Exception:  # a database hiccup must not end the thread
                log.exception("retention pass failed; retrying in %s s", self.interval)
            self.passes += 1
            self.stop_event.wait(self.interval)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout)


@asynccontextmanager
async def retention_lifespan(context: AppContext) -> AsyncIterator[None]:
    """For `Litestar(lifespan=[retention_lifespan(context)])`: runs where the dispatcher runs
    (not in tests)."""
    if not wanted_in_serve(context.settings):
        yield
        return
    worker = RetentionWorker(context)
    worker.start()
    try:
        yield
    finally:
        await anyio.to_thread.run_sync(worker.stop)
