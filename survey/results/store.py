"""Results' SQL: the rows the export, the response rates, the analyses and the plan proposals
are computed from.

The services (export, rates, analyses, proposals) do the statistics in pandas; each reads its
rows with one or two statements, all here, so that what results asks of the database can be
read (and indexed) in one place. The large reads (the export's responses, the rates'
invitations) are Core queries on the tables, not ORM entities: the rows go straight into
DataFrames, without an object per row. Frame counts come from `survey.ingestion.frames`, the
plan in force from `survey.sampling.plans`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlmodel import SQLModel, col

from survey.kernel.periods import Period
from survey.models import (
    Agency,
    Invitation,
    OutboxMessage,
    QuestionnaireVersion,
    Response,
    SampledUnit,
    SamplingPlan,
    Service,
)

__all__ = [
    "DISPOSITION_COLUMNS",
    "index_content",
    "invitation_counts",
    "invitation_dispositions",
    "latest_plan",
    "questionnaire_contents",
    "response_rows",
    "sent_parts",
    "sent_parts_by_day",
]


def _table(model: type[SQLModel]) -> sa.Table:
    """The Core table of a model (queries here build DataFrames: no ORM objects needed)."""
    return SQLModel.metadata.tables[str(model.__tablename__)]


_resp = _table(Response)
_inv = _table(Invitation)
_unit = _table(SampledUnit)
_agency = _table(Agency)
_service = _table(Service)
_plan = _table(SamplingPlan)
_qv = _table(QuestionnaireVersion)
_outbox = _table(OutboxMessage)

DISPOSITION_COLUMNS: tuple[str, ...] = (
    "group",
    "status",
    "completed_at",
    "opted_out_at",
    "partial_at",
    "opened_at",
    "delivered_at",
    "sent_at",
    "failed_at",
)


# -- the export -------------------------------------------------------------------------------


def response_rows(
    session: Session, first_day: date, last_day: date, *, include_partial: bool
) -> Sequence[sa.Row[Any]]:
    """Each response to an invitation whose transaction day is in `first_day`..`last_day`
    (inclusive), completed (and partial ones when asked), with its sampled unit's design
    columns, by day then response id."""
    return session.execute(_responses_query(first_day, last_day, include_partial)).all()


def _responses_query(start: date, end: date, include_partial: bool) -> sa.Select[Any]:
    statuses = ["completed", "partial"] if include_partial else ["completed"]
    return (
        sa.select(
            _resp.c.id,
            _resp.c.status,
            _resp.c.channel.label("mode"),
            _resp.c.answers,
            _resp.c.questionnaire_version_id,
            _qv.c.qid,
            _qv.c.version.label("questionnaire_version"),
            _agency.c.code.label("agency"),
            _service.c.code.label("service"),
            _unit.c.channel,
            _unit.c.province_code,
            _unit.c.day,
            _unit.c.stratum,
            _unit.c.inclusion_probability,
            _plan.c.version.label("plan_version"),
        )
        .select_from(
            _resp.join(_inv, _inv.c.id == _resp.c.invitation_id)
            .join(_unit, _unit.c.id == _inv.c.sampled_unit_id)
            .join(_agency, _agency.c.id == _unit.c.agency_id)
            .join(_service, _service.c.id == _unit.c.service_id)
            .join(_plan, _plan.c.id == _unit.c.plan_id)
            .join(_qv, _qv.c.id == _resp.c.questionnaire_version_id)
        )
        .where(_unit.c.day >= start, _unit.c.day <= end, _resp.c.status.in_(statuses))
        .order_by(_unit.c.day, _resp.c.id)
    )


def questionnaire_contents(session: Session, version_ids: Collection[int]) -> dict[int, Any]:
    """The stored content of each questionnaire version id given (by id)."""
    return {
        int(r.id): r.content
        for r in session.execute(
            sa.select(_qv.c.id, _qv.c.content).where(_qv.c.id.in_(version_ids))
        )
    }


# -- response rates ---------------------------------------------------------------------------


def invitation_dispositions(
    bind: Connection | Session, period: Period, *, by: str, agency_id: int | None = None
) -> Sequence[sa.Row[Any]]:
    """Every sampled unit of the period's days (with its invitation's status and timestamps,
    or None without one), as rows of DISPOSITION_COLUMNS; `group` is the unit's agency code,
    channel, mode or province (`by`). `agency_id` keeps one agency."""
    group_column = {
        "agency": _agency.c.code,
        "channel": _unit.c.channel,
        "mode": sa.func.coalesce(_inv.c.mode, _unit.c.mode),
        "province": _unit.c.province_code,
    }[by]
    query: sa.Select[Any] = (
        sa.select(
            group_column.label("group"),
            _inv.c.status,
            _inv.c.completed_at,
            _inv.c.opted_out_at,
            _inv.c.partial_at,
            _inv.c.opened_at,
            _inv.c.delivered_at,
            _inv.c.sent_at,
            _inv.c.failed_at,
        )
        .select_from(
            _unit.outerjoin(_inv, _inv.c.sampled_unit_id == _unit.c.id).join(
                _agency, _agency.c.id == _unit.c.agency_id
            )
        )
        .where(_unit.c.day >= period.start, _unit.c.day < period.end)
    )
    if agency_id is not None:
        query = query.where(_unit.c.agency_id == agency_id)
    return bind.execute(query).all()


# -- analyses ---------------------------------------------------------------------------------


def index_content(session: Session, qid: str, version: int) -> Any | None:
    """The stored content of questionnaire `qid` version `version` (None if not registered)."""
    return session.scalar(
        sa.select(col(QuestionnaireVersion.content)).where(
            col(QuestionnaireVersion.qid) == qid, col(QuestionnaireVersion.version) == version
        )
    )


# -- plan proposals ---------------------------------------------------------------------------


def invitation_counts(
    session: Session, history: Period, group: Sequence[str]
) -> list[dict[str, Any]]:
    """Per cell of `group` (agency, service, channel, province codes, or the transaction
    `day`): the invitations of the history's transaction days (`history_invitations`) and how
    many were completed (`history_completes`)."""
    columns = {
        "agency": _agency.c.code,
        "service": _service.c.code,
        "channel": _unit.c.channel,
        "province": _unit.c.province_code,
        "day": _unit.c.day,
    }
    keys = [columns[d].label(d) for d in group]
    completed = sa.case((_inv.c.completed_at.is_not(None), 1), else_=0)
    query = (
        sa.select(
            *keys,
            sa.func.count().label("history_invitations"),
            sa.func.coalesce(sa.func.sum(completed), 0).label("history_completes"),
        )
        .select_from(
            _inv.join(_unit, _unit.c.id == _inv.c.sampled_unit_id)
            .join(_agency, _agency.c.id == _unit.c.agency_id)
            .join(_service, _service.c.id == _unit.c.service_id)
        )
        .where(_unit.c.day >= history.start, _unit.c.day < history.end)
        .group_by(*keys)
    )
    return [dict(r._mapping) for r in session.execute(query)]


def sent_parts(session: Session, history: Period) -> tuple[int, int]:
    """SMS parts sent for the invitations of the history's transaction days, and how many
    invitations they went to."""
    query = (
        sa.select(
            sa.func.coalesce(sa.func.sum(_outbox.c.parts), 0),
            sa.func.count(sa.distinct(_outbox.c.invitation_id)),
        )
        .select_from(
            _outbox.join(_inv, _inv.c.id == _outbox.c.invitation_id).join(
                _unit, _unit.c.id == _inv.c.sampled_unit_id
            )
        )
        .where(
            _unit.c.day >= history.start,
            _unit.c.day < history.end,
            _outbox.c.status == "sent",
        )
    )
    parts, invitations = session.execute(query).one()
    return int(parts), int(invitations)


def sent_parts_by_day(session: Session, history: Period) -> list[tuple[date, int, int]]:
    """Per transaction day of the history: SMS parts sent for its invitations, and how many
    invitations they went to."""
    query = (
        sa.select(
            _unit.c.day,
            sa.func.coalesce(sa.func.sum(_outbox.c.parts), 0),
            sa.func.count(sa.distinct(_outbox.c.invitation_id)),
        )
        .select_from(
            _outbox.join(_inv, _inv.c.id == _outbox.c.invitation_id).join(
                _unit, _unit.c.id == _inv.c.sampled_unit_id
            )
        )
        .where(
            _unit.c.day >= history.start,
            _unit.c.day < history.end,
            _outbox.c.status == "sent",
        )
        .group_by(_unit.c.day)
    )
    return [(day, int(parts), int(sent)) for day, parts, sent in session.execute(query)]


def latest_plan(session: Session) -> SamplingPlan | None:
    """The plan with the highest version, whenever it starts."""
    return session.scalar(
        sa.select(SamplingPlan).order_by(col(SamplingPlan.version).desc()).limit(1)
    )
