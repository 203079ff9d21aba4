"""Publication's SQL: the releases and what a release is computed from, the only module of the
domain that builds or runs a query.

The services (releases, inputs) check, decide, audit and own the transactions; each statement
they run is one small function here, on the caller's `Session`. A new release is still added
as an ORM object by the service (its insert is the unit of work's flush), and publishing sets
the draft's fields on the row this module locked: the database refuses any change to a
published release (triggers in migration 0004), so nothing here writes a release itself.
Releases are few and read through the ORM: plain SQLAlchemy statements, no DBAPI fast path.
"""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute, Session, defer
from sqlmodel import col

from survey.models import Agency, Channel, Province, QuestionnaireVersion, Release, Service

__all__ = [
    "code_names",
    "current_published_release",
    "highest_release_number",
    "lock_release",
    "questionnaire_content",
    "release_by_id",
    "releases",
    "superseding_releases",
]


# -- releases ----------------------------------------------------------------------------------


def release_by_id(session: Session, release_id: int) -> Release | None:
    return session.get(Release, release_id)


def lock_release(session: Session, release_id: int) -> Release | None:
    """The release with this id, locked for the transaction (`FOR UPDATE`)."""
    return session.scalar(sa.select(Release).where(col(Release.id) == release_id).with_for_update())


def releases(session: Session, *, status: str | None = None) -> list[Release]:
    """Every release (or those in one status), their snapshots not loaded (deferred)."""
    content = cast("QueryableAttribute[str]", Release.content)  # SQLModel types it as str
    query = sa.select(Release).options(defer(content))
    if status is not None:
        query = query.where(col(Release.status) == status)
    return list(session.scalars(query))


def superseding_releases(session: Session, ids: list[int]) -> dict[int, int]:
    """For each of these ids, the published release that supersedes it (if any)."""
    rows = session.execute(
        sa.select(col(Release.supersedes_id), col(Release.id)).where(
            col(Release.supersedes_id).in_(ids),
            col(Release.status) == "published",
        )
    )
    # Both columns hold ids here (the filter excludes NULL); the check is for the type checker.
    return {int(old): int(new) for old, new in rows if old is not None and new is not None}


def current_published_release(session: Session, period: str) -> Release | None:
    """The period's published release with the highest number."""
    return session.scalar(
        sa.select(Release)
        .where(col(Release.period) == period, col(Release.status) == "published")
        .order_by(col(Release.number).desc())
        .limit(1)
    )


def highest_release_number(session: Session, period: str) -> int:
    """The highest number of the period's releases, drafts included (0 when there is none)."""
    return int(
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.max(Release.number), 0)).where(
                col(Release.period) == period
            )
        )
        or 0
    )


# -- what a release is computed from -----------------------------------------------------------


def questionnaire_content(session: Session, qid: str, version: int) -> dict[str, Any] | None:
    """The stored content of one version of a questionnaire."""
    content: dict[str, Any] | None = session.scalar(
        sa.select(col(QuestionnaireVersion.content)).where(
            col(QuestionnaireVersion.qid) == qid,
            col(QuestionnaireVersion.version) == version,
        )
    )
    return content


def code_names(
    session: Session,
    table: type[Agency] | type[Service] | type[Province] | type[Channel],
    codes: set[str] | None,
) -> dict[str, dict[str, str]]:
    """Persian and English names by code of the table's entries: those with these codes, or
    all of them (`codes` None)."""
    code_column = col(table.code)
    query = sa.select(code_column, col(table.name_fa), col(table.name_en))
    if codes is not None:
        query = query.where(code_column.in_(sorted(codes)))
    return {
        str(code): {"fa": str(fa), "en": str(en)}
        for code, fa, en in session.execute(query.order_by(code_column))
    }
