"""AAPOR response, cooperation and contact rates of invitations, per agency, channel or mode.

Each invitation gets one final disposition from its status and timestamps (first match wins):

    I   complete            status completed (or completed_at set)
    R   refusal             opted out (on the page, by SMS, or on the opt-out list when
                            sampled) before completing
    P   partial             some answers saved (partial_at set), not completed
    R   break-off           opened, nothing saved
    NC  non-contact         sent or delivered, never opened
    UH  unknown eligibility the message failed (failed_at set), never delivered or opened
    UO  unknown eligibility never sent (pending, or a sampled unit with no invitation yet or
                            one that cannot be sent: no contact attempt made)
    O   other               any status this table does not know (counted, never dropped)

Rates (AAPOR Standard Definitions, 2023; every sampled unit is eligible: it made a
transaction, so e = 1 for the unknown-eligibility cases and RR3/RR4 equal RR1/RR2):

    RR1   = I / ((I + P) + (R + NC + O) + (UH + UO))
    RR2   = (I + P) / ((I + P) + (R + NC + O) + (UH + UO))
    COOP1 = I / ((I + P) + R + O)
    CON1  = ((I + P) + R + O) / ((I + P) + R + O + NC + (UH + UO))

A rate whose denominator is 0 is missing (None), not 0. The units counted are all *sampled
units* (with or without an invitation); each belongs to the period of its transaction's Tehran
day (the sampled unit's `day`), as in the export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from survey.context import AppContext
from survey.errors import InvalidInput, Problem
from survey.kernel.periods import Period, parse_period
from survey.results import store

__all__ = [
    "DISPOSITIONS",
    "GROUPINGS",
    "RATES",
    "RateTable",
    "dispositions",
    "rates",
    "response_rates",
]

DISPOSITIONS: tuple[str, ...] = ("I", "P", "R", "NC", "O", "UH", "UO")
RATES: tuple[str, ...] = ("RR1", "RR2", "COOP1", "CON1")
GROUPINGS: tuple[str, ...] = ("agency", "channel", "mode", "province")
KNOWN_STATUSES = frozenset(
    {
        "pending",
        "sent",
        "delivered",
        "failed",
        "opened",
        "partial",
        "completed",
        "expired",
        "opted_out",
    }
)
ALL = "all"


@dataclass(frozen=True)
class RateTable:
    """Counts by disposition and the four rates per group (and an `all` row), for one period."""

    period: Period
    by: str
    table: pd.DataFrame  # columns: <by>, I..UO, total, RR1, RR2, COOP1, CON1

    def records(self) -> list[dict[str, Any]]:
        """JSON-ready rows: counts as ints, rates as floats or None."""
        out = []
        for row in self.table.to_dict(orient="records"):
            record: dict[str, Any] = {self.by: str(row[self.by])}
            record.update({name: int(row[name]) for name in (*DISPOSITIONS, "total")})
            record.update({name: _float_or_none(row[name]) for name in RATES})
            out.append(record)
        return out


def _float_or_none(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def dispositions(invitations: pd.DataFrame) -> pd.Series:
    """The disposition code of each invitation (vectorised; see the module docstring).

    Needs columns `status` and `completed_at`, `opted_out_at`, `partial_at`, `opened_at`,
    `delivered_at`, `sent_at`, `failed_at` (missing timestamps as None/NaT).
    """
    status = invitations["status"].astype(str)

    def has(column: str) -> np.ndarray:
        return invitations[column].notna().to_numpy()

    known = status.isin(KNOWN_STATUSES).to_numpy()
    complete = (status == "completed").to_numpy() | has("completed_at")
    refused = (status == "opted_out").to_numpy() | has("opted_out_at")
    conditions = [
        complete,
        refused,
        has("partial_at"),
        has("opened_at"),
        ~known,
        has("delivered_at"),
        has("failed_at"),
        has("sent_at") | np.isin(status, ["sent", "delivered"]),
        (status == "failed").to_numpy(),
    ]
    choices = ["I", "R", "P", "R", "O", "NC", "UH", "NC", "UH"]
    codes = np.select(conditions, choices, default="UO")
    return pd.Series(codes, index=invitations.index, name="disposition")


def rates(counts: pd.DataFrame) -> pd.DataFrame:
    """RR1, RR2, COOP1 and CON1 from columns I..UO (vectorised; NaN where a denominator is 0)."""
    c = {name: counts[name].to_numpy(dtype="float64") for name in DISPOSITIONS}
    interviews = c["I"] + c["P"]
    unknown = c["UH"] + c["UO"]
    everyone = interviews + c["R"] + c["NC"] + c["O"] + unknown
    contacted = interviews + c["R"] + c["O"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "RR1": np.where(everyone > 0, c["I"] / everyone, np.nan),
            "RR2": np.where(everyone > 0, interviews / everyone, np.nan),
            "COOP1": np.where(contacted > 0, c["I"] / contacted, np.nan),
            "CON1": np.where(
                contacted + c["NC"] + unknown > 0,
                contacted / (contacted + c["NC"] + unknown),
                np.nan,
            ),
        }
    return pd.DataFrame(out, index=counts.index)


def response_rates(
    bind: Connection | Session,
    period: Period,
    *,
    by: str = "agency",
    agency_id: int | None = None,
) -> RateTable:
    """Rates of the invitations whose transaction day falls in `period`, grouped `by`
    (agency code, service channel, invitation mode or province), with an `all` row first.
    `agency_id` limits to one agency (for an agency's own staff)."""
    if by not in GROUPINGS:
        raise InvalidInput(
            "cannot group rates that way",
            [Problem(f"expected one of {', '.join(GROUPINGS)}; got {by!r}", field="by")],
        )
    rows = store.invitation_dispositions(bind, period, by=by, agency_id=agency_id)
    frame = pd.DataFrame(rows, columns=list(store.DISPOSITION_COLUMNS))
    frame["group"] = frame["group"].fillna("").astype(str)
    # A sampled unit without an invitation yet (or one that cannot be sent) was never sent.
    frame["status"] = frame["status"].fillna("pending")
    frame["disposition"] = dispositions(frame) if len(frame) else pd.Series(dtype=str)
    counts = pd.crosstab(frame["group"], frame["disposition"]).reindex(
        columns=list(DISPOSITIONS), fill_value=0
    )
    counts.index = counts.index.astype(str)
    total = counts.sum(axis=0).to_frame().T
    total.index = pd.Index([ALL])
    counts = pd.concat([total, counts]).astype("int64")
    counts["total"] = counts[list(DISPOSITIONS)].sum(axis=1)
    table = pd.concat([counts, rates(counts)], axis=1)
    table.index.name = by
    return RateTable(period=period, by=by, table=table.reset_index())


def rates_report(
    context: AppContext, period: str, *, by: str, agency_id: int | None
) -> dict[str, Any]:
    """The rates of a period as the staff API returns them (an agency operator: its agency)."""
    wanted = parse_period(period)
    with context.read_sessions() as session:
        table = response_rates(session, wanted, by=by, agency_id=agency_id)
    return {
        "period": {
            "label": wanted.label,
            "calendar": wanted.calendar,
            "start": wanted.start.isoformat(),
            "end": wanted.end.isoformat(),
        },
        "by": by,
        "rows": table.records(),
    }
