"""Frame counts: the population totals that weighting divides by, read back for others.

`frame_counts(connection, ...)` sums the exact per-cell counters that ingestion keeps
(plan, Tehran day, service, channel, province) over a day range, grouped by whatever the caller
needs: by stratum for weights (`N_h`), by day for monitoring, by province for calibration
margins. Counts are never estimated: every number is a sum of integers written in the same
database transaction as the transactions they count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from survey.errors import InvalidInput, Problem
from survey.models import Agency, FrameCount, SamplingPlan, Service

__all__ = ["GROUPINGS", "FrameTotals", "frame_counts"]

GROUPINGS: tuple[str, ...] = ("plan", "stratum", "day", "agency", "service", "channel", "province")
COUNTERS: tuple[str, ...] = ("reported", "duplicates", "eligible", "ineligible", "sampled")


@dataclass(frozen=True, slots=True)
class FrameTotals:
    """Summed counters for one group; `group` maps each `by` name to its value (codes, ISO days)."""

    group: dict[str, str | int]
    reported: int
    duplicates: int
    eligible: int
    ineligible: int
    sampled: int


def frame_counts(
    bind: Connection | Session,
    *,
    plan_version: int | None = None,
    start: date | None = None,
    end: date | None = None,
    agency_id: int | None = None,
    by: Sequence[str] = ("plan", "stratum"),
) -> list[FrameTotals]:
    """Frame counts summed over Tehran days `start`..`end` (inclusive; open when None).

    `plan_version` limits to one plan version, `agency_id` to one agency's services; `by` names
    the grouping (from `GROUPINGS`; plan is the plan *version*). Rows come sorted by the group.
    Raises `InvalidInput` for an unknown grouping, a reversed range or an unknown plan version.
    """
    unknown = [name for name in by if name not in GROUPINGS]
    if unknown:
        raise InvalidInput(
            "cannot group frame counts that way",
            [Problem(f"unknown grouping {unknown[0]!r}; use {', '.join(GROUPINGS)}", field="by")],
        )
    if start is not None and end is not None and start > end:
        raise InvalidInput(
            "the day range is reversed",
            [Problem(f"from {start} is after to {end}", field="from")],
        )
    frame = FrameCount.__table__  # type: ignore[attr-defined]
    plan = SamplingPlan.__table__  # type: ignore[attr-defined]
    service = Service.__table__  # type: ignore[attr-defined]
    agency = Agency.__table__  # type: ignore[attr-defined]
    if plan_version is not None:
        exists = bind.execute(sa.select(plan.c.id).where(plan.c.version == plan_version)).first()
        if exists is None:
            raise InvalidInput(
                "no such sampling plan",
                [Problem(f"plan version {plan_version} does not exist", field="plan")],
            )
    columns = {
        "plan": plan.c.version,
        "stratum": frame.c.stratum,
        "day": frame.c.day,
        "agency": agency.c.code,
        "service": service.c.code,
        "channel": frame.c.channel,
        "province": frame.c.province_code,
    }
    keys = [columns[name].label(f"g_{name}") for name in by]
    sums = [sa.func.coalesce(sa.func.sum(frame.c[name]), 0).label(name) for name in COUNTERS]
    query = (
        sa.select(*keys, *sums)
        .select_from(
            frame.join(plan, plan.c.id == frame.c.plan_id)
            .join(service, service.c.id == frame.c.service_id)
            .join(agency, agency.c.id == frame.c.agency_id)
        )
        .group_by(*keys)
        .order_by(*keys)
    )
    if plan_version is not None:
        query = query.where(plan.c.version == plan_version)
    if start is not None:
        query = query.where(frame.c.day >= start)
    if end is not None:
        query = query.where(frame.c.day <= end)
    if agency_id is not None:
        query = query.where(frame.c.agency_id == agency_id)
    out = []
    for row in bind.execute(query):
        values = row._mapping
        group = {name: _plain(values[f"g_{name}"]) for name in by}
        out.append(FrameTotals(group, *(int(values[name]) for name in COUNTERS)))
    return out


def _plain(value: object) -> str | int:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return value
    return str(value)
