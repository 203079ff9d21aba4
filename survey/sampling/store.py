"""Sampling's SQL: the plan versions and the registry codes a plan file is checked against.

`plans` keeps the plan file's format, validation and activation; every statement it needs is
here, one small function each, so that what the domain asks of the database can be read (and
indexed) in one place. All of them are ORM reads on the caller's `Session`: plans are few and
short, so the statement compilation SQLAlchemy caches is no cost worth avoiding. Activation
adds its new `SamplingPlan` row on the caller's session (the unit of work), after
`highest_version`; the unique version catches a concurrent activation at the flush.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.models import Agency, Province, SamplingPlan, Service

__all__ = [
    "agency_codes",
    "highest_version",
    "plan_by_version",
    "plan_in_force",
    "plan_versions",
    "plans_newest_first",
    "province_codes",
    "service_codes",
    "service_owners",
    "services_with_agencies",
]


def highest_version(session: Session) -> int | None:
    """The highest plan version stored (None before the first plan)."""
    return session.scalar(sa.select(sa.func.max(col(SamplingPlan.version))))


def plan_in_force(session: Session, day: date) -> SamplingPlan | None:
    """The plan in force on `day`: latest `starts` on or before it, ties by highest version."""
    return session.scalar(
        sa.select(SamplingPlan)
        .where(col(SamplingPlan.starts) <= day)
        .order_by(col(SamplingPlan.starts).desc(), col(SamplingPlan.version).desc())
        .limit(1)
    )


def plans_newest_first(session: Session) -> list[SamplingPlan]:
    """Every plan version, highest first."""
    return list(session.scalars(sa.select(SamplingPlan).order_by(col(SamplingPlan.version).desc())))


def plan_by_version(session: Session, version: int) -> SamplingPlan | None:
    """One version (the caller keeps `version` within the column's range)."""
    return session.scalar(sa.select(SamplingPlan).where(col(SamplingPlan.version) == version))


def plan_versions(session: Session) -> list[int]:
    """The versions there are, lowest first."""
    return list(
        session.scalars(sa.select(col(SamplingPlan.version)).order_by(col(SamplingPlan.version)))
    )


def agency_codes(session: Session) -> set[str]:
    return set(session.scalars(sa.select(col(Agency.code))))


def service_codes(session: Session) -> set[str]:
    return set(session.scalars(sa.select(col(Service.code))))


def province_codes(session: Session) -> set[str]:
    return set(session.scalars(sa.select(col(Province.code))))


def service_owners(session: Session) -> dict[str, str]:
    """Each service's code -> its agency's code."""
    agency_of_service = sa.select(col(Service.code), col(Agency.code)).join(
        Agency, col(Agency.id) == col(Service.agency_id)
    )
    return {service: agency for service, agency in session.execute(agency_of_service)}


def services_with_agencies(
    session: Session, codes: Collection[str]
) -> dict[str, tuple[Service, Agency]]:
    """The services with these codes and their agencies (the names their SMS carry)."""
    rows = session.execute(
        sa.select(Service, Agency)
        .join(Agency, col(Agency.id) == col(Service.agency_id))
        .where(col(Service.code).in_(sorted(codes)))
    )
    return {service.code: (service, agency) for service, agency in rows}
