"""The demo's SQL: the few reads the demo makes around the real services (what is seeded
already, which run this is, whom the round invited, which months have responses), the only
module of the domain that builds or runs a query.

Everything the demo writes goes through the real services (registry, plans, users, ingestion,
the dispatcher, the web and SMS endpoints, releases), so these functions only read, each one
statement on the caller's `Session`; the demo's modules open the sessions and transactions.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.models import (
    Agency,
    AppUser,
    AuditLog,
    Invitation,
    QuestionnaireVersion,
    Response,
    SampledUnit,
    SamplingPlan,
    Service,
)

__all__ = [
    "agency_codes",
    "audit_action_count",
    "citizen_rows",
    "completed_responses_by_day",
    "highest_invitation_id",
    "opted_out_since",
    "plan_version_with_source",
    "questionnaire_versions",
    "quiet_hours_in_force",
    "service_codes",
    "usernames",
]


# -- seeding -----------------------------------------------------------------------------------


def agency_codes(session: Session) -> set[str]:
    return set(session.scalars(sa.select(col(Agency.code))))


def service_codes(session: Session) -> set[str]:
    return set(session.scalars(sa.select(col(Service.code))))


def plan_version_with_source(session: Session, source: str) -> int | None:
    """The highest version of the plans applied from exactly this text, if any."""
    version: int | None = session.scalar(
        sa.select(sa.func.max(SamplingPlan.version)).where(col(SamplingPlan.source) == source)
    )
    return version


def usernames(session: Session) -> set[str]:
    return set(session.scalars(sa.select(col(AppUser.username))))


def audit_action_count(session: Session, action: str) -> int:
    """How many audit log entries record this action."""
    return int(
        session.scalar(
            sa.select(sa.func.count()).select_from(AuditLog).where(col(AuditLog.action) == action)
        )
        or 0
    )


# -- the survey round --------------------------------------------------------------------------


def quiet_hours_in_force(session: Session, day: date) -> list[str] | None:
    """The quiet hours of the plan in force on `day` (the latest start, then version)."""
    quiet: list[str] | None = session.scalar(
        sa.select(col(SamplingPlan.quiet_hours))
        .where(col(SamplingPlan.starts) <= day)
        .order_by(col(SamplingPlan.starts).desc(), col(SamplingPlan.version).desc())
        .limit(1)
    )
    return quiet


def highest_invitation_id(session: Session) -> int:
    """The highest invitation id so far (0 when there is none)."""
    return int(session.scalar(sa.select(sa.func.max(Invitation.id))) or 0)


def opted_out_since(session: Session, first_id: int) -> int:
    """How many invitations from id `first_id` on are opted out."""
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Invitation)
            .where(col(Invitation.id) >= first_id, col(Invitation.status) == "opted_out")
        )
        or 0
    )


def citizen_rows(
    session: Session, invitation_ids: list[int]
) -> Sequence[sa.Row[int | None, str, str, int, str, str]]:
    """For each of these invitations (by id): its id, mode, language, questionnaire version id,
    and its unit's channel and agency code (as `code`)."""
    return session.execute(
        sa.select(
            col(Invitation.id),
            col(Invitation.mode),
            col(Invitation.language),
            col(Invitation.questionnaire_version_id),
            col(SampledUnit.channel),
            col(Agency.code),
        )
        .join(SampledUnit, col(SampledUnit.id) == Invitation.sampled_unit_id)
        .join(Agency, col(Agency.id) == SampledUnit.agency_id)
        .where(col(Invitation.id).in_(invitation_ids))
        .order_by(col(Invitation.id))
    ).all()


def questionnaire_versions(session: Session, ids: Collection[int]) -> list[QuestionnaireVersion]:
    return list(
        session.scalars(
            sa.select(QuestionnaireVersion).where(col(QuestionnaireVersion.id).in_(ids))
        )
    )


# -- releases ----------------------------------------------------------------------------------


def completed_responses_by_day(session: Session) -> list[tuple[date, int]]:
    """Completed responses per transaction day of their sampled unit (days in no order)."""
    query = (
        sa.select(col(SampledUnit.day), sa.func.count())
        .select_from(Response)
        .join(Invitation, col(Invitation.id) == Response.invitation_id)
        .join(SampledUnit, col(SampledUnit.id) == Invitation.sampled_unit_id)
        .where(col(Response.status) == "completed")
        .group_by(col(SampledUnit.day))
    )
    return [(day, int(count)) for day, count in session.execute(query)]
