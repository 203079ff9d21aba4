"""Transaction ingestion: validate, de-duplicate, apply the contact rule, sample, count.

`ingest_transactions(context, agency_code, records)` takes one batch of decoded JSON values (the
HTTP API and the CSV import both call it) and handles it in ONE database transaction:

1. Each record is validated on its own; a bad record is rejected with reasons naming its fields
   and the valid records of the batch are kept.
2. Identity is (agency, external_id): a record already stored, or repeated earlier in the same
   batch, is a `duplicate` (counted in `frame_count.duplicates`, nothing else changes). Rows are
   written with INSERT ... ON CONFLICT DO NOTHING RETURNING, so even a concurrent resend that
   slipped past the look-up is stored once (the batch is then redone, see `_Race`).
3. The plan in force is the one with the latest `starts` on or before the transaction's
   Tehran-local date; without one the record is stored with outcome `no_plan` and never sampled.
4. Contact rule: a phone (by keyed hash) that opted out, or that was invited within the plan's
   `contact_rule_days` (in the `contact` table or earlier in this batch), makes the transaction
   ineligible. The window ends at the invitation time (now), since that is when a citizen would
   be contacted again; for transactions reported as they happen it is the same as counting back
   from `completed_at`.
5. Eligible transactions are sampled by `sampling.decide`. A sampled one becomes a
   `SampledUnit` holding the phone encrypted and its keyed hash, the inclusion probability, the
   stratum and the questionnaire and mode the plan names; plus a `Contact` row. Transactions not
   sampled keep no phone at all.
6. Frame counts per (plan, Tehran day, service, channel, province) are incremented with atomic
   upserts (`x = x + excluded.x`) in the same transaction, so they stay exact under concurrency.

Per-record statuses are `accepted`, `duplicate` or `rejected`: the agency is never told whether
a transaction was sampled. If it were, it could learn which transactions get surveyed (and, by
resending under new ids, steer the sample towards satisfied citizens); the survey would no longer
be a probability sample of its services.

Writers are serialised: SQLite takes its write lock at BEGIN (IMMEDIATE), and on PostgreSQL a
transaction-level advisory lock does the same, so the duplicate look-up and the contact rule
see every earlier batch. In-process a lock queues writer threads, which is cheaper than SQLite's
busy-wait polling.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from survey.context import AppContext
from survey.errors import NotFound
from survey.models import (
    CHANNELS,
    Agency,
    Contact,
    FrameCount,
    OptOut,
    Province,
    SampledUnit,
    SamplingPlan,
    Service,
    ServiceTransaction,
)
from survey.phones import check_mobile, describe
from survey.sampling import PlanSpec, Unit, decide_many, plan_in_force

__all__ = [
    "FIELDS",
    "IngestResult",
    "RecordStatus",
    "ingest_transactions",
]

FIELDS: tuple[str, ...] = (
    "external_id",
    "service",
    "channel",
    "completed_at",
    "phone",
    "language",
    "province",
    "office",
)
REQUIRED: tuple[str, ...] = FIELDS[:5]
LANGUAGES: tuple[str, ...] = ("fa", "en")
FUTURE_TOLERANCE = timedelta(minutes=15)
MAX_EXTERNAL_ID = 120
MAX_OFFICE = 120
REFERENCE_TTL_SECONDS = 30.0
_LOOKUP_CHUNK = 5_000
_PG_INGEST_LOCK = 727_001
_FIELD_SET = frozenset(FIELDS)
_CHANNEL_SET = frozenset(CHANNELS)
_CHANNEL_LIST = ", ".join(CHANNELS)
_TYPE_NAMES = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class RecordStatus:
    """The outcome for one record, in input order. Never says whether it was sampled."""

    index: int
    external_id: str | None
    status: str  # accepted | duplicate | rejected
    problems: tuple[Problem, ...] = ()
    note: str | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    received: int
    accepted: int
    duplicates: int
    rejected: int
    no_plan: int
    statuses: list[RecordStatus]


def ingest_transactions(
    context: AppContext, agency_code: str, records: Sequence[Any]
) -> IngestResult:
    """Ingest one batch for the agency `agency_code`; one database transaction for the batch.

    `records` are decoded JSON values (normally dicts with `FIELDS`); anything else is rejected
    record by record. Raises `NotFound` if the agency does not exist.
    """
    state = _state_for(context.engine)
    now = context.clock()
    reference = state.reference(context.engine)
    if agency_code not in reference.agencies:
        reference = state.reference(context.engine, force=True)
        if agency_code not in reference.agencies:
            raise NotFound(f"agency {agency_code!r} is not registered")
    zone = ZoneInfo(context.settings.timezone)
    for _attempt in range(3):
        batch = _validate(records, agency_code, reference, now, zone, context)
        try:
            with state.write_lock, context.engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_INGEST_LOCK)))
                if _stamp(connection) != reference.stamp:
                    reference = state.reference(connection, force=True)
                    raise _Stale
                return _store(connection, context, batch, reference, now)
        except (_Stale, _Race):
            continue
    raise RuntimeError("ingestion could not complete after 3 attempts (reference data changing)")


# -- validation --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Valid:
    index: int
    external_id: str
    service_id: int
    service_code: str
    channel: str
    completed_at: datetime
    day: date
    phone: str
    language: str
    province: str
    office: str | None
    plan: PlanSpec | None


@dataclass(slots=True)
class _Batch:
    agency_id: int
    agency_code: str
    size: int
    valid: list[_Valid]
    repeated: list[_Valid]  # same external_id earlier in this batch
    rejected: dict[int, RecordStatus]


def _type_name(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _validate(
    records: Sequence[Any],
    agency_code: str,
    reference: _Reference,
    now: datetime,
    zone: ZoneInfo,
    context: AppContext,
) -> _Batch:
    agency_id = reference.agencies[agency_code]
    services = reference.services
    provinces = reference.provinces
    plans = reference.plans
    latest = now + FUTURE_TOLERANCE
    valid: list[_Valid] = []
    repeated: list[_Valid] = []
    rejected: dict[int, RecordStatus] = {}
    seen: set[str] = set()
    plan_of_day: dict[date, PlanSpec | None] = {}
    for index, record in enumerate(records):
        if type(record) is not dict:
            rejected[index] = RecordStatus(
                index,
                None,
                "rejected",
                (Problem("", f"a transaction must be a JSON object; got {_type_name(record)}"),),
            )
            continue
        problems: list[Problem] = []
        if not _FIELD_SET.issuperset(record):
            for name in record:
                if name not in _FIELD_SET:
                    problems.append(
                        Problem(str(name), f"unknown field {name!r} (fields: {', '.join(FIELDS)})")
                    )
        for name in REQUIRED:
            value = record.get(name)
            if value is None:
                problems.append(Problem(name, f"{name} is required"))
            elif type(value) is not str:
                problems.append(Problem(name, f"{name} must be a string; got {_type_name(value)}"))
        external_id = record.get("external_id")
        external_id = external_id if type(external_id) is str else None
        if external_id is not None:
            external_id = external_id.strip()
            if not external_id:
                problems.append(Problem("external_id", "external_id must not be empty"))
            elif len(external_id) > MAX_EXTERNAL_ID:
                problems.append(
                    Problem(
                        "external_id",
                        f"external_id is {len(external_id)} characters long; "
                        f"at most {MAX_EXTERNAL_ID} allowed",
                    )
                )
        service_id = 0
        service_code = record.get("service")
        if type(service_code) is str:
            known = services.get(service_code)
            if known is None:
                problems.append(Problem("service", f"service {service_code!r} is not registered"))
            elif known[1] != agency_id:
                problems.append(
                    Problem(
                        "service",
                        f"service {service_code!r} does not belong to agency {agency_code!r}",
                    )
                )
            else:
                service_id = known[0]
        channel = record.get("channel")
        if type(channel) is str and channel not in _CHANNEL_SET:
            problems.append(
                Problem("channel", f"channel must be one of {_CHANNEL_LIST}; got {channel!r}")
            )
        completed_at = None
        raw_time = record.get("completed_at")
        if type(raw_time) is str:
            completed_at = _parse_time(raw_time, latest, problems)
        phone = None
        raw_phone = record.get("phone")
        if type(raw_phone) is str:
            phone, reason = check_mobile(raw_phone)
            if phone is None:
                problems.append(Problem("phone", f"phone {describe(raw_phone)} {reason}"))
        language = record.get("language")
        if language is None:
            language = "fa"
        elif language not in LANGUAGES:
            shown = repr(language) if type(language) is str else _type_name(language)
            problems.append(Problem("language", f"language must be 'fa' or 'en'; got {shown}"))
        province = record.get("province")
        if province is None or province == "":
            province = ""
        elif type(province) is not str:
            problems.append(
                Problem("province", f"province must be a string; got {_type_name(province)}")
            )
        elif province not in provinces:
            problems.append(
                Problem(
                    "province",
                    f"province {province!r} is not a province code (e.g. 'tehran', 'fars')",
                )
            )
        office = record.get("office")
        if office is not None:
            if type(office) is not str:
                problems.append(
                    Problem("office", f"office must be a string; got {_type_name(office)}")
                )
            elif len(office) > MAX_OFFICE:
                problems.append(
                    Problem("office", f"office is {len(office)} characters; at most {MAX_OFFICE}")
                )
            elif not office.strip():
                office = None
        if problems:
            rejected[index] = RecordStatus(index, external_id, "rejected", tuple(problems))
            continue
        assert completed_at is not None and phone is not None and external_id is not None
        day = completed_at.astimezone(zone).date()
        if day in plan_of_day:
            plan = plan_of_day[day]
        else:
            plan = plan_of_day[day] = plan_in_force(plans, day)
        item = _Valid(
            index,
            external_id,
            service_id,
            service_code,  # type: ignore[arg-type]
            channel,  # type: ignore[arg-type]
            completed_at,
            day,
            phone,
            language,
            province,
            office,
            plan,
        )
        if external_id in seen:
            repeated.append(item)
        else:
            seen.add(external_id)
            valid.append(item)
    return _Batch(agency_id, agency_code, len(records), valid, repeated, rejected)


def _parse_time(raw: str, latest: datetime, problems: list[Problem]) -> datetime | None:
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        problems.append(
            Problem(
                "completed_at",
                f"completed_at must be an ISO 8601 time with offset such as "
                f"2026-03-10T12:30:00+03:30; got {raw[:40]!r}",
            )
        )
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        problems.append(
            Problem(
                "completed_at",
                f"completed_at must include a UTC offset (e.g. +03:30 or Z); got {raw[:40]!r}",
            )
        )
        return None
    value = value.astimezone(UTC)
    if value > latest:
        problems.append(Problem("completed_at", f"completed_at {raw[:40]!r} is in the future"))
        return None
    return value


# -- storing -----------------------------------------------------------------------------------


class _Stale(Exception):
    """Reference data (services, plans) changed since validation: validate again."""


class _Race(Exception):
    """A row expected to be new already existed (a writer outside the lock): redo the batch."""


_NOTE_NO_PLAN = "no sampling plan is in force on {day}; recorded and counted, never surveyed"


def _store(
    connection: Connection,
    context: AppContext,
    batch: _Batch,
    reference: _Reference,
    now: datetime,
) -> IngestResult:
    agency_id = batch.agency_id
    existing = _existing_ids(connection, agency_id, [item.external_id for item in batch.valid])
    fresh: list[_Valid] = []
    duplicates = list(batch.repeated)
    for item in batch.valid:
        (duplicates if item.external_id in existing else fresh).append(item)

    vault = context.vault
    phone_hashes = {item.phone: vault.phone_hash(item.phone) for item in fresh if item.plan}
    opted_out, last_contact = _contact_history(connection, phone_hashes.values(), now, fresh)

    # Decisions for all fresh records with a plan, grouped by plan (usually one).
    decisions: dict[int, Any] = {}
    by_plan: dict[int, tuple[PlanSpec, list[_Valid]]] = {}
    for item in fresh:
        if item.plan is not None:
            by_plan.setdefault(item.plan.plan_id, (item.plan, []))[1].append(item)
    key = context.sampling_key
    agency_code = batch.agency_code
    for plan, items in by_plan.values():
        units = [
            Unit(agency_code, item.external_id, item.service_code, item.channel, item.province)
            for item in items
        ]
        for item, decision in zip(items, decide_many(key, plan, units), strict=True):
            decisions[item.index] = decision

    counts: dict[tuple[int, date, int, str, str], list[Any]] = {}
    transaction_rows: list[dict[str, Any]] = []
    sampled_rows: dict[str, dict[str, Any]] = {}
    no_plan: set[int] = set()
    for item in fresh:
        plan = item.plan
        outcome = "no_plan"
        stratum = ""
        if plan is None:
            no_plan.add(item.index)
        else:
            decision = decisions[item.index]
            stratum = decision.stratum
            cell = counts.get(
                (plan.plan_id, item.day, item.service_id, item.channel, item.province)
            )
            if cell is None:
                cell = counts[
                    (plan.plan_id, item.day, item.service_id, item.channel, item.province)
                ] = [stratum, 0, 0, 0, 0, 0]
            cell[1] += 1
            phone_hash = phone_hashes[item.phone]
            previous = last_contact.get(phone_hash)
            if phone_hash in opted_out or (
                plan.contact_rule_days > 0
                and previous is not None
                and previous > now - timedelta(days=plan.contact_rule_days)
            ):
                outcome = "ineligible"
                cell[4] += 1
            else:
                cell[3] += 1
                if decision.sampled:
                    outcome = "sampled"
                    cell[5] += 1
                    last_contact[phone_hash] = now
                    questionnaire = plan.questionnaire_for(item.service_code, item.channel)
                    sampled_rows[item.external_id] = {
                        "plan_id": plan.plan_id,
                        "agency_id": agency_id,
                        "service_id": item.service_id,
                        "channel": item.channel,
                        "province_code": item.province,
                        "stratum": stratum,
                        "day": item.day,
                        "inclusion_probability": decision.inclusion_probability,
                        "phone_ciphertext": vault.encrypt(item.phone),
                        "phone_key_id": vault.key_id,
                        "phone_hash": phone_hash,
                        "language": item.language,
                        "questionnaire_qid": questionnaire.questionnaire if questionnaire else None,
                        "mode": questionnaire.mode if questionnaire else None,
                        "status": "pending",
                        "created_at": now,
                    }
                else:
                    outcome = "not_sampled"
        transaction_rows.append(
            {
                "agency_id": agency_id,
                "external_id": item.external_id,
                "service_id": item.service_id,
                "channel": item.channel,
                "completed_at": item.completed_at,
                "received_at": now,
                "province_code": item.province or None,
                "office": item.office,
                "language": item.language,
                "plan_id": plan.plan_id if plan is not None else None,
                "stratum": stratum,
                "outcome": outcome,
            }
        )
    for item in duplicates:
        if item.plan is None:
            continue
        plan = item.plan
        cell_key = (plan.plan_id, item.day, item.service_id, item.channel, item.province)
        cell = counts.get(cell_key)
        if cell is None:
            unit = Unit(
                agency_code, item.external_id, item.service_code, item.channel, item.province
            )
            cell = counts[cell_key] = [plan.stratum_key(unit), 0, 0, 0, 0, 0]
        cell[2] += 1

    statements = _statements(connection.dialect.name)
    if transaction_rows:
        inserted = connection.execute(statements.transactions, transaction_rows).all()
        if len(inserted) != len(transaction_rows):
            raise _Race
        ids = {external_id: row_id for row_id, external_id in inserted}
        if sampled_rows:
            unit_rows = []
            for external_id, row in sampled_rows.items():
                row["transaction_id"] = ids[external_id]
                unit_rows.append(row)
            units = connection.execute(statements.sampled_units, unit_rows).all()
            hash_of = {row["transaction_id"]: row["phone_hash"] for row in unit_rows}
            connection.execute(
                statements.contacts,
                [
                    {
                        "phone_hash": hash_of[transaction_id],
                        "contacted_at": now,
                        "sampled_unit_id": unit_id,
                    }
                    for unit_id, transaction_id in units
                ],
            )
    if counts:
        connection.execute(
            statements.frame_counts,
            [
                {
                    "plan_id": plan_id,
                    "day": day,
                    "service_id": service_id,
                    "channel": channel,
                    "province_code": province,
                    "stratum": cell[0],
                    "agency_id": agency_id,
                    "reported": cell[1],
                    "duplicates": cell[2],
                    "eligible": cell[3],
                    "ineligible": cell[4],
                    "sampled": cell[5],
                }
                for (plan_id, day, service_id, channel, province), cell in counts.items()
            ],
        )

    statuses: list[RecordStatus] = []
    status_of: dict[int, RecordStatus] = dict(batch.rejected)
    for item in fresh:
        note = _NOTE_NO_PLAN.format(day=item.day.isoformat()) if item.index in no_plan else None
        status_of[item.index] = RecordStatus(item.index, item.external_id, "accepted", (), note)
    for item in duplicates:
        status_of[item.index] = RecordStatus(item.index, item.external_id, "duplicate")
    statuses = [status_of[index] for index in range(batch.size)]
    return IngestResult(
        received=batch.size,
        accepted=len(fresh),
        duplicates=len(duplicates),
        rejected=len(batch.rejected),
        no_plan=len(no_plan),
        statuses=statuses,
    )


def _existing_ids(connection: Connection, agency_id: int, external_ids: list[str]) -> set[str]:
    found: set[str] = set()
    table = ServiceTransaction.__table__  # type: ignore[attr-defined]
    query = sa.select(table.c.external_id).where(
        table.c.agency_id == agency_id,
        table.c.external_id.in_(sa.bindparam("ids", expanding=True)),
    )
    for start in range(0, len(external_ids), _LOOKUP_CHUNK):
        chunk = external_ids[start : start + _LOOKUP_CHUNK]
        found.update(connection.execute(query, {"ids": chunk}).scalars())
    return found


def _contact_history(
    connection: Connection, hashes: Any, now: datetime, fresh: list[_Valid]
) -> tuple[set[str], dict[str, datetime]]:
    """Opted-out phones and each phone's latest contact within the longest rule window."""
    wanted = list(set(hashes))
    if not wanted:
        return set(), {}
    longest = max((item.plan.contact_rule_days for item in fresh if item.plan), default=0)
    opt_out = OptOut.__table__  # type: ignore[attr-defined]
    contact = Contact.__table__  # type: ignore[attr-defined]
    opted_out: set[str] = set()
    last_contact: dict[str, datetime] = {}
    opt_query = sa.select(opt_out.c.phone_hash).where(
        opt_out.c.active.is_(True), opt_out.c.phone_hash.in_(sa.bindparam("hashes", expanding=True))
    )
    contact_query = (
        sa.select(contact.c.phone_hash, sa.func.max(contact.c.contacted_at))
        .where(
            contact.c.phone_hash.in_(sa.bindparam("hashes", expanding=True)),
            contact.c.contacted_at > sa.bindparam("since", type_=contact.c.contacted_at.type),
        )
        .group_by(contact.c.phone_hash)
    )
    since = now - timedelta(days=max(longest, 0))
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        chunk = wanted[start : start + _LOOKUP_CHUNK]
        opted_out.update(connection.execute(opt_query, {"hashes": chunk}).scalars())
        if longest > 0:
            for phone_hash, latest in connection.execute(
                contact_query, {"hashes": chunk, "since": since}
            ):
                last_contact[phone_hash] = latest
    return opted_out, last_contact


@dataclass(frozen=True, slots=True)
class _Statements:
    transactions: Any
    sampled_units: Any
    contacts: Any
    frame_counts: Any


_STATEMENTS: dict[str, _Statements] = {}


def _statements(dialect: str) -> _Statements:
    """The batch's write statements for this dialect (built once)."""
    cached = _STATEMENTS.get(dialect)
    if cached is not None:
        return cached
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    transactions = ServiceTransaction.__table__  # type: ignore[attr-defined]
    units = SampledUnit.__table__  # type: ignore[attr-defined]
    frames = FrameCount.__table__  # type: ignore[attr-defined]
    upsert = insert(frames)
    counters = ("reported", "duplicates", "eligible", "ineligible", "sampled")
    statements = _Statements(
        transactions=insert(transactions)
        .on_conflict_do_nothing(index_elements=["agency_id", "external_id"])
        .returning(transactions.c.id, transactions.c.external_id),
        sampled_units=insert(units).returning(units.c.id, units.c.transaction_id),
        contacts=sa.insert(Contact.__table__),  # type: ignore[attr-defined]
        frame_counts=upsert.on_conflict_do_update(
            index_elements=["plan_id", "day", "service_id", "channel", "province_code"],
            set_={name: frames.c[name] + upsert.excluded[name] for name in counters},
        ),
    )
    _STATEMENTS[dialect] = statements
    return statements


# -- reference data (agencies, services, provinces, plans), cached per engine ------------------


@dataclass(frozen=True, slots=True)
class _Reference:
    stamp: tuple[Any, ...]
    agencies: dict[str, int]
    services: dict[str, tuple[int, int]]  # code -> (service id, agency id)
    provinces: frozenset[str]
    plans: tuple[PlanSpec, ...]
    loaded_at: float


def _stamp(connection: Connection) -> tuple[Any, ...]:
    """A cheap fingerprint of the reference tables: rows are only ever added to them."""
    agency = Agency.__table__  # type: ignore[attr-defined]
    service = Service.__table__  # type: ignore[attr-defined]
    plan = SamplingPlan.__table__  # type: ignore[attr-defined]
    parts = []
    for table in (agency, service, plan):
        parts.append(sa.select(sa.func.count()).select_from(table).scalar_subquery())
        parts.append(sa.select(sa.func.max(table.c.id)).scalar_subquery())
    row = connection.execute(sa.select(*parts)).one()
    return tuple(row)


def _load_reference(connection: Connection) -> _Reference:
    agency = Agency.__table__  # type: ignore[attr-defined]
    service = Service.__table__  # type: ignore[attr-defined]
    province = Province.__table__  # type: ignore[attr-defined]
    stamp = _stamp(connection)
    agencies = {
        code: agency_id
        for agency_id, code in connection.execute(sa.select(agency.c.id, agency.c.code))
    }
    services = {
        code: (service_id, agency_id)
        for service_id, code, agency_id in connection.execute(
            sa.select(service.c.id, service.c.code, service.c.agency_id)
        )
    }
    provinces = frozenset(connection.execute(sa.select(province.c.code)).scalars())
    plan_table = SamplingPlan.__table__  # type: ignore[attr-defined]
    plans = tuple(
        PlanSpec.from_row(row)  # type: ignore[arg-type]
        for row in connection.execute(sa.select(plan_table))
    )
    return _Reference(stamp, agencies, services, provinces, plans, time.monotonic())


@dataclass
class _EngineState:
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    cached: _Reference | None = None
    guard: threading.Lock = field(default_factory=threading.Lock)

    def reference(self, source: Engine | Connection, *, force: bool = False) -> _Reference:
        cached = self.cached
        if (
            not force
            and cached is not None
            and time.monotonic() - cached.loaded_at < REFERENCE_TTL_SECONDS
        ):
            return cached
        if isinstance(source, Engine):
            with source.execution_options(read_only=True).connect() as connection:
                loaded = _load_reference(connection)
                connection.rollback()
        else:
            loaded = _load_reference(source)
        with self.guard:
            self.cached = loaded
        return loaded


_STATES: weakref.WeakKeyDictionary[Engine, _EngineState] = weakref.WeakKeyDictionary()
_STATES_GUARD = threading.Lock()


def _state_for(engine: Engine) -> _EngineState:
    with _STATES_GUARD:
        state = _STATES.get(engine)
        if state is None:
            state = _STATES[engine] = _EngineState()
        return state
