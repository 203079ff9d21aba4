"""What staff ask of a plan (`Target`) and what a proposal holds (`Proposal`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from analysis.samplesize import (
    SampleDesignError,
)

DIMENSIONS: tuple[str, ...] = ("agency", "service", "channel", "province")
NATIONAL = "all"
STRATUM_COLUMNS: tuple[str, ...] = (
    "stratum",
    *DIMENSIONS,
    "volume",
    "response_rate",
    "sd",
    "mean",
    "deff",
    "parts_per_invitation",
    "cost_per_part",
    "cost_per_invitation",
)
_REQUIRED = (
    "stratum",
    *DIMENSIONS,
    "volume",
    "response_rate",
    "parts_per_invitation",
    "cost_per_part",
)
_OPTIONAL_DEFAULTS = {"deff": 1.0, "cost_per_invitation": 0.0}
Measure = Literal["mean", "proportion"]
WithinRule = Literal["optimal", "neyman", "proportional", "equal"]
AcrossRule = Literal["power", "optimal", "neyman", "proportional", "equal"]
_WITHIN = ("optimal", "neyman", "proportional", "equal")
_ACROSS = ("power", "optimal", "neyman", "proportional", "equal")
_MAX_ROUNDS = 200
# A domain whose strata expected to have fewer than two respondents hold more than this share
# of its transactions is not publishable: folding them away each period borrows too much.
MAX_FOLDED_SHARE = 0.10


@dataclass(frozen=True)
class Target:
    """The precision a plan must deliver for every domain of the ``by`` dimensions.

    Exactly one of ``margin`` (half-width of the ``confidence`` interval, in points of the
    0-100 scale: index points for means, percentage points for proportions) and ``cv``
    (standard error / mean, e.g. 0.02). ``by`` names dimensions from ``DIMENSIONS`` or
    ``"all"`` (national); the first must give every stratum a domain.
    """

    by: tuple[str, ...] = ("agency",)
    margin: float | None = None
    cv: float | None = None
    measure: Measure = "mean"
    confidence: float = 0.95
    min_completes: float = 30.0
    assurance: float = 0.95

    def __post_init__(self) -> None:
        by = (self.by,) if isinstance(self.by, str) else tuple(self.by)
        object.__setattr__(self, "by", by)
        allowed = (*DIMENSIONS, NATIONAL)
        if not by:
            raise SampleDesignError(f"by: expected one or more of {allowed}, got none")
        for name in by:
            if name not in allowed:
                raise SampleDesignError(f"by: expected one of {allowed}, got {name!r}")
        if len(set(by)) != len(by):
            raise SampleDesignError(f"by: expected distinct dimensions, got {list(by)}")
        if (self.margin is None) == (self.cv is None):
            raise SampleDesignError(
                f"target: expected exactly one of margin and cv, got margin={self.margin!r}, "
                f"cv={self.cv!r}"
            )
        if self.margin is not None and not self.margin > 0:
            raise SampleDesignError(f"margin: expected a number > 0, got {self.margin!r}")
        if self.cv is not None and not 0 < self.cv < 1:
            raise SampleDesignError(f"cv: expected a number in (0, 1), got {self.cv!r}")
        if self.measure not in ("mean", "proportion"):
            raise SampleDesignError(
                f"measure: expected 'mean' or 'proportion', got {self.measure!r}"
            )
        if not 0 < self.confidence < 1:
            raise SampleDesignError(f"confidence: expected (0, 1), got {self.confidence!r}")
        if not 0 < self.assurance < 1:
            raise SampleDesignError(f"assurance: expected (0, 1), got {self.assurance!r}")
        if not self.min_completes >= 0:
            raise SampleDesignError(f"min_completes: expected >= 0, got {self.min_completes!r}")

    def describe(self) -> str:
        what = (
            f"{self.confidence:.0%} margin of error <= {self.margin:g} points"
            if self.margin is not None
            else f"CV <= {self.cv:.1%}"
        )
        return (
            f"{self.measure} by {', '.join(self.by)}: {what}, >= {self.min_completes:g} completes, "
            f"met in {self.assurance:.0%} of periods"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": list(self.by),
            "margin": self.margin,
            "cv": self.cv,
            "measure": self.measure,
            "confidence": self.confidence,
            "min_completes": self.min_completes,
            "assurance": self.assurance,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Target:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise SampleDesignError(f"target: unknown field {unknown[0]!r}; use {sorted(known)}")
        fields = dict(values)
        if "by" in fields:
            fields["by"] = (
                tuple(fields["by"]) if not isinstance(fields["by"], str) else (fields["by"],)
            )
        return cls(**fields)


@dataclass(frozen=True)
class Proposal:
    """A plan's rates and what they deliver.

    ``strata``: the inputs plus ``rate`` (invitation probability), ``invitations``,
    ``completes`` (expected), ``capped`` (rate 1), ``sms_parts`` and ``cost`` per period.
    ``domains``: one row per (``dimension``, ``domain``), national first: ``volume``,
    ``invitations``, ``completes``, ``margin`` (expected), ``assured_margin`` (the margin not
    exceeded in a share ``assurance`` of periods), ``cv``, ``target``, ``p_meet`` (the
    approximate share of periods meeting the target), ``folded`` (the share of the domain's
    transactions in strata expected to have fewer than two respondents), ``publishable`` and
    ``note``.
    """

    target: Target
    strata: pd.DataFrame
    domains: pd.DataFrame
    method: Mapping[str, Any] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, float]:
        """Expected invitations, completes, SMS parts and cost per period."""
        return {
            "invitations": float(self.strata["invitations"].sum()),
            "completes": float(self.strata["completes"].sum()),
            "sms_parts": float(self.strata["sms_parts"].sum()),
            "cost": float(self.strata["cost"].sum()),
        }

    def summary(self) -> str:
        """The summary table staff read: one line per domain, then the totals."""
        return format_summary(self)

    def to_records(self) -> dict[str, Any]:
        """Plain data (for YAML): the target, the method and one mapping per stratum."""
        columns = [c for c in (*STRATUM_COLUMNS, "rate") if c in self.strata.columns]
        rows = []
        for record in self.strata[columns].to_dict(orient="records"):
            rows.append({k: _plain(v) for k, v in record.items() if not _missing(v)})
        return {"target": self.target.to_dict(), "method": dict(self.method), "strata": rows}

    @classmethod
    def from_records(cls, records: Mapping[str, Any]) -> Proposal:
        """Rebuild a proposal (perhaps with edited rates) from :meth:`to_records` data."""
        for key in ("target", "strata"):
            if key not in records:
                raise SampleDesignError(f"{key}: missing from the proposal")
        strata = pd.DataFrame(list(records["strata"]))
        if "rate" not in strata.columns:
            raise SampleDesignError("strata: expected a 'rate' for every stratum, got none")
        from analysis.planning.evaluation import evaluate  # evaluate makes Proposals

        return evaluate(
            strata, Target.from_dict(records["target"]), method=records.get("method") or {}
        )


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def format_summary(proposal: Proposal) -> str:
    """A fixed-width text table: what each domain gets and delivers, then the totals."""
    target = proposal.target
    d = proposal.domains
    measure = "cv" if target.cv is not None else "margin"
    lines = [f"Target: {target.describe()}"]
    if proposal.method:
        lines.append("Method: " + ", ".join(f"{k}={v}" for k, v in proposal.method.items()))
    header = (
        f"{'dimension':<10} {'domain':<24} {'volume':>10} {'invites':>9} {'completes':>9} "
        f"{'expected':>9} {'assured':>9} {'target':>7} {'P(meet)':>7}  status"
    )
    lines += ["", header, "-" * len(header)]
    for row in d.itertuples(index=False):
        value = getattr(row, measure)
        assured = getattr(row, f"assured_{measure}")
        fmt = (lambda x: f"{x:.1%}") if measure == "cv" else (lambda x: f"{x:.2f}")
        row_target, p_meet = cast(float, row.target), cast(float, row.p_meet)
        target_text = "" if np.isnan(row_target) else fmt(row_target)
        p_text = "" if np.isnan(p_meet) else f"{p_meet:.0%}"
        lines.append(
            f"{row.dimension:<10} {str(row.domain)[:24]:<24} {row.volume:>10,.0f} "
            f"{row.invitations:>9,.0f} {row.completes:>9,.0f} {_fmt(fmt, value):>9} "
            f"{_fmt(fmt, assured):>9} {target_text:>7} {p_text:>7}  {row.note}"
        )
    totals = proposal.totals
    capped = int(proposal.strata["capped"].sum())
    lines += [
        "",
        f"Per period: {totals['invitations']:,.0f} invitations, {totals['completes']:,.0f} "
        f"expected completes, {totals['sms_parts']:,.0f} SMS parts, cost {totals['cost']:,.2f}",
        f"Strata: {len(proposal.strata)}, of which {capped} invite everyone (rate 1)",
        f"'assured' is the {measure} not exceeded in {target.assurance:.0%} of periods; "
        f"P(meet) the approximate share of periods meeting the target.",
    ]
    return "\n".join(line.rstrip() for line in lines)


def _fmt(fmt: Any, value: float) -> str:
    if np.isnan(value):
        return "-"
    if np.isinf(value):
        return "inf"
    return str(fmt(value))
