"""Ingestion's SQL: the reference tables it validates against, and the batch's write transaction
at the driver level.

A batch's statements go straight to the DBAPI cursor (see survey.kernel.dbapi): multi-row
VALUES, no per-row parameter processing, no statement compilation. Times are stored as
SQLAlchemy stores them (naive UTC; on SQLite the same text format), so the ORM and Core read
these rows exactly like their own.

Writers are serialised: SQLite takes its write lock at BEGIN (IMMEDIATE), and on PostgreSQL a
transaction-level advisory lock does the same; in-process a lock queues writer threads first,
which is cheaper than SQLite's busy-wait polling. Agencies, services, provinces and plans are
cached per engine (`IngestStore.reference`), reloaded on demand and every 30 s.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, Session
from sqlmodel import col

from survey.kernel.db import WriterQueue, writer_queue
from survey.kernel.dbapi import Driver, read_time
from survey.models import Agency, Channel, FrameCount, Province, SamplingPlan, Service
from survey.sampling.draw import PlanSpec

__all__ = ["BatchStore", "IngestStore", "Reference", "store_for"]

REFERENCE_TTL_SECONDS = 30.0
TRANSACTION_COLUMNS = (
    "agency_id", "external_id", "service_id", "channel", "completed_at", "received_at",
    "province_code", "office", "language", "plan_id", "stratum", "outcome",
)  # fmt: skip
UNIT_COLUMNS = (
    "transaction_id", "plan_id", "agency_id", "service_id", "channel", "province_code",
    "stratum", "day", "inclusion_probability", "phone_ciphertext", "phone_key_id",
    "phone_hash", "language", "questionnaire_qid", "mode", "status", "created_at",
)  # fmt: skip
CONTACT_COLUMNS = ("phone_hash", "contacted_at", "sampled_unit_id")
FRAME_KEY = ("plan_id", "day", "service_id", "channel", "province_code")
FRAME_COUNTERS = ("reported", "duplicates", "eligible", "ineligible", "sampled")
FRAME_COLUMNS = (*FRAME_KEY, "stratum", "agency_id", *FRAME_COUNTERS)
STAMP_SQL = (
    "SELECT (SELECT count(*) FROM agency), (SELECT max(id) FROM agency), "
    "(SELECT count(*) FROM service), (SELECT max(id) FROM service), "
    "(SELECT count(*) FROM sampling_plan), (SELECT max(id) FROM sampling_plan)"
)
_ROWS_PER_STATEMENT = 1_000
_LOOKUP_CHUNK = 5_000
_PG_INGEST_LOCK = 727_001


@dataclass(frozen=True, slots=True)
class Reference:
    """What records are validated against, with a fingerprint of the tables it came from."""

    stamp: tuple[Any, ...]
    agencies: dict[str, int]
    services: dict[str, tuple[int, int]]  # code -> (service id, agency id)
    provinces: frozenset[str]
    plans: tuple[PlanSpec, ...]
    loaded_at: float


@lru_cache(maxsize=512)
def _values_sql(mark: str, head: str, width: int, rows: int, tail: str) -> str:
    row = "(" + ", ".join([mark] * width) + ")"
    return f"{head} VALUES {', '.join([row] * rows)}{tail}"


@lru_cache(maxsize=256)
def _in_sql(mark: str, head: str, count: int, tail: str = "") -> str:
    return f"{head} IN ({', '.join([mark] * count)}){tail}"


class BatchStore:
    """A batch's reads and writes, on the DBAPI cursor of its write transaction.

    `time` and `day` turn an aware datetime and a date into the values the driver stores.
    """

    def __init__(self, driver: Driver, cursor: Any) -> None:
        self.sqlite, self.mark, self.time, self.day = (
            driver.sqlite,
            driver.mark,
            driver.time,
            driver.day,
        )
        self.cursor = cursor

    def lock(self, key: int) -> None:
        """PostgreSQL: one ingesting transaction at a time (released at commit)."""
        self.cursor.execute(f"SELECT pg_advisory_xact_lock({self.mark})", (key,))

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self.cursor.execute(sql, tuple(params))
        return list(self.cursor.fetchall()) if self.cursor.description else []

    def stamp(self) -> tuple[Any, ...]:
        """The fingerprint of the reference tables (see `Reference.stamp`)."""
        return tuple(self._rows(STAMP_SQL)[0])

    def existing_ids(self, agency_id: int, external_ids: list[str]) -> set[str]:
        """Which of the agency's external ids are stored already."""
        found: set[str] = set()
        for start in range(0, len(external_ids), _LOOKUP_CHUNK):
            chunk = external_ids[start : start + _LOOKUP_CHUNK]
            sql = _in_sql(
                self.mark,
                "SELECT external_id FROM service_transaction WHERE agency_id = "
                f"{self.mark} AND external_id",
                len(chunk),
            )
            found.update(row[0] for row in self._rows(sql, [agency_id, *chunk]))
        return found

    def contact_history(
        self, hashes: list[str], since: datetime | None
    ) -> tuple[set[str], dict[str, datetime]]:
        """Opted-out phones, and each phone's latest contact after `since` (None: no rule).

        One round trip: the two look-ups are tagged 'o' and 'c' and sent as one UNION ALL.
        """
        opted_out: set[str] = set()
        last_contact: dict[str, datetime] = {}
        mark = self.mark
        for start in range(0, len(hashes), _LOOKUP_CHUNK):
            chunk = hashes[start : start + _LOOKUP_CHUNK]
            sql = _in_sql(
                mark,
                "SELECT 'o', phone_hash, NULL FROM opt_out WHERE active AND phone_hash",
                len(chunk),
            )
            params: list[Any] = list(chunk)
            if since is not None:
                sql += " UNION ALL " + _in_sql(
                    mark,
                    "SELECT 'c', phone_hash, max(contacted_at) FROM contact "
                    f"WHERE contacted_at > {mark} AND phone_hash",
                    len(chunk),
                    " GROUP BY phone_hash",
                )
                params += [self.time(since), *chunk]
            for kind, phone_hash, latest in self._rows(sql, params):
                if kind == "o":
                    opted_out.add(phone_hash)
                else:
                    seen = read_time(latest)  # never None: max() over the rows found
                    if seen is not None:
                        last_contact[phone_hash] = seen
        return opted_out, last_contact

    def _insert(self, head: str, width: int, rows: list[tuple[Any, ...]], tail: str) -> list[Any]:
        out: list[Any] = []
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            sql = _values_sql(self.mark, head, width, len(chunk), tail)
            out.extend(self._rows(sql, [value for row in chunk for value in row]))
        return out

    def insert_transactions(self, rows: list[tuple[Any, ...]]) -> list[tuple[int, str]]:
        """Insert new transactions (`TRANSACTION_COLUMNS`); returns (id, external_id) of those
        actually inserted (a row whose (agency, external_id) exists is skipped)."""
        return self._insert(
            f"INSERT INTO service_transaction ({', '.join(TRANSACTION_COLUMNS)})",
            len(TRANSACTION_COLUMNS),
            rows,
            " ON CONFLICT (agency_id, external_id) DO NOTHING RETURNING id, external_id",
        )

    def insert_sampled_units(self, rows: list[tuple[Any, ...]]) -> list[tuple[int, int]]:
        """Insert sampled units (`UNIT_COLUMNS`); returns (id, transaction_id) of each."""
        return self._insert(
            f"INSERT INTO sampled_unit ({', '.join(UNIT_COLUMNS)})",
            len(UNIT_COLUMNS),
            rows,
            " RETURNING id, transaction_id",
        )

    def insert_contacts(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert contact-rule rows (`CONTACT_COLUMNS`)."""
        self._insert(
            f"INSERT INTO contact ({', '.join(CONTACT_COLUMNS)})", len(CONTACT_COLUMNS), rows, ""
        )

    def add_frame_counts(self, rows: list[tuple[Any, ...]]) -> None:
        """Atomic increments (`FRAME_COLUMNS`): a cell's counters are added to, never
        overwritten."""
        increments = ", ".join(
            f"{name} = frame_count.{name} + excluded.{name}" for name in FRAME_COUNTERS
        )
        self._insert(
            f"INSERT INTO frame_count ({', '.join(FRAME_COLUMNS)})",
            len(FRAME_COLUMNS),
            rows,
            f" ON CONFLICT ({', '.join(FRAME_KEY)}) DO UPDATE SET {increments}",
        )


class IngestStore:
    """One engine's ingestion storage: the cached reference data and the write transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.driver = Driver(engine)
        queue = writer_queue(engine)
        # PostgreSQL: one process's ingesting threads still take turns here, each holding a
        # pooled connection while it waits for the advisory lock otherwise.
        self._write_lock: AbstractContextManager[object] = (
            queue if isinstance(queue, WriterQueue) else threading.Lock()
        )
        self._cached: Reference | None = None
        self._guard = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[BatchStore]:
        """The one write transaction of a batch (its writer's turn taken first); committed
        on success, rolled back on any error."""
        with self._write_lock, self.driver.transaction() as cursor:
            store = BatchStore(self.driver, cursor)
            if not self.driver.sqlite:
                store.lock(_PG_INGEST_LOCK)
            yield store

    def reference(self, *, force: bool = False) -> Reference:
        """The reference data, from the cache unless `force` or older than 30 s."""
        cached = self._cached
        if (
            not force
            and cached is not None
            and time.monotonic() - cached.loaded_at < REFERENCE_TTL_SECONDS
        ):
            return cached
        with self.engine.execution_options(read_only=True).connect() as connection:
            loaded = _load_reference(connection)
            connection.rollback()
        with self._guard:
            self._cached = loaded
        return loaded


def _load_reference(connection: sa.Connection) -> Reference:
    stamp = tuple(connection.exec_driver_sql(STAMP_SQL).one())
    # A stored row always has its id (`is not None` narrows the models' `int | None`).
    agencies = {
        code: agency_id
        for agency_id, code in connection.execute(sa.select(col(Agency.id), col(Agency.code)))
        if agency_id is not None
    }
    services = {
        code: (service_id, agency_id)
        for service_id, code, agency_id in connection.execute(
            sa.select(col(Service.id), col(Service.code), col(Service.agency_id))
        )
        if service_id is not None
    }
    provinces = frozenset(connection.execute(sa.select(col(Province.code))).scalars())
    plans = tuple(PlanSpec.from_row(row) for row in connection.execute(sa.select(SamplingPlan)))
    return Reference(stamp, agencies, services, provinces, plans, time.monotonic())


_STORES: weakref.WeakKeyDictionary[Engine, IngestStore] = weakref.WeakKeyDictionary()
_STORES_GUARD = threading.Lock()


def store_for(engine: Engine) -> IngestStore:
    """The engine's one `IngestStore` (its write lock and reference cache are shared)."""
    with _STORES_GUARD:
        store = _STORES.get(engine)
        if store is None:
            store = _STORES[engine] = IngestStore(engine)
        return store


# -- frame counts (survey.ingestion.frames) and the overview's names ---------------------------
COUNTER_COLUMNS: dict[str, Mapped[int]] = {
    "reported": col(FrameCount.reported),
    "duplicates": col(FrameCount.duplicates),
    "eligible": col(FrameCount.eligible),
    "ineligible": col(FrameCount.ineligible),
    "sampled": col(FrameCount.sampled),
}


def plan_version_exists(bind: Connection | Session, version: int) -> bool:
    found = bind.execute(
        sa.select(col(SamplingPlan.id)).where(col(SamplingPlan.version) == version)
    ).first()
    return found is not None


def frame_totals(
    bind: Connection | Session,
    by: Sequence[str],
    *,
    start: date | None,
    end: date | None,
    plan_version: int | None,
    agency_id: int | None,
) -> sa.CursorResult[Any] | sa.Result[Any]:
    """The frame counters summed per group (`g_<name>` columns), sorted by the group."""
    columns: dict[str, Mapped[Any]] = {
        "plan": col(SamplingPlan.version),
        "stratum": col(FrameCount.stratum),
        "day": col(FrameCount.day),
        "agency": col(Agency.code),
        "service": col(Service.code),
        "channel": col(FrameCount.channel),
        "province": col(FrameCount.province_code),
    }
    keys: list[sa.Label[Any]] = [columns[name].label(f"g_{name}") for name in by]
    sums = [
        sa.func.coalesce(sa.func.sum(column), 0).label(name)
        for name, column in COUNTER_COLUMNS.items()
    ]
    query = (
        sa.select(*keys, *sums)
        .select_from(
            sa.join(FrameCount, SamplingPlan, col(SamplingPlan.id) == col(FrameCount.plan_id))
            .join(Service, col(Service.id) == col(FrameCount.service_id))
            .join(Agency, col(Agency.id) == col(FrameCount.agency_id))
        )
        .group_by(*keys)
        .order_by(*keys)
    )
    if plan_version is not None:
        query = query.where(col(SamplingPlan.version) == plan_version)
    if start is not None:
        query = query.where(col(FrameCount.day) >= start)
    if end is not None:
        query = query.where(col(FrameCount.day) <= end)
    if agency_id is not None:
        query = query.where(col(FrameCount.agency_id) == agency_id)
    return bind.execute(query)


def names(session: Session, table: type[Agency] | type[Channel]) -> dict[str, tuple[str, str]]:
    """Codes to (Persian, English) names of agencies or channels."""
    rows = session.execute(sa.select(col(table.code), col(table.name_fa), col(table.name_en)))
    return {code: (fa, en) for code, fa, en in rows.all()}
