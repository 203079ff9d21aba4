"""Transaction ingestion: validate, de-duplicate, apply the contact rule, sample, count.

`ingest_transactions(context, agency_code, records)` takes one batch of decoded JSON values (the
HTTP API and the CSV import both call it) and handles it in ONE database transaction:

1. Each record is validated on its own; a bad record is rejected with reasons naming its fields
   and the valid records of the batch are kept. `completed_at` must be ISO 8601 Gregorian with
   an offset and plausible (survey.kernel.timestamps): a Solar Hijri time, one before 2000, in
   the future or older than SURVEY_MAX_RECORD_AGE_DAYS rejects its record only.
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

What the frame counts count: `reported` = new valid transactions, `duplicates` = resends (in the
cell of the resent record), `eligible` + `ineligible` = `reported`, `sampled` <= `eligible`.
Rejected records are not counted anywhere but in the response. Transactions without a plan in
force are stored (outcome `no_plan`) but have no frame cell, since a cell belongs to a plan.

`ingest_requests(context, [(agency_code, records), ...])` stores several requests in one
transaction, each getting the result it would have got alone (the web layer's group commit).

Writers are serialised (see survey.ingestion.store, which holds the SQL), so the duplicate
look-up and the contact rule see every earlier batch. Agencies, services, provinces and plans
are cached per engine; every batch checks a fingerprint of those tables inside its transaction
and validates again if they changed, so a newly registered service or newly applied plan counts
from the next batch on (the cache is also reloaded every 30 s, for rows changed in place).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from survey.context import AppContext
from survey.errors import NotFound
from survey.ingestion.store import BatchStore, Reference, store_for
from survey.kernel.locale import LANGUAGES
from survey.kernel.phones import check_mobile, describe
from survey.kernel.timestamps import TimestampError, TimestampReader
from survey.models import CHANNELS
from survey.sampling.draw import Decision, PlanSpec, Unit, decide_many, plan_in_force

__all__ = [
    "FIELDS",
    "IngestResult",
    "RecordStatus",
    "ingest_requests",
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
MAX_EXTERNAL_ID = 120
MAX_OFFICE = 120
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
    outcome = ingest_requests(context, [(agency_code, records)])[0]
    if isinstance(outcome, NotFound):
        raise outcome
    return outcome


def ingest_requests(
    context: AppContext, requests: Sequence[tuple[str, Sequence[Any]]]
) -> list[IngestResult | NotFound]:
    """Ingest several requests (agency code, records) in ONE database transaction.

    The result for each request is exactly what `ingest_transactions` would have returned had
    the requests been sent one after another in this order; a request from an unknown agency
    gets `NotFound` in its place. The web layer uses this to commit concurrent small requests
    together (group commit): one write transaction instead of one per request.
    """
    store = store_for(context.engine)
    now = context.clock()
    reference = store.reference()
    if any(code not in reference.agencies for code, _ in requests):
        reference = store.reference(force=True)
    zone = ZoneInfo(context.settings.timezone)
    # Requests of the same agency are joined into one batch and split again afterwards.
    groups: dict[str, list[int]] = {}
    outcomes: list[IngestResult | NotFound | None] = [None] * len(requests)
    for position, (code, _) in enumerate(requests):
        if code in reference.agencies:
            groups.setdefault(code, []).append(position)
        else:
            outcomes[position] = NotFound(f"agency {code!r} is not registered")
    for _attempt in range(3):
        batches = {
            code: _prepare(context, _validate(
                [record for p in positions for record in requests[p][1]],
                code, reference, now, zone, context,
            ))
            for code, positions in groups.items()
        }  # fmt: skip
        try:
            with store.transaction() as writing:
                if writing.stamp() != reference.stamp:
                    raise _Stale
                results = {
                    code: _store(context, batch, writing, now) for code, batch in batches.items()
                }
        except _Stale:
            reference = store.reference(force=True)
            continue
        except _Race:
            continue
        for code, positions in groups.items():
            start = 0
            for position in positions:
                size = len(requests[position][1])
                outcomes[position] = _slice(results[code], start, size)
                start += size
        return [outcome for outcome in outcomes if outcome is not None]
    raise RuntimeError("ingestion could not complete after 3 attempts (reference data changing)")


def _slice(result: IngestResult, start: int, size: int) -> IngestResult:
    """The part of a joined batch's result that belongs to one request, re-indexed from 0."""
    if start == 0 and size == result.received:
        return result
    statuses = [
        RecordStatus(s.index - start, s.external_id, s.status, s.problems, s.note)
        for s in result.statuses[start : start + size]
    ]
    kinds = Counter(s.status for s in statuses)
    return IngestResult(
        received=size,
        accepted=kinds["accepted"],
        duplicates=kinds["duplicate"],
        rejected=kinds["rejected"],
        no_plan=sum(1 for s in statuses if s.note is not None),
        statuses=statuses,
    )


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
    # Keyed hashes (no database needed), computed before the write lock is taken:
    phone_hashes: dict[str, str] = field(default_factory=dict)  # phone -> current hash
    lookup_hashes: list[str] = field(default_factory=list)  # and earlier keys' hashes
    decisions: dict[int, Decision] = field(default_factory=dict)  # by record index


# Control characters (NUL above all: PostgreSQL cannot store it in text) in an identifier are
# a sender's bug; refusing the record keeps the rest of its batch (SQLite and PostgreSQL alike).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _control_message(field: str) -> str:
    return f"{field} contains a control character (such as NUL, tab or a line break); remove it"


def _type_name(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _validate(
    records: Sequence[Any],
    agency_code: str,
    reference: Reference,
    now: datetime,
    zone: ZoneInfo,
    context: AppContext,
) -> _Batch:
    agency_id = reference.agencies[agency_code]
    services = reference.services
    provinces = reference.provinces
    plans = reference.plans
    times = TimestampReader(now, timedelta(days=context.settings.max_record_age_days))
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
            elif _CONTROL.search(external_id):
                problems.append(Problem("external_id", _control_message("external_id")))
        service_id = 0
        service_code: Any = record.get("service")  # any JSON value until validated
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
        channel: Any = record.get("channel")
        if type(channel) is str and channel not in _CHANNEL_SET:
            problems.append(
                Problem("channel", f"channel must be one of {_CHANNEL_LIST}; got {channel!r}")
            )
        completed_at = None
        raw_time = record.get("completed_at")
        if type(raw_time) is str:
            try:
                completed_at = times.read(raw_time)
            except TimestampError as exc:
                problems.append(Problem("completed_at", exc.message))
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
            elif _CONTROL.search(office):
                problems.append(Problem("office", _control_message("office")))
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
            service_code,
            channel,
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


# -- storing -----------------------------------------------------------------------------------


class _Stale(Exception):
    """Reference data (services, plans) changed since validation: validate again."""


class _Race(Exception):
    """A row expected to be new already existed (a writer outside the lock): redo the batch."""


_NOTE_NO_PLAN = "no sampling plan is in force on {day}; recorded and counted, never surveyed"


_Cells = dict[tuple[int, date, int, str, str], list[Any]]  # cell -> [stratum, 5 counters]


def _prepare(context: AppContext, batch: _Batch) -> _Batch:
    """The batch's phone hashes and sampling decisions: HMACs that need no database, so they
    are computed before the write lock (for every valid record; duplicates are few)."""
    batch.phone_hashes, batch.lookup_hashes = _phone_hashes(context, batch.valid)
    batch.decisions = _decisions(context.sampling_key, batch.agency_code, batch.valid)
    return batch


def _phone_hashes(context: AppContext, fresh: list[_Valid]) -> tuple[dict[str, str], list[str]]:
    """Each phone's current hash, and every hash to look up (earlier keys' too, after a key
    rotation, so opt-outs and contacts stored under an old key still count)."""
    phone_hash = context.vault.phone_hash
    current = {item.phone: phone_hash(item.phone) for item in fresh if item.plan}
    if not context.vault.previous:
        return current, list(set(current.values()))
    every = {h for phone in current for h in context.vault.phone_hashes(phone)}
    return current, list(every)


def _fold_old_hashes(
    context: AppContext,
    current: dict[str, str],
    opted_out: set[str],
    last_contact: dict[str, datetime],
) -> None:
    """Credit what was found under an earlier key's hash to the phone's current hash."""
    for phone, hashed in current.items():
        for old in context.vault.phone_hashes(phone)[1:]:
            if old in opted_out:
                opted_out.add(hashed)
            seen = last_contact.get(old)
            if seen is not None and (hashed not in last_contact or last_contact[hashed] < seen):
                last_contact[hashed] = seen


def _store(
    context: AppContext,
    batch: _Batch,
    store: BatchStore,
    now: datetime,
) -> IngestResult:
    """Classify the batch's valid records and write them: one statement per table."""
    existing = store.existing_ids(batch.agency_id, [item.external_id for item in batch.valid])
    fresh: list[_Valid] = []
    duplicates = list(batch.repeated)
    for item in batch.valid:
        (duplicates if item.external_id in existing else fresh).append(item)

    phone_hashes, lookup_hashes = batch.phone_hashes, batch.lookup_hashes
    longest = max((item.plan.contact_rule_days for item in fresh if item.plan), default=0)
    opted_out, last_contact = store.contact_history(
        lookup_hashes, now - timedelta(days=longest) if longest > 0 else None
    )
    if context.vault.previous:
        _fold_old_hashes(context, phone_hashes, opted_out, last_contact)
    decisions = batch.decisions

    cells: _Cells = {}
    transaction_rows: list[tuple[Any, ...]] = []
    sampled: list[tuple[_Valid, PlanSpec, Decision, str]] = []
    no_plan: set[int] = set()
    now_param = store.time(now)
    for item in fresh:
        plan = item.plan
        outcome = "no_plan"
        stratum = ""
        if plan is None:
            no_plan.add(item.index)
        else:
            decision = decisions[item.index]
            stratum = decision.stratum
            cell = _cell(cells, item, plan, stratum)
            cell[1] += 1
            hashed = phone_hashes[item.phone]
            previous = last_contact.get(hashed)
            if hashed in opted_out or (
                plan.contact_rule_days > 0
                and previous is not None
                and previous > now - timedelta(days=plan.contact_rule_days)
            ):
                outcome = "ineligible"
                cell[4] += 1
            else:
                cell[3] += 1
                outcome = "not_sampled"
                if decision.sampled:
                    outcome = "sampled"
                    cell[5] += 1
                    last_contact[hashed] = now
                    sampled.append((item, plan, decision, hashed))
        transaction_rows.append(
            (
                batch.agency_id,
                item.external_id,
                item.service_id,
                item.channel,
                store.time(item.completed_at),
                now_param,
                item.province or None,
                item.office,
                item.language,
                plan.plan_id if plan is not None else None,
                stratum,
                outcome,
            )
        )
    for item in duplicates:
        if item.plan is not None:
            unit = Unit(
                batch.agency_code, item.external_id, item.service_code, item.channel, item.province
            )
            _cell(cells, item, item.plan, item.plan.stratum_key(unit))[2] += 1

    if transaction_rows:
        inserted = store.insert_transactions(transaction_rows)
        if len(inserted) != len(transaction_rows):
            raise _Race
        if sampled:
            ids = {external_id: row_id for row_id, external_id in inserted}
            _write_sampled(store, context, batch.agency_id, ids, sampled, now_param)
    if cells:
        store.add_frame_counts(
            [
                (
                    plan_id,
                    store.day(day),
                    service_id,
                    channel,
                    province,
                    cell[0],
                    batch.agency_id,
                    *cell[1:],
                )
                for (plan_id, day, service_id, channel, province), cell in cells.items()
            ]
        )
    return _result(batch, fresh, duplicates, no_plan)


def _decisions(key: bytes, agency_code: str, fresh: list[_Valid]) -> dict[int, Decision]:
    """Sampling decisions for every record with a plan, by record index (plan by plan)."""
    decisions: dict[int, Decision] = {}
    by_plan: dict[int, tuple[PlanSpec, list[_Valid]]] = {}
    for item in fresh:
        if item.plan is not None:
            by_plan.setdefault(item.plan.plan_id, (item.plan, []))[1].append(item)
    for plan, items in by_plan.values():
        units = [
            Unit(agency_code, item.external_id, item.service_code, item.channel, item.province)
            for item in items
        ]
        for item, decision in zip(items, decide_many(key, plan, units), strict=True):
            decisions[item.index] = decision
    return decisions


def _cell(cells: _Cells, item: _Valid, plan: PlanSpec, stratum: str) -> list[Any]:
    key = (plan.plan_id, item.day, item.service_id, item.channel, item.province)
    cell = cells.get(key)
    if cell is None:
        cell = cells[key] = [stratum, 0, 0, 0, 0, 0]
    return cell


def _write_sampled(
    store: BatchStore,
    context: AppContext,
    agency_id: int,
    transaction_ids: dict[str, int],
    sampled: list[tuple[_Valid, PlanSpec, Decision, str]],
    now_param: Any,
) -> None:
    """The sampled units (phone encrypted, with its keyed hash) and their contact rows."""
    vault = context.vault
    key_id = vault.key_id
    unit_rows = []
    for item, plan, decision, hashed in sampled:
        questionnaire = plan.questionnaire_for(item.service_code, item.channel)
        unit_rows.append(
            (
                transaction_ids[item.external_id],
                plan.plan_id,
                agency_id,
                item.service_id,
                item.channel,
                item.province,
                decision.stratum,
                store.day(item.day),
                decision.inclusion_probability,
                vault.encrypt(item.phone),
                key_id,
                hashed,
                item.language,
                questionnaire.questionnaire if questionnaire else None,
                questionnaire.mode if questionnaire else None,
                "pending",
                now_param,
            )
        )
    units = store.insert_sampled_units(unit_rows)
    hash_of = {row[0]: row[11] for row in unit_rows}
    store.insert_contacts(
        [(hash_of[transaction_id], now_param, unit_id) for unit_id, transaction_id in units]
    )


def _result(
    batch: _Batch, fresh: list[_Valid], duplicates: list[_Valid], no_plan: set[int]
) -> IngestResult:
    status_of: dict[int, RecordStatus] = dict(batch.rejected)
    for item in fresh:
        note = _NOTE_NO_PLAN.format(day=item.day.isoformat()) if item.index in no_plan else None
        status_of[item.index] = RecordStatus(item.index, item.external_id, "accepted", (), note)
    for item in duplicates:
        status_of[item.index] = RecordStatus(item.index, item.external_id, "duplicate")
    return IngestResult(
        received=batch.size,
        accepted=len(fresh),
        duplicates=len(duplicates),
        rejected=len(batch.rejected),
        no_plan=len(no_plan),
        statuses=[status_of[index] for index in range(batch.size)],
    )
