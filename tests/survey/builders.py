"""Test data for ingestion: agencies with services and keys, staff keys, sampling plans.

Rows are inserted directly (the registry's own services are tested on their own); keys are
real keys from `survey.kernel.credentials`, so requests authenticate through the real guards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from survey.context import AppContext
from survey.kernel.credentials import display_prefix, key_hash, new_key
from survey.kernel.db import transaction
from survey.models import Agency, ApiKey, AppUser, SamplingPlan, Service


@dataclass(frozen=True)
class AgencyFixture:
    id: int
    code: str
    key: str
    services: tuple[str, ...]


def add_agency(
    context: AppContext, code: str, services: tuple[str, ...] = (), province: str | None = None
) -> AgencyFixture:
    """An agency with its services and an ingestion key (returned in clear, stored hashed)."""
    key = new_key("agency")
    with transaction(context.sessions) as session:
        agency = Agency(
            code=code, name_fa=f"سازمان {code}", name_en=f"Agency {code}", province_code=province
        )
        session.add(agency)
        session.flush()
        assert agency.id is not None
        for service in services:
            session.add(
                Service(
                    code=service,
                    agency_id=agency.id,
                    name_fa=f"خدمت {service}",
                    name_en=f"Service {service}",
                )
            )
        session.add(
            ApiKey(
                key_hash=key_hash(key),
                prefix=display_prefix(key),
                agency_id=agency.id,
                label="test",
            )
        )
        agency_id = agency.id
    return AgencyFixture(agency_id, code, key, services)


def add_staff(context: AppContext, username: str, role: str, agency_id: int | None = None) -> str:
    """A staff member with an API token; returns the token."""
    key = new_key("staff")
    with transaction(context.sessions) as session:
        user = AppUser(username=username, role=role, agency_id=agency_id)
        session.add(user)
        session.flush()
        session.add(
            ApiKey(
                key_hash=key_hash(key), prefix=display_prefix(key), user_id=user.id, label="test"
            )
        )
    return key


def add_plan(context: AppContext, version: int = 1, **overrides: Any) -> int:
    """A stored sampling plan (the issue's example by default); returns its id."""
    values: dict[str, Any] = {
        "version": version,
        "name": "example",
        "starts": date(2026, 1, 1),
        "seed": f"{version:02x}" * 16,
        "strata": ["agency", "service", "channel"],
        "default_rate": 0.5,
        "rates": [{"service": "TAX-01", "channel": "in_person", "rate": 1.0}],
        "contact_rule_days": 90,
        "quiet_hours": None,
        "reminder_after_hours": 48,
        "expires_after_days": 7,
        "questionnaires": [
            {"service": "TAX-01", "questionnaire": "core-transaction", "mode": "sms_link"},
            {"service": "TAX-02", "questionnaire": "sms-short", "mode": "sms_dialog"},
        ],
        "source": "built by tests",
    }
    values.update(overrides)
    with transaction(context.sessions) as session:
        plan = SamplingPlan(**values)
        session.add(plan)
        session.flush()
        assert plan.id is not None
        return plan.id


def phone(n: int) -> str:
    """The n-th distinct valid mobile number, in its usual national form."""
    return f"0912{n % 10_000_000:07d}"


def transaction_record(n: int, service: str = "TAX-01", **overrides: Any) -> dict[str, Any]:
    """A valid transaction as an agency would post it."""
    record: dict[str, Any] = {
        "external_id": f"tx-{n}",
        "service": service,
        "channel": "in_person",
        "completed_at": "2026-03-10T11:15:00+03:30",
        "phone": phone(n),
    }
    record.update(overrides)
    return record


@dataclass(frozen=True)
class IngestionTotals:
    """What ingestion left in the database, for tests that check it stayed exact."""

    reported: int
    duplicates: int
    eligible: int
    ineligible: int
    sampled: int
    stored: int  # service_transaction rows
    units: int  # sampled_unit rows
    sampled_outcomes: int  # service_transaction rows with outcome 'sampled'
    phones_invited_twice: int  # phone hashes with more than one sampled unit


def ingestion_totals(context: AppContext) -> IngestionTotals:
    with context.engine.connect() as connection:
        frame = connection.execute(
            sa.text(
                "SELECT sum(reported), sum(duplicates), sum(eligible), sum(ineligible), "
                "sum(sampled) FROM frame_count"
            )
        ).one()

        def count(sql: str) -> int:
            return int(connection.execute(sa.text(sql)).scalar_one())

        return IngestionTotals(
            *(int(value or 0) for value in frame),
            stored=count("SELECT count(*) FROM service_transaction"),
            units=count("SELECT count(*) FROM sampled_unit"),
            sampled_outcomes=count(
                "SELECT count(*) FROM service_transaction WHERE outcome = 'sampled'"
            ),
            phones_invited_twice=count(
                "SELECT count(*) FROM (SELECT phone_hash FROM sampled_unit "
                "GROUP BY phone_hash HAVING count(*) > 1) AS twice"
            ),
        )
