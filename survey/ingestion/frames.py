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

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from survey.context import AppContext
from survey.errors import Forbidden, InvalidInput, Problem
from survey.ingestion import store
from survey.kernel.principal import Principal

__all__ = [
    "GROUPINGS",
    "FrameTable",
    "FrameTotals",
    "frame_count_table",
    "frame_counts",
    "parse_grouping",
    "readable_agency",
]

GROUPINGS: tuple[str, ...] = ("plan", "stratum", "day", "agency", "service", "channel", "province")
DEFAULT_GROUPING: tuple[str, ...] = ("plan", "stratum")
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
    if plan_version is not None and not store.plan_version_exists(bind, plan_version):
        raise InvalidInput(
            "no such sampling plan",
            [Problem(f"plan version {plan_version} does not exist", field="plan")],
        )
    out = []
    for row in store.frame_totals(
        bind, by, start=start, end=end, plan_version=plan_version, agency_id=agency_id
    ):
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


@dataclass(frozen=True, slots=True)
class FrameTable:
    """Frame counts as a table: the grouping used and one row per group, each the group's
    values (by name) followed by the summed counters."""

    by: list[str]
    rows: list[dict[str, str | int]]


def parse_grouping(text: str) -> list[str]:
    """`"agency, day"` as ["agency", "day"]; blank names dropped; none at all: by plan and
    stratum. Unknown names are left for `frame_counts` to refuse."""
    return [name.strip() for name in text.split(",") if name.strip()] or list(DEFAULT_GROUPING)


def frame_count_table(
    context: AppContext,
    *,
    plan_version: int | None = None,
    start: date | None = None,
    end: date | None = None,
    agency_id: int | None = None,
    by: str = "plan,stratum",
) -> FrameTable:
    """`frame_counts` on a read session, grouped by the comma-separated names of `by`."""
    grouping = parse_grouping(by)
    with context.read_sessions() as session:
        totals = frame_counts(
            session,
            plan_version=plan_version,
            start=start,
            end=end,
            agency_id=agency_id,
            by=grouping,
        )
    rows = [
        {
            **total.group,
            "reported": total.reported,
            "duplicates": total.duplicates,
            "eligible": total.eligible,
            "ineligible": total.ineligible,
            "sampled": total.sampled,
        }
        for total in totals
    ]
    return FrameTable(grouping, rows)


def readable_agency(context: AppContext, principal: Principal, agency: str | None) -> int | None:
    """The agency whose frame counts the caller reads (None: every agency).

    An agency's system (its key) and an agency operator read their own agency's counts only:
    naming another agency is Forbidden (an unknown code alike, so codes cannot be probed).
    Other staff read any agency's, or all when `agency` is None; an unknown code is invalid.
    """
    if principal.kind == "agency" or (principal.kind == "staff" and principal.role == "agency"):
        if principal.agency_id is None:
            raise Forbidden("this account is not linked to an agency")
        if agency is not None and agency != principal.agency_code:
            raise Forbidden(
                f"only the frame counts of your own agency ({principal.agency_code}) may be "
                f"read with these credentials; not those of {agency!r}"
            )
        return principal.agency_id
    if agency is None:
        return None
    ingest_store = store.store_for(context.engine)
    found = ingest_store.reference().agencies.get(agency)
    if found is None:
        found = ingest_store.reference(force=True).agencies.get(agency)
    if found is None:
        raise InvalidInput(
            "no such agency", [Problem(f"agency {agency!r} is not registered", field="agency")]
        )
    return found
