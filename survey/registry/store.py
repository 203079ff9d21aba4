"""The registry's SQL: agencies, their services and ingestion keys, provinces, and the
registered questionnaire versions.

The services (agencies, questionnaires) validate, decide, audit and hold the transaction; each
statement they run is one small function here, on the caller's `Session`, so the registry's
queries sit in one place. New rows are still added as ORM objects by the services (their
insert is the unit of work's flush). Registry tables are small and change rarely: these are
plain SQLAlchemy statements, no DBAPI fast path.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.kernel.db import rows_changed
from survey.models import Agency, ApiKey, Channel, Province, QuestionnaireVersion, Service

__all__ = [
    "active_key_counts",
    "agencies",
    "agency_by_code",
    "agency_by_id",
    "agency_codes",
    "code_names",
    "find_province",
    "find_questionnaire",
    "highest_questionnaire_version",
    "province_codes",
    "questionnaire_versions",
    "registered_questionnaire_ids",
    "revoke_agency_keys",
    "service_by_code",
    "service_counts",
    "services_with_agency",
]


# -- agencies --------------------------------------------------------------------------------


def agencies(session: Session, *, only: int | None = None) -> list[Agency]:
    """Every agency by code, or only the one with id `only`."""
    query = sa.select(Agency).order_by(col(Agency.code))
    if only is not None:
        query = query.where(col(Agency.id) == only)
    return list(session.scalars(query))


def agency_codes(session: Session) -> dict[int | None, str]:
    """Every agency's code by its id."""
    return {
        agency_id: code
        for agency_id, code in session.execute(sa.select(col(Agency.id), col(Agency.code)))
    }


def agency_by_code(session: Session, code: str) -> Agency | None:
    return session.scalar(sa.select(Agency).where(col(Agency.code) == code))


def agency_by_id(session: Session, agency_id: int | None) -> Agency | None:
    return session.get(Agency, agency_id)


def active_key_counts(session: Session) -> dict[int | None, int]:
    """How many unrevoked ingestion keys each agency has (agencies without one are absent)."""
    return {
        agency_id: count
        for agency_id, count in session.execute(
            sa.select(col(ApiKey.agency_id), sa.func.count())
            .where(col(ApiKey.agency_id).is_not(None), col(ApiKey.revoked_at).is_(None))
            .group_by(col(ApiKey.agency_id))
        )
    }


def revoke_agency_keys(session: Session, agency_id: int | None, *, at: datetime) -> int:
    """Mark the agency's unrevoked keys revoked at `at`; how many there were."""
    result = session.execute(
        sa.update(ApiKey)
        .where(col(ApiKey.agency_id) == agency_id, col(ApiKey.revoked_at).is_(None))
        .values(revoked_at=at)
    )
    return rows_changed(result)


# -- services --------------------------------------------------------------------------------


def service_counts(session: Session) -> dict[int | None, int]:
    """How many services each agency has (agencies without one are absent)."""
    return {
        agency_id: count
        for agency_id, count in session.execute(
            sa.select(col(Service.agency_id), sa.func.count()).group_by(col(Service.agency_id))
        )
    }


def services_with_agency(
    session: Session, *, agency_id: int | None = None, only: int | None = None
) -> list[tuple[Service, str]]:
    """Services by code with their agency's code: all, or those of agency `agency_id`, and
    (when `only` is given) only those of agency `only`."""
    query = (
        sa.select(Service, col(Agency.code))
        .join(Agency, col(Agency.id) == col(Service.agency_id))
        .order_by(col(Service.code))
    )
    if agency_id is not None:
        query = query.where(col(Agency.id) == agency_id)
    if only is not None:
        query = query.where(col(Service.agency_id) == only)
    return [(service, code) for service, code in session.execute(query).all()]


def service_by_code(session: Session, code: str) -> Service | None:
    return session.scalar(sa.select(Service).where(col(Service.code) == code))


# -- provinces -------------------------------------------------------------------------------


def find_province(session: Session, code: str) -> Province | None:
    return session.get(Province, code)


def province_codes(session: Session) -> list[str]:
    return list(session.scalars(sa.select(col(Province.code)).order_by(col(Province.code))))


# -- questionnaires --------------------------------------------------------------------------


def find_questionnaire(
    session: Session, qid: str, version: int | None = None
) -> QuestionnaireVersion | None:
    """The registered version (the highest one when `version` is None), or None."""
    query = sa.select(QuestionnaireVersion).where(col(QuestionnaireVersion.qid) == qid)
    if version is not None:
        query = query.where(col(QuestionnaireVersion.version) == version)
    return session.scalar(query.order_by(col(QuestionnaireVersion.version).desc()).limit(1))


def registered_questionnaire_ids(session: Session) -> list[tuple[str, int]]:
    """(qid, version) of every registered questionnaire version, in no particular order."""
    return [
        (qid, version)
        for qid, version in session.execute(
            sa.select(col(QuestionnaireVersion.qid), col(QuestionnaireVersion.version))
        ).all()
    ]


def questionnaire_versions(session: Session) -> Sequence[QuestionnaireVersion]:
    """Every registered questionnaire version, by qid and version."""
    return session.scalars(
        sa.select(QuestionnaireVersion).order_by(
            col(QuestionnaireVersion.qid), col(QuestionnaireVersion.version)
        )
    ).all()


def highest_questionnaire_version(session: Session, qid: str) -> int | None:
    """The highest registered version of `qid`, or None when none is."""
    highest = session.scalar(
        sa.select(sa.func.max(col(QuestionnaireVersion.version))).where(
            col(QuestionnaireVersion.qid) == qid
        )
    )
    return int(highest) if highest is not None else None


# -- names -----------------------------------------------------------------------------------


def code_names(
    session: Session, table: type[Agency] | type[Service] | type[Province] | type[Channel]
) -> dict[str, dict[str, str]]:
    """Every code of the table with its Persian and English names."""
    query = sa.select(col(table.code), col(table.name_fa), col(table.name_en))
    return {str(code): {"fa": str(fa), "en": str(en)} for code, fa, en in session.execute(query)}
