"""The ingestion service called directly: contact rule, opt-outs, plans in force, resends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from survey.context import AppContext
from survey.errors import NotFound
from survey.ingestion.ingest import IngestResult, ingest_requests, ingest_transactions
from survey.kernel.db import transaction
from survey.kernel.principal import CLI_PRINCIPAL
from survey.models import OptOut
from survey.registry.agencies import add_service
from survey.sampling.draw import PlanSpec, Unit, decide
from tests.conftest import FixedClock
from tests.survey.builders import add_agency, add_plan, transaction_record


@pytest.fixture
def tax(context: AppContext):
    agency = add_agency(context, "TAX", ("TAX-01", "TAX-02"))
    add_plan(context)
    return agency


def _rows(context: AppContext, sql: str) -> list[tuple]:
    with context.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(sql))]


def _frame(context: AppContext) -> tuple[int, ...]:
    return _rows(
        context,
        "SELECT sum(reported), sum(duplicates), sum(eligible), sum(ineligible), "
        "sum(sampled) FROM frame_count",
    )[0]


def test_an_unknown_agency_is_refused(context: AppContext, tax) -> None:
    with pytest.raises(NotFound, match="agency 'NOPE' is not registered"):
        ingest_transactions(context, "NOPE", [transaction_record(1)])


def test_a_phone_is_invited_at_most_once_within_the_contact_rule(
    context: AppContext, clock: FixedClock, tax
) -> None:
    # TAX-01 in person has rate 1.0: every eligible transaction is sampled.
    same_phone = "0912 000 1111"
    first = [transaction_record(n, phone=same_phone) for n in range(3)]
    result = ingest_transactions(context, "TAX", first)
    assert result.accepted == 3
    assert _frame(context) == (3, 0, 1, 2, 1)  # the 2nd and 3rd were contacted earlier in the batch

    # A later batch within 90 days: the contact table makes it ineligible.
    clock.now += timedelta(days=89)
    ingest_transactions(
        context,
        "TAX",
        [transaction_record(10, phone=same_phone, completed_at="2026-06-07T10:00:00+03:30")],
    )
    assert _frame(context)[3:] == (3, 1)
    # After 90 days the phone may be invited again.
    clock.now += timedelta(days=2)
    ingest_transactions(
        context,
        "TAX",
        [transaction_record(11, phone=same_phone, completed_at="2026-06-09T10:00:00+03:30")],
    )
    assert _frame(context)[3:] == (3, 2)
    assert _rows(context, "SELECT count(*) FROM contact") == [(2,)]
    outcomes = _rows(context, "SELECT external_id, outcome FROM service_transaction ORDER BY id")
    assert [o for _, o in outcomes] == [
        "sampled",
        "ineligible",
        "ineligible",
        "ineligible",
        "sampled",
    ]


def test_an_opted_out_phone_is_never_sampled(context: AppContext, tax) -> None:
    with transaction(context.sessions) as session:
        session.add(OptOut(phone_hash=context.vault.phone_hash("+989120002222"), source="sms"))
        session.add(OptOut(phone_hash=context.vault.phone_hash("+989120003333"), active=False))
    result = ingest_transactions(
        context,
        "TAX",
        [
            transaction_record(1, phone="09120002222"),
            transaction_record(2, phone="09120003333"),  # opted back in
        ],
    )
    assert result.accepted == 2
    assert _frame(context) == (2, 0, 1, 1, 1)


def test_without_a_plan_in_force_transactions_are_counted_never_sampled(
    context: AppContext, clock: FixedClock
) -> None:
    add_agency(context, "TAX", ("TAX-01",))
    add_plan(context, starts=date(2026, 4, 1))
    clock.now = datetime(2026, 4, 5, tzinfo=UTC)
    result = ingest_transactions(
        context,
        "TAX",
        [
            transaction_record(1),  # 2026-03-10: before the plan starts
            transaction_record(2, completed_at="2026-03-31T23:59:00+03:30"),
        ],
    )
    assert (result.accepted, result.no_plan) == (2, 2)
    assert result.statuses[0].note == (
        "no sampling plan is in force on 2026-03-10; recorded and counted, never surveyed"
    )
    assert _rows(context, "SELECT outcome, plan_id FROM service_transaction") == [
        ("no_plan", None),
        ("no_plan", None),
    ]
    assert _rows(context, "SELECT count(*) FROM sampled_unit") == [(0,)]


def test_the_tehran_date_chooses_the_plan(context: AppContext, clock: FixedClock) -> None:
    add_agency(context, "TAX", ("TAX-01", "TAX-02"))
    add_plan(context, version=1)
    add_plan(context, version=2, starts=date(2026, 3, 11), default_rate=0.0, rates=[])
    clock.now = datetime(2026, 3, 11, 6, tzinfo=UTC)
    # 20:45 UTC on the 10th is 00:15 on the 11th in Tehran: plan 2 (rate 0) applies.
    ingest_transactions(
        context,
        "TAX",
        [
            transaction_record(1, completed_at="2026-03-10T20:45:00Z"),
            transaction_record(2, completed_at="2026-03-10T20:00:00Z"),
        ],
    )
    rows = _rows(
        context,
        "SELECT p.version, f.day, f.reported, f.sampled FROM frame_count f "
        "JOIN sampling_plan p ON p.id = f.plan_id ORDER BY p.version",
    )
    assert [(r[0], str(r[1]), r[2], r[3]) for r in rows] == [
        (1, "2026-03-10", 1, 1),
        (2, "2026-03-11", 1, 0),
    ]


def test_stored_decisions_are_the_pure_functions_and_survive_a_resend(
    context: AppContext, tax
) -> None:
    records = [transaction_record(n, service="TAX-02", channel="online") for n in range(400)]
    ingest_transactions(context, "TAX", records)
    resend = ingest_transactions(context, "TAX", records)
    assert (resend.accepted, resend.duplicates) == (0, 400)
    from survey.models import SamplingPlan

    with context.sessions() as session:
        plan = PlanSpec.from_row(session.scalars(sa.select(SamplingPlan)).one())
    expected = {
        f"tx-{n}"
        for n in range(400)
        if decide(context.sampling_key, plan, Unit("TAX", f"tx-{n}", "TAX-02", "online")).sampled
    }
    stored = {
        r[0]
        for r in _rows(
            context,
            "SELECT t.external_id FROM sampled_unit u "
            "JOIN service_transaction t ON t.id = u.transaction_id",
        )
    }
    assert stored == expected
    assert 150 < len(stored) < 250
    assert _frame(context) == (400, 400, 400, 0, len(stored))


def test_transactions_not_sampled_keep_no_phone(context: AppContext, tax) -> None:
    ingest_transactions(
        context,
        "TAX",
        [transaction_record(n, service="TAX-02", channel="online") for n in range(100)],
    )
    with context.engine.connect() as connection:
        columns = [c["name"] for c in sa.inspect(connection).get_columns("service_transaction")]
    assert not [c for c in columns if "phone" in c]
    sampled = _rows(context, "SELECT count(*) FROM sampled_unit")[0][0]
    assert _rows(context, "SELECT count(*) FROM contact")[0][0] == sampled
    assert _frame(context)[4] == sampled


def test_requests_committed_together_get_the_results_they_would_get_alone(
    context: AppContext, tax
) -> None:
    add_agency(context, "SSO", ("SSO-01",))
    outcomes = ingest_requests(
        context,
        [
            ("TAX", [transaction_record(1), transaction_record(2)]),
            ("NOPE", [transaction_record(3)]),
            ("SSO", [transaction_record(1, service="SSO-01")]),
            (
                "TAX",
                [transaction_record(2), transaction_record(4, phone="12"), transaction_record(5)],
            ),
        ],
    )
    assert isinstance(outcomes[1], NotFound)
    first, _, sso, last = outcomes
    assert isinstance(first, IngestResult)
    assert isinstance(sso, IngestResult)
    assert isinstance(last, IngestResult)
    assert [(s.index, s.external_id, s.status) for s in first.statuses] == [
        (0, "tx-1", "accepted"),
        (1, "tx-2", "accepted"),
    ]
    assert (sso.accepted, sso.duplicates) == (1, 0)
    assert [(s.index, s.status) for s in last.statuses] == [
        (0, "duplicate"),
        (1, "rejected"),
        (2, "accepted"),
    ]
    assert (last.received, last.accepted, last.duplicates, last.rejected) == (3, 1, 1, 1)
    assert _frame(context)[:2] == (4, 1)


def test_rows_written_by_ingestion_read_back_through_the_models(context: AppContext, tax) -> None:
    from survey.models import Contact, SampledUnit, ServiceTransaction

    ingest_transactions(context, "TAX", [transaction_record(1, province="fars", office="Shiraz")])
    with context.sessions() as session:
        stored = session.scalars(sa.select(ServiceTransaction)).one()
        unit = session.scalars(sa.select(SampledUnit)).one()
        contact = session.scalars(sa.select(Contact)).one()
    assert stored.completed_at == datetime(2026, 3, 10, 7, 45, tzinfo=UTC)
    assert stored.received_at == context.clock()
    assert (stored.province_code, stored.office, stored.outcome) == ("fars", "Shiraz", "sampled")
    assert unit.day == date(2026, 3, 10)
    assert unit.created_at == context.clock()
    assert unit.transaction_id == stored.id
    assert (contact.sampled_unit_id, contact.contacted_at) == (unit.id, context.clock())


def test_a_service_registered_after_the_cache_was_loaded_counts_at_once(
    context: AppContext,
    tax,
) -> None:
    first = ingest_transactions(context, "TAX", [transaction_record(1)])
    assert first.accepted == 1  # the reference data (services, plans) is now cached
    with transaction(context.sessions) as session:
        add_service(
            session, CLI_PRINCIPAL, agency="TAX", code="TAX-09", name_fa="خدمت", name_en="New"
        )
    result = ingest_transactions(context, "TAX", [transaction_record(2, service="TAX-09")])
    assert (result.accepted, result.rejected) == (1, 0), result.statuses
    assert _rows(context, "SELECT count(*) FROM service_transaction") == [(2,)]
