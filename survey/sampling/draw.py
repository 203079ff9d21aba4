"""Central Poisson sampling: which reported transactions are surveyed. Pure: values in, values out.

Each transaction draws a number `u` in [0, 1) from a keyed hash of its identity:

    u = first 8 bytes of HMAC-SHA256(key, seed || agency code || 0x1F || external_id) / 2**64

and is sampled iff `u < rate`, where `rate` is its stratum's sampling rate under the plan in
force. The key is derived from the server secret, so an agency cannot compute `u` and steer
which transactions are surveyed; the plan's seed makes each plan version an independent draw;
the identity `(agency, external_id)` makes the decision the same on every resend. (The 0x1F
separator keeps `("AB", "C")` and `("A", "BC")` apart.) Independent uniform `u`s per
transaction make this Poisson sampling with inclusion probability `rate`.

Rates. A plan has a `default_rate` and a list of rules such as
`{service: TAX-01, channel: in_person, rate: 1.0}`. A rule matches a transaction when every
dimension it names (agency, service, channel, province) equals the transaction's. Among the
matching rules the most specific one (the one naming the most dimensions) wins; between equally
specific matching rules the one listed first wins (plan validation should reject such overlaps).
No matching rule: the default rate. The rate is the unit's inclusion probability, stored with it;
when rules use dimensions outside the strata, units of one stratum may have different rates and
each keeps its own.

Strata. `stratum_key` names a stratum readably, e.g. `agency=TAX|service=TAX-01|channel=in_person`,
with the plan's strata dimensions in the plan's order (province is empty when not reported).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

__all__ = [
    "DIMENSIONS",
    "Decision",
    "PlanSpec",
    "QuestionnaireRule",
    "RateRule",
    "Unit",
    "decide",
    "decide_many",
    "draw",
    "plan_in_force",
    "seed_bytes",
]

DIMENSIONS: tuple[str, ...] = ("agency", "service", "channel", "province")
_SEPARATOR = b"\x1f"
_TWO_TO_64 = float(2**64)


@dataclass(frozen=True, slots=True)
class Unit:
    """What sampling needs to know of a transaction."""

    agency: str
    external_id: str
    service: str
    channel: str
    province: str = ""

    def value(self, dimension: str) -> str:
        return getattr(self, dimension)


@dataclass(frozen=True, slots=True)
class Decision:
    sampled: bool
    inclusion_probability: float
    stratum: str
    u: float


@dataclass(frozen=True, slots=True)
class RateRule:
    """A per-stratum rate: `conditions` are (dimension, value) pairs that must all match."""

    conditions: tuple[tuple[str, str], ...]
    rate: float

    def matches(self, cell: Mapping[str, str]) -> bool:
        return all(cell[dimension] == value for dimension, value in self.conditions)


@dataclass(frozen=True, slots=True)
class QuestionnaireRule:
    """Which questionnaire and mode a sampled unit of `service` (and `channel`, if set) gets."""

    service: str
    questionnaire: str
    mode: str
    channel: str | None = None


class PlanRow(Protocol):
    """The attributes of a stored sampling plan that sampling reads (see models.SamplingPlan)."""

    id: int | None
    version: int
    starts: date
    seed: str
    strata: list[str]
    default_rate: float
    rates: list[dict[str, Any]]
    contact_rule_days: int
    questionnaires: list[dict[str, Any]]


@dataclass(frozen=True)
class PlanSpec:
    """One sampling-plan version, in the form sampling uses. Build it with `from_row`."""

    plan_id: int
    version: int
    starts: date
    seed: bytes = field(repr=False)
    strata: tuple[str, ...]
    default_rate: float
    rules: tuple[RateRule, ...] = ()
    contact_rule_days: int = 90
    questionnaires: tuple[QuestionnaireRule, ...] = ()
    _rates: dict[tuple[str, str, str, str], float] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        unknown = [d for d in self.strata if d not in DIMENSIONS]
        if unknown:
            raise ValueError(
                f"strata: unknown dimension {unknown[0]!r}; use {', '.join(DIMENSIONS)}"
            )
        for rate in (self.default_rate, *(rule.rate for rule in self.rules)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate must be between 0 and 1; got {rate}")
        for rule in self.rules:
            for dimension, _ in rule.conditions:
                if dimension not in DIMENSIONS:
                    raise ValueError(
                        f"rates: unknown dimension {dimension!r}; use {', '.join(DIMENSIONS)}"
                    )

    @classmethod
    def from_row(cls, row: PlanRow) -> PlanSpec:
        """From a stored `SamplingPlan` (or anything with its attributes)."""
        rules = []
        for entry in row.rates or []:
            conditions = tuple(
                (key, str(value)) for key, value in entry.items() if key in DIMENSIONS
            )
            extra = [key for key in entry if key not in DIMENSIONS and key != "rate"]
            if extra:
                raise ValueError(f"rates: unknown dimension {extra[0]!r} in {entry!r}")
            if "rate" not in entry:
                raise ValueError(f"rates: entry {entry!r} has no rate")
            rules.append(RateRule(conditions, float(entry["rate"])))
        questionnaires = tuple(
            QuestionnaireRule(
                service=str(entry["service"]),
                questionnaire=str(entry["questionnaire"]),
                mode=str(entry.get("mode") or "sms_link"),
                channel=str(entry["channel"]) if entry.get("channel") else None,
            )
            for entry in row.questionnaires or []
        )
        if row.id is None:
            raise ValueError("the sampling plan has not been stored (no id)")
        return cls(
            plan_id=row.id,
            version=row.version,
            starts=row.starts,
            seed=seed_bytes(row.seed),
            strata=tuple(row.strata),
            default_rate=float(row.default_rate),
            rules=tuple(rules),
            contact_rule_days=int(row.contact_rule_days),
            questionnaires=questionnaires,
        )

    def rate(self, unit: Unit) -> float:
        """The rate for the unit's cell: the most specific matching rule, else the default."""
        cell_key = (unit.agency, unit.service, unit.channel, unit.province)
        cached = self._rates.get(cell_key)
        if cached is not None:
            return cached
        cell = dict(zip(DIMENSIONS, cell_key, strict=True))
        best: RateRule | None = None
        for rule in self.rules:
            if rule.matches(cell) and (best is None or len(rule.conditions) > len(best.conditions)):
                best = rule
        rate = self.default_rate if best is None else best.rate
        if len(self._rates) < 100_000:
            self._rates[cell_key] = rate
        return rate

    def stratum_key(self, unit: Unit) -> str:
        return "|".join(f"{dimension}={unit.value(dimension)}" for dimension in self.strata)

    def questionnaire_for(self, service: str, channel: str) -> QuestionnaireRule | None:
        """The rule for this service and channel; a rule naming the channel beats one without."""
        fallback = None
        for rule in self.questionnaires:
            if rule.service != service:
                continue
            if rule.channel == channel:
                return rule
            if rule.channel is None and fallback is None:
                fallback = rule
        return fallback


def seed_bytes(seed: str) -> bytes:
    """A plan's seed as bytes: hex digits are decoded, any other text is taken as UTF-8."""
    try:
        return bytes.fromhex(seed)
    except ValueError:
        return seed.encode()


def draw(key: bytes, seed: bytes, agency: str, external_id: str) -> float:
    """The unit's uniform number u in [0, 1), reproducible from the key and its identity."""
    digest = hmac.new(
        key, seed + agency.encode() + _SEPARATOR + external_id.encode(), hashlib.sha256
    ).digest()
    return int.from_bytes(digest[:8], "big") / _TWO_TO_64


def decide(key: bytes, plan: PlanSpec, tx: Unit) -> Decision:
    """Whether `tx` is sampled under `plan`, with its inclusion probability and stratum."""
    rate = plan.rate(tx)
    u = draw(key, plan.seed, tx.agency, tx.external_id)
    return Decision(u < rate, rate, plan.stratum_key(tx), u)


def decide_many(key: bytes, plan: PlanSpec, txs: Iterable[Unit]) -> list[Decision]:
    """`decide` for many units, reusing the HMAC state keyed per agency (same results)."""
    prefixes: dict[str, Any] = {}
    strata: dict[tuple[str, str, str, str], str] = {}
    out = []
    for tx in txs:
        base = prefixes.get(tx.agency)
        if base is None:
            base = hmac.new(key, plan.seed + tx.agency.encode() + _SEPARATOR, hashlib.sha256)
            prefixes[tx.agency] = base
        mac = base.copy()
        mac.update(tx.external_id.encode())
        u = int.from_bytes(mac.digest()[:8], "big") / _TWO_TO_64
        cell = (tx.agency, tx.service, tx.channel, tx.province)
        stratum = strata.get(cell)
        if stratum is None:
            stratum = strata[cell] = plan.stratum_key(tx)
        rate = plan.rate(tx)
        out.append(Decision(u < rate, rate, stratum, u))
    return out


def plan_in_force(plans: Sequence[PlanSpec], day: date) -> PlanSpec | None:
    """The plan with the latest `starts` on or before `day` (ties: the highest version)."""
    best: PlanSpec | None = None
    for plan in plans:
        if plan.starts <= day and (
            best is None or (plan.starts, plan.version) > (best.starts, best.version)
        ):
            best = plan
    return best
