"""From expected volumes, response rates and SDs per stratum to a sampling proposal, and back.

Statistics staff state a target ("a 95% margin of error of at most 3 points on the 0-100
index for every agency each quarter"); :func:`propose` finds how many completes each stratum
needs, turns them into invitation rates through the expected response rates, and reports what
the plan delivers for every agency, service, channel and province with its SMS cost.
:func:`evaluate` does the same for rates staff have edited, and :func:`simulate` checks a plan
by drawing synthetic periods. Everything is pure (tables in, tables out) and vectorised over
strata and domains; the formulas are those of :mod:`analysis.samplesize`.

Inputs, one row per stratum (``STRATUM_COLUMNS``): ``stratum`` (a unique name), its domains
``agency``, ``service``, ``channel`` and ``province`` (``""`` when the plan's strata do not
split by province: such strata belong to no province domain), ``volume`` (expected eligible
transactions per period, > 0), ``response_rate`` (completes per invitation, in (0, 1]),
``sd`` (the item's standard deviation on the 0-100 scale; for proportions it is implied by
``mean``), ``mean`` (the expected index, or the expected percentage for proportions; needed for
CV targets, proportions and simulation), ``deff`` (design effect, default 1),
``parts_per_invitation`` (SMS parts an invitation costs on average, reminders and SMS dialogue
included), ``cost_per_part`` and ``cost_per_invitation`` (a fixed cost per invitation,
default 0). Costs are in whatever currency staff use, per period.

How a proposal is made (``propose`` without ``total``/``budget``):

1. The cost of one complete in stratum h is ``c_h = (cost_per_invitation + parts_per_invitation
   * cost_per_part) / response_rate``. Its capacity is ``volume * response_rate`` (everyone
   invited: rate 1).
2. For each ``by`` dimension on its own, each of its domains gets the completes that meet its
   assured target (below) when split among its strata by the ``within`` rule (``"optimal"``:
   ``n_h ∝ N_h S_h sqrt(deff_h) / sqrt(c_h)``, the cheapest split for a given variance,
   Cochran 1977 section 5.5; ``"neyman"``, ``"proportional"``, ``"equal"``), from
   :func:`~analysis.samplesize.stratified_completes`, at least ``min_completes``, and
   re-sharing what a capacity cap frees among the domain's other strata by the same rule (so
   the domain still gets its total). A domain that cannot reach its target invites everyone.
3. Each stratum takes the largest of these per-dimension allocations, and at least
   ``min_stratum_completes`` (default 5, or everyone): a stratum with fewer than two
   respondents cannot be estimated and is folded away in that period.
4. A last check scales up the uncapped strata of any target domain still short of its target
   or minimum (a stratum in several such domains takes the largest factor). With one ``by``
   dimension this is the least-cost plan; with several it guarantees every target, not the
   least cost for all at once (a convex programme we do not solve).
5. Rates are ``completes / (volume * response_rate)``, at most 1 by construction.

Assurance. Designing for the target exactly meets it in only about half of the periods: the
number of respondents under Poisson sampling and the sample variances vary. The estimated
variance of a domain's mean, ``v = sum_h v_h``, is treated as log-normal with

- mean ``sum_h W_h^2 S_h^2 (E[1/r_h] - 1/N_h)``, ``r_h ~ Poisson(n_h)`` given ``r_h >= 2``,
  divided by ``(1 - F)^2``, ``F = sum_h P(r_h < 2) W_h`` the share of the domain's volume
  expected to be folded away (its weight moves to the other strata);
- relative variance ``sum_h relvar_h E[v_h]^2 / E[v]^2`` with ``relvar_h`` that of
  ``s_h^2 / r_h``: given ``r``, ``var(s^2)/S^4 = (kappa_h - 1)/r + 2/(r (r - 1))``
  (``kappa_h`` the kurtosis of the answers), summed exactly over the Poisson distribution of
  ``r`` for ``n_h < 400`` (about ``kappa_h / n_h`` above). For CV targets the estimated
  mean's variation adds ``4 V / Ybar^2`` to the log-variance.

The *assured* margin is the margin at the ``assurance`` quantile of that distribution; a
domain is planned so that its assured margin (or CV) is at most the target, and then meets
the target in a share ``assurance`` of periods. :func:`simulate` checks this. Kurtosis:
Bernoulli for proportions; for means, the beta distribution on 0-100 with the stratum's mean
and SD (3, the normal's, when no mean is given).

With ``total`` (completes) or ``budget`` (cost per period) the total is fixed instead: it is
shared among the domains of the first ``by`` dimension by the ``across`` rule (default
Bankier's power allocation with exponent ``q``, domain sizes ``N_d`` and pooled
within-domain SDs, see :func:`~analysis.samplesize.power_allocation`), then within each
domain by ``within``; the report says which domains that makes publishable.

A domain is *publishable* under a plan when it is a target domain, its expected completes
reach ``min_completes``, its assured margin (CV) is within the target, and at most
``MAX_FOLDED_SHARE`` (10%) of its transactions are in strata expected to have fewer than two
respondents (strata that small, even when everyone is invited, call for coarser strata).

Simulation (:func:`simulate`). Each period draws every stratum's transactions as
Poisson(volume), its sample size as Binomial(transactions, rate) (Poisson sampling: the number
of units whose uniform falls under the rate), respondents as Binomial(sampled, response_rate),
and each respondent's answer from the beta distribution on 0-100 with the stratum's mean and
SD (Bernoulli(mean/100) * 100 for proportions). The domain mean is the stratified estimator
with weights ``N_h / respondents_h``; its variance ``sum W_h^2 deff_h (1 - r_h/N_h) s_h^2 /
r_h`` (the design effect is applied as in planning: the simulation checks the randomness of
volumes, samples, response and answers, not the design effect itself). A stratum with fewer
than two respondents in a period is folded into its domain for that period (the domain's
other strata are weighted up to the domain's total), as collapsing strata would do; the
report counts how often that happened. This is the estimator
:class:`analysis.SurveyDesign` computes for ``weights=N_h/r_h, strata=stratum, fpc=N_h``
(the tests check one period against it); it is computed here directly so that hundreds of
periods take a second.

References: Cochran (1977) Sampling Techniques, 3rd ed., ch. 4-5; Lohr (2022) Sampling: Design
and Analysis, 3rd ed., ch. 2-3; Bankier (1988) The American Statistician 42(3), 174-177.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse, stats

from analysis.samplesize import (
    SampleDesignError,
    allocate,
    stratified_completes,
    z_value,
)

__all__ = [
    "DIMENSIONS",
    "STRATUM_COLUMNS",
    "Proposal",
    "SimulationResult",
    "Target",
    "evaluate",
    "propose",
    "simulate",
    "synthetic_responses",
]

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
        return evaluate(
            strata, Target.from_dict(records["target"]), method=records.get("method") or {}
        )


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


# ------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class _Strata:
    """Validated per-stratum arrays."""

    table: pd.DataFrame
    volume: np.ndarray
    response_rate: np.ndarray
    sd: np.ndarray  # effective: S_h * sqrt(deff_h)
    raw_sd: np.ndarray
    mean: np.ndarray | None
    deff: np.ndarray
    cost_per_invitation: np.ndarray  # fixed + parts * per part
    parts: np.ndarray
    kurtosis: np.ndarray

    @property
    def capacity(self) -> np.ndarray:
        return self.volume * self.response_rate

    @property
    def cost_per_complete(self) -> np.ndarray:
        return self.cost_per_invitation / self.response_rate


def _numeric(table: pd.DataFrame, name: str) -> np.ndarray:
    try:
        values = pd.to_numeric(table[name], errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise SampleDesignError(f"{name}: expected numbers, got {exc}") from None
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad))
        raise SampleDesignError(
            f"{name}: expected a number for stratum {table['stratum'].iloc[row]!r}, got "
            f"{table[name].iloc[row]!r}"
        )
    return values


def _check_range(
    table: pd.DataFrame, name: str, values: np.ndarray, ok: np.ndarray, want: str
) -> None:
    if not ok.all():
        row = int(np.argmax(~ok))
        raise SampleDesignError(
            f"{name}: expected {want} for stratum {table['stratum'].iloc[row]!r}, "
            f"got {values[row]:g}"
        )


def _beta_kurtosis(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Kurtosis (not excess) of the beta distribution on 0-100 with this mean and SD."""
    m, v = mean / 100.0, (sd / 100.0) ** 2
    t = m * (1 - m) / v - 1.0
    a, b = m * t, (1 - m) * t
    excess = (
        6 * ((a - b) ** 2 * (a + b + 1) - a * b * (a + b + 2)) / (a * b * (a + b + 2) * (a + b + 3))
    )
    return 3.0 + excess


def _read_strata(strata: pd.DataFrame, target: Target, *, need_mean: bool = False) -> _Strata:
    if not isinstance(strata, pd.DataFrame):
        raise SampleDesignError(f"strata: expected a pandas DataFrame, got {type(strata).__name__}")
    missing = [c for c in _REQUIRED if c not in strata.columns]
    if target.measure == "mean" and "sd" not in strata.columns:
        missing.append("sd")
    need_mean = need_mean or target.measure == "proportion" or target.cv is not None
    if need_mean and "mean" not in strata.columns:
        missing.append("mean")
    if missing:
        raise SampleDesignError(
            f"strata: missing column {missing[0]!r} (expected {', '.join(STRATUM_COLUMNS)})"
        )
    if strata.empty:
        raise SampleDesignError("strata: expected at least one stratum, got none")
    table = strata.reset_index(drop=True).copy()
    for name, default in _OPTIONAL_DEFAULTS.items():
        if name not in table.columns:
            table[name] = default
    for name in ("stratum", *DIMENSIONS):
        table[name] = table[name].fillna("").astype(str)
    duplicated = table["stratum"].duplicated()
    if duplicated.any():
        raise SampleDesignError(
            f"stratum: expected unique names, got {table['stratum'][duplicated].iloc[0]!r} twice"
        )
    for name in ("agency", "service", "channel"):
        empty = table[name] == ""
        if empty.any():
            raise SampleDesignError(
                f"{name}: expected a value for stratum {table['stratum'][empty].iloc[0]!r}, got ''"
            )
    volume = _numeric(table, "volume")
    _check_range(table, "volume", volume, volume > 0, "> 0 (drop strata without transactions)")
    rr = _numeric(table, "response_rate")
    _check_range(table, "response_rate", rr, (rr > 0) & (rr <= 1), "a rate in (0, 1]")
    deff = _numeric(table, "deff")
    _check_range(table, "deff", deff, deff > 0, "> 0")
    parts = _numeric(table, "parts_per_invitation")
    _check_range(table, "parts_per_invitation", parts, parts >= 0, ">= 0")
    per_part = _numeric(table, "cost_per_part")
    _check_range(table, "cost_per_part", per_part, per_part >= 0, ">= 0")
    fixed = _numeric(table, "cost_per_invitation")
    _check_range(table, "cost_per_invitation", fixed, fixed >= 0, ">= 0")
    mean = None
    if "mean" in table.columns and (need_mean or table["mean"].notna().all()):
        mean = _numeric(table, "mean")
        _check_range(table, "mean", mean, (mean > 0) & (mean < 100), "a value in (0, 100)")
    if target.measure == "proportion":
        if "sd" in table.columns and table["sd"].notna().any():
            raise SampleDesignError(
                "sd: for proportions the SD is implied by the expected percentage in 'mean'; "
                "drop the 'sd' column"
            )
        assert mean is not None
        raw_sd = np.sqrt(mean * (100.0 - mean))
        pq = mean / 100.0 * (1 - mean / 100.0)
        kurtosis = (1 - 3 * pq) / pq
    else:
        raw_sd = _numeric(table, "sd")
        _check_range(table, "sd", raw_sd, raw_sd > 0, "> 0")
        if mean is not None:
            feasible = raw_sd**2 < mean * (100.0 - mean)
            _check_range(
                table,
                "sd",
                raw_sd,
                feasible,
                "less than sqrt(mean * (100 - mean)) on a 0-100 scale",
            )
            kurtosis = _beta_kurtosis(mean, raw_sd)
        else:
            kurtosis = np.full(volume.shape, 3.0)
    if target.measure == "mean":
        table["sd"] = raw_sd
    if mean is not None:
        table["mean"] = mean
    for name, values in (
        ("volume", volume),
        ("response_rate", rr),
        ("deff", deff),
        ("parts_per_invitation", parts),
        ("cost_per_part", per_part),
        ("cost_per_invitation", fixed),
    ):
        table[name] = values
    return _Strata(
        table=table,
        volume=volume,
        response_rate=rr,
        sd=raw_sd * np.sqrt(deff),
        raw_sd=raw_sd,
        mean=mean,
        deff=deff,
        cost_per_invitation=fixed + parts * per_part,
        parts=parts,
        kurtosis=kurtosis,
    )


# ----------------------------------------------------------------------------- domains


@dataclass(frozen=True)
class _Domains:
    """Every reportable domain: national, then each dimension's values (sorted)."""

    dimension: np.ndarray
    value: np.ndarray
    membership: sparse.csr_matrix  # strata x domains, 0/1

    @classmethod
    def of(cls, table: pd.DataFrame, dimensions: Sequence[str]) -> _Domains:
        dims, values, rows, cols = [], [], [], []
        h = len(table)
        for dimension in dimensions:
            if dimension == NATIONAL:
                labels = np.full(h, NATIONAL, dtype=object)
            else:
                labels = table[dimension].to_numpy(dtype=object)
            codes, uniques = pd.factorize(labels, sort=True)
            for code, label in enumerate(uniques):
                if label == "":
                    continue
                members = np.flatnonzero(codes == code)
                dims.append(dimension)
                values.append(label)
                rows.append(members)
                cols.append(np.full(members.size, len(dims) - 1))
        membership = sparse.csr_matrix(
            (np.ones(sum(r.size for r in rows)), (np.concatenate(rows), np.concatenate(cols))),
            shape=(h, len(dims)),
        )
        return cls(np.array(dims, dtype=object), np.array(values, dtype=object), membership)

    def sum(self, per_stratum: np.ndarray) -> np.ndarray:
        """Per-domain sums of a per-stratum array (or of each row of a periods x strata array)."""
        return np.asarray(per_stratum @ self.membership)

    def spread(self, per_domain: np.ndarray) -> np.ndarray:
        """Per stratum, the maximum over the domains it belongs to (0 if none)."""
        m = self.membership.multiply(per_domain[None, :]).tocsr()
        return np.asarray(m.max(axis=1).todense()).ravel()


def _target_variance(target: Target, domains: _Domains, strata: _Strata) -> np.ndarray:
    if target.margin is not None:
        return np.full(domains.value.size, (target.margin / z_value(target.confidence)) ** 2)
    assert strata.mean is not None and target.cv is not None
    domain_mean = domains.sum(strata.volume * strata.mean) / domains.sum(strata.volume)
    return (target.cv * domain_mean) ** 2


_EXACT_BELOW = 400.0


def _respondent_moments(
    completes: np.ndarray, volume: np.ndarray, kurtosis: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and relative variance of ``s^2 (1/r - 1/N)`` over ``r ~ Poisson(n)``, ``r >= 2``.

    A stratum's estimated variance contribution is ``W^2 s^2 (1/r - 1/N)``; given ``r``,
    ``var(s^2) / S^4 = (kappa - 1)/r + 2/(r (r - 1))`` (exact for iid answers). Summed over the
    Poisson distribution of ``r`` (strata with fewer than two respondents are folded away, so
    ``r >= 2``) for ``n`` below 400; above, the first-order forms ``E = (1/n)(1 + 1/n) - 1/N``
    and ``relvar = 1/(n (1 - f)^2) + (kappa - 1)/n`` with ``f = n/N``. The Poisson volume adds
    about ``4/N`` (the weight ``N_h^2``). Small strata matter: at ``n = 10`` the contribution
    is 12% larger on average than ``S^2 / n`` and twice as variable as ``kappa / n`` says;
    sampling fractions near 1 make the ``1/r`` part more variable by ``1/(1 - f)^2``.
    The mean is relative to ``S^2``.
    """
    n = np.asarray(completes, dtype=float)
    big_n = np.asarray(volume, dtype=float)
    mean = np.full(n.shape, np.inf)
    relvar = np.full(n.shape, np.inf)
    large = n >= _EXACT_BELOW
    nl, fl = n[large], np.minimum(n[large] / big_n[large], 0.999)
    mean[large] = np.clip((1.0 + 1.0 / nl) / nl - 1.0 / big_n[large], 1e-300, None)
    relvar[large] = 1.0 / (nl * (1.0 - fl) ** 2) + (kurtosis[large] - 1.0) / nl
    small = (n > 0) & ~large
    if small.any():
        mu = n[small][:, None]
        inverse_n = 1.0 / big_n[small][:, None]
        top = int(np.ceil(mu.max() + 12.0 * np.sqrt(mu.max()) + 12.0))
        r = np.arange(2, top + 1, dtype=float)[None, :]
        pmf = stats.poisson.pmf(r, mu)
        mass = pmf.sum(axis=1)
        part = np.clip(1.0 / r - inverse_n, 0.0, None)
        k = kurtosis[small][:, None]
        e1 = (pmf * part).sum(axis=1) / mass
        e2 = (pmf * part**2 * (1.0 + (k - 1.0) / r + 2.0 / (r * (r - 1.0)))).sum(axis=1) / mass
        mean[small] = e1
        with np.errstate(divide="ignore", invalid="ignore"):
            relvar[small] = np.where(e1 > 0, e2 / e1**2 - 1.0, 0.0)
    relvar = relvar + 4.0 / big_n
    return mean, relvar


@dataclass(frozen=True)
class _Precision:
    """Per domain: the textbook variance at the expected completes, the expected value of its
    estimate under Poisson respondents, and the relative variance of that estimate."""

    variance: np.ndarray
    expected: np.ndarray
    relvar: np.ndarray
    folded: np.ndarray
    extra: np.ndarray | float = 0.0

    @property
    def log_sd(self) -> np.ndarray:
        """SD of the log of the variance estimate (log-normal with this mean and relvar).

        ``extra`` adds to the log-variance: for CV targets the estimated mean's own
        ``var(log ybar^2) ≈ 4 V / Ybar^2`` (the CV's denominator varies too)."""
        return np.sqrt(np.log1p(self.relvar) + self.extra)

    def assured(self, z_assurance: float) -> np.ndarray:
        """The variance estimate not exceeded with the assurance (log-normal approximation)."""
        sigma = self.log_sd
        return self.expected * np.exp(z_assurance * sigma - sigma**2 / 2)

    def p_meet(self, goal_variance: np.ndarray) -> np.ndarray:
        """The probability that the variance estimate is at most ``goal_variance``."""
        sigma = self.log_sd
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (np.log(goal_variance / self.expected) + sigma**2 / 2) / sigma
        z = np.where(sigma > 0, z, np.where(self.expected <= goal_variance, np.inf, -np.inf))
        return np.where(np.isfinite(self.expected), stats.norm.cdf(z), 0.0)


def _domain_variance(
    completes: np.ndarray, strata: _Strata, domains: _Domains, target: Target
) -> _Precision:
    """Precision of each domain's stratified mean when strata give ``completes`` on average."""
    big_n2 = domains.sum(strata.volume) ** 2
    mean_factor, relvar_h = _respondent_moments(completes, strata.volume, strata.kurtosis)
    w2s2 = strata.volume**2 * strata.sd**2
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(completes > 0, 1.0 / completes, np.inf)
        # contribution of stratum h to domain d: (N_h/N_d)^2 S_h^2 (1/n_h - 1/N_h)
        base = w2s2 * np.clip(inverse - 1.0 / strata.volume, 0, None)
        mean_h = w2s2 * mean_factor
        variance = domains.sum(base) / big_n2
        # a stratum with fewer than two respondents (probability e^-n (1 + n)) is folded
        # away: its contribution goes, and the others' weights grow by 1 / (1 - F), F the
        # expected share of the domain's volume folded away
        folded = np.where(completes > 0, np.exp(-completes) * (1.0 + completes), 1.0)
        share = np.clip(domains.sum(folded * strata.volume) / np.sqrt(big_n2), 0.0, 0.99)
        kept = np.where(completes > 0, (1.0 - folded) * mean_h, 0.0)
        expected = domains.sum(kept) / big_n2 / (1.0 - share) ** 2
        spread = domains.sum(np.where(completes > 0, relvar_h * mean_h**2, np.inf)) / big_n2**2
        relvar = np.where(expected > 0, spread / expected**2, 0.0)
    extra: np.ndarray | float = 0.0
    if target.cv is not None and strata.mean is not None:
        domain_mean = domains.sum(strata.volume * strata.mean) / np.sqrt(big_n2)
        extra = np.nan_to_num(4.0 * expected / domain_mean**2, posinf=0.0)
    return _Precision(
        variance=variance, expected=expected, relvar=relvar, folded=share, extra=extra
    )


# ---------------------------------------------------------------------------- proposal


def _within_score(strata: _Strata, within: str) -> np.ndarray:
    if within == "optimal":
        cost = strata.cost_per_complete
        if np.any(cost <= 0):
            row = int(np.argmax(cost <= 0))
            raise SampleDesignError(
                "within: the 'optimal' allocation needs a positive cost per complete; stratum "
                f"{strata.table['stratum'].iloc[row]!r} costs 0 (give cost_per_part and "
                "parts_per_invitation, or use within='neyman')"
            )
        return strata.volume * strata.sd / np.sqrt(cost)
    if within == "neyman":
        return strata.volume * strata.sd
    if within == "proportional":
        return strata.volume.copy()
    if within == "equal":
        return np.ones_like(strata.volume)
    raise SampleDesignError(f"within: expected one of {_WITHIN}, got {within!r}")


def _primary_codes(strata: _Strata, dimension: str) -> np.ndarray:
    if dimension == NATIONAL:
        return np.zeros(strata.volume.size, dtype=np.intp)
    labels = strata.table[dimension].to_numpy(dtype=object)
    if np.any(labels == ""):
        raise SampleDesignError(
            f"by: the first dimension must give every stratum a domain; stratum "
            f"{strata.table['stratum'][labels == ''].iloc[0]!r} has no {dimension}"
        )
    codes, _ = pd.factorize(labels, sort=True)
    return codes.astype(np.intp)


def _meet_targets(
    strata: _Strata, target: Target, score: np.ndarray, completes: np.ndarray
) -> np.ndarray:
    """Scale strata up until every target domain meets its assured target and minimum."""
    domains = _Domains.of(strata.table, target.by)
    v_target = _target_variance(target, domains, strata)
    z_a = float(stats.norm.ppf(target.assurance))
    capacity = strata.capacity
    w2s2 = strata.volume**2 * strata.sd**2
    big_n2 = domains.sum(strata.volume) ** 2
    n = np.minimum(completes, capacity)
    for _ in range(_MAX_ROUNDS):
        precision = _domain_variance(n, strata, domains, target)
        met = precision.assured(z_a) <= v_target * (1 + 1e-9)
        # the textbook variance that makes the assured variance meet the target
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = precision.variance / precision.assured(z_a)
        planned = v_target * np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1.0)
        free = (n < capacity * (1 - 1e-12)) & (score > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            fixed_part = (
                domains.sum(
                    np.where(
                        free,
                        0.0,
                        w2s2 * np.clip(1 / np.where(n > 0, n, np.nan) - 1 / strata.volume, 0, None),
                    )
                )
                / big_n2
            )
            a_free = (
                domains.sum(np.where(free & (n > 0), w2s2 / np.where(n > 0, n, 1), 0.0)) / big_n2
            )
            b_free = domains.sum(np.where(free, w2s2 / strata.volume, 0.0)) / big_n2
            room = planned - fixed_part + b_free
            factor = np.where(met, 1.0, np.where(room > 0, a_free / room, np.inf))
            # the ratio moves as strata grow: step at least 0.1% so the loop ends
            factor = np.where(met, 1.0, np.maximum(factor, 1.001))
            fixed_n = domains.sum(np.where(free, 0.0, n))
            free_n = domains.sum(np.where(free, n, 0.0))
            floor = np.where(free_n > 0, (target.min_completes - fixed_n) / free_n, np.inf)
            factor = np.maximum(
                factor, np.where(fixed_n + free_n < target.min_completes, floor, 1.0)
            )
        factor = np.nan_to_num(factor, nan=1.0, posinf=np.inf)
        # a domain whose strata are all at capacity cannot grow: leave it (reported unreachable)
        stuck = free_n <= 0
        grow = domains.spread(np.where((factor > 1 + 1e-9) & ~stuck, factor, 1.0))
        if np.all(grow[free] <= 1 + 1e-9):
            break
        n = np.where(free, np.minimum(np.maximum(n, 1e-9) * np.maximum(grow, 1.0), capacity), n)
    return n


def _across_scores(
    strata: _Strata, codes: np.ndarray, across: str, q: float, within_score: np.ndarray
) -> np.ndarray:
    g = int(codes.max()) + 1
    big_n = np.bincount(codes, weights=strata.volume, minlength=g)
    w = strata.volume / big_n[codes]
    pooled_sd = np.sqrt(np.bincount(codes, weights=w * strata.sd**2, minlength=g))
    if across == "power":
        if not 0 <= q <= 1:
            raise SampleDesignError(f"q: expected a number in [0, 1], got {q!r}")
        return big_n**q * pooled_sd
    if across == "neyman":
        return big_n * pooled_sd
    if across == "proportional":
        return big_n
    if across == "equal":
        return np.ones(g)
    if across == "optimal":
        shares = within_score / np.bincount(codes, weights=within_score, minlength=g)[codes]
        cost = np.bincount(codes, weights=shares * strata.cost_per_complete, minlength=g)
        if np.any(cost <= 0):
            raise SampleDesignError("across: the 'optimal' allocation needs positive costs")
        return big_n * pooled_sd / np.sqrt(cost)
    raise SampleDesignError(f"across: expected one of {_ACROSS}, got {across!r}")


def _fixed_total(
    strata: _Strata, codes: np.ndarray, total: float, across: str, q: float, score: np.ndarray
) -> np.ndarray:
    g = int(codes.max()) + 1
    domain_capacity = np.bincount(
        codes, weights=np.where(score > 0, strata.capacity, 0), minlength=g
    )
    if total > domain_capacity.sum():
        total = float(domain_capacity.sum())
    domain_totals = allocate(
        total, _across_scores(strata, codes, across, q, score), capacity=domain_capacity
    )
    return allocate(dict(enumerate(domain_totals)), score, groups=codes, capacity=strata.capacity)


def propose(
    strata: pd.DataFrame,
    target: Target,
    *,
    within: WithinRule = "optimal",
    total: float | None = None,
    budget: float | None = None,
    across: AcrossRule = "power",
    q: float = 0.5,
    min_stratum_completes: float = 5.0,
) -> Proposal:
    """Rates per stratum that meet ``target`` at least cost, or that spend a fixed total.

    Without ``total`` and ``budget``: the cheapest rates meeting the target in every ``by``
    domain with the target's assurance (exactly cheapest for one ``by`` dimension; see the
    module docstring for several), every stratum giving at least ``min_stratum_completes``
    expected completes or inviting everyone. With ``total`` (expected completes per period)
    or ``budget`` (cost per period): that much is shared among the first dimension's domains
    by ``across`` (``"power"`` with exponent ``q``: Bankier 1988) and within them by
    ``within``. A total or budget beyond inviting everyone is cut to inviting everyone.
    """
    if within not in _WITHIN:
        raise SampleDesignError(f"within: expected one of {_WITHIN}, got {within!r}")
    if across not in _ACROSS:
        raise SampleDesignError(f"across: expected one of {_ACROSS}, got {across!r}")
    if total is not None and budget is not None:
        raise SampleDesignError("total, budget: give at most one of them")
    data = _read_strata(strata, target)
    score = _within_score(data, within)
    codes = _primary_codes(data, target.by[0])
    method: dict[str, Any] = {"within": within}
    if total is None and budget is None:
        if not min_stratum_completes >= 0:
            raise SampleDesignError(
                f"min_stratum_completes: expected a number >= 0, got {min_stratum_completes!r}"
            )
        completes = _cheapest(data, target, score, float(min_stratum_completes))
        method["rule"] = "least cost meeting the target"
        method["min_stratum_completes"] = min_stratum_completes
    else:
        method["across"] = across
        if across == "power":
            method["q"] = q
        if total is not None:
            if not total > 0:
                raise SampleDesignError(f"total: expected a number > 0, got {total!r}")
            completes = _fixed_total(data, codes, float(total), across, q, score)
            method["rule"] = f"fixed total of {total:g} completes"
        else:
            assert budget is not None
            if not budget > 0:
                raise SampleDesignError(f"budget: expected a number > 0, got {budget!r}")
            completes = _for_budget(data, codes, float(budget), across, q, score)
            method["rule"] = f"fixed budget of {budget:g}"
    rates = np.minimum(completes / data.capacity, 1.0)
    rates = np.where(rates > 1.0 - 1e-9, 1.0, rates)  # capped strata: exactly everyone
    table = data.table.copy()
    table["rate"] = rates
    return evaluate(table, target, method=method)


def _cheapest(strata: _Strata, target: Target, score: np.ndarray, min_stratum: float) -> np.ndarray:
    """Least-cost completes per stratum: the largest of each ``by`` dimension's own
    least-cost allocation (with the per-stratum floor), then :func:`_meet_targets`."""
    completes = np.minimum(np.full(score.shape, min_stratum), strata.capacity)
    for dimension in target.by:
        completes = np.maximum(completes, _cheapest_for(strata, target, dimension, score))
    return _meet_targets(strata, target, score, completes)


def _cheapest_for(strata: _Strata, target: Target, dimension: str, score: np.ndarray) -> np.ndarray:
    """Step 2 of the module docstring for one dimension (strata outside it get 0)."""
    if dimension == NATIONAL:
        labels = np.full(score.size, NATIONAL, dtype=object)
    else:
        labels = strata.table[dimension].to_numpy(dtype=object)
    sub = labels != ""
    if not sub.any():
        raise SampleDesignError(
            f"by: no stratum has a {dimension}; add it to the strata or drop it from by"
        )
    codes = np.full(score.size, -1, dtype=np.intp)
    codes[sub] = pd.factorize(labels[sub], sort=True)[0]
    g = int(codes.max()) + 1
    own = _Domains.of(strata.table, (dimension,))
    v_target = _target_variance(target, own, strata)
    z_a = float(stats.norm.ppf(target.assurance))
    capacity = np.where(sub, strata.capacity, 0.0)
    c = np.where(sub, codes, 0)
    weight = np.where(sub, score, 0.0)
    domain_capacity = np.bincount(c, weights=capacity, minlength=g)
    shares = weight / np.bincount(c, weights=weight, minlength=g)[c]
    ratio = np.ones(g)
    completes = np.zeros_like(score)
    volume = np.where(sub, strata.volume, 0.0)
    for _ in range(8):  # fixed point in the assurance ratio and the capacity-capped shares
        totals = stratified_completes(v_target * ratio, volume, strata.sd, shares, groups=c)
        totals = np.minimum(np.maximum(totals, target.min_completes), domain_capacity)
        completes = allocate(dict(enumerate(totals)), weight, groups=c, capacity=capacity)
        shares = completes / np.bincount(c, weights=completes, minlength=g)[c]
        precision = _domain_variance(completes, strata, own, target)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = precision.variance / precision.assured(z_a)
        ratio = np.where(np.isfinite(step) & (step > 0), step, ratio)
    return completes


def _for_budget(
    strata: _Strata, codes: np.ndarray, budget: float, across: str, q: float, score: np.ndarray
) -> np.ndarray:
    """The largest fixed total whose cost stays within ``budget`` (bisection: cost is monotone)."""
    cost = strata.cost_per_complete
    if np.all(cost <= 0):
        raise SampleDesignError("budget: every stratum costs 0 per complete; give costs or a total")
    low, high = 0.0, float(np.sum(np.where(score > 0, strata.capacity, 0)))
    if float(cost @ _fixed_total(strata, codes, high, across, q, score)) <= budget:
        return _fixed_total(strata, codes, high, across, q, score)
    for _ in range(60):
        middle = (low + high) / 2
        if float(cost @ _fixed_total(strata, codes, middle, across, q, score)) <= budget:
            low = middle
        else:
            high = middle
    return _fixed_total(strata, codes, max(low, 1e-9), across, q, score)


# --------------------------------------------------------------------------- evaluation


def evaluate(
    strata: pd.DataFrame, target: Target, *, method: Mapping[str, Any] | None = None
) -> Proposal:
    """What plan ``strata`` (inputs plus a ``rate`` column) delivers against ``target``."""
    data = _read_strata(strata, target)
    if "rate" not in data.table.columns:
        raise SampleDesignError("rate: expected a 'rate' column (invitation probability)")
    rates = _numeric(data.table, "rate")
    _check_range(data.table, "rate", rates, (rates >= 0) & (rates <= 1), "a rate in [0, 1]")
    invitations = rates * data.volume
    completes = invitations * data.response_rate
    table = data.table.copy()
    table["rate"] = rates
    table["invitations"] = invitations
    table["completes"] = completes
    table["capped"] = rates >= 1.0 - 1e-12
    table["sms_parts"] = invitations * data.parts
    table["cost"] = invitations * data.cost_per_invitation
    domains = _domain_table(data, target, completes, invitations)
    return Proposal(target=target, strata=table, domains=domains, method=dict(method or {}))


def _domain_table(
    strata: _Strata, target: Target, completes: np.ndarray, invitations: np.ndarray
) -> pd.DataFrame:
    domains = _Domains.of(strata.table, (NATIONAL, *DIMENSIONS))
    z = z_value(target.confidence)
    precision = _domain_variance(completes, strata, domains, target)
    assured_variance = precision.assured(float(stats.norm.ppf(target.assurance)))
    margin = z * np.sqrt(precision.variance)
    assured_margin = z * np.sqrt(assured_variance)
    volume = domains.sum(strata.volume)
    if strata.mean is not None:
        domain_mean = domains.sum(strata.volume * strata.mean) / volume
        cv = np.sqrt(precision.variance) / domain_mean
        assured_cv = np.sqrt(assured_variance) / domain_mean
    else:
        domain_mean = np.full(volume.shape, np.nan)
        cv = assured_cv = np.full(volume.shape, np.nan)
    is_target = np.isin(domains.dimension, target.by)
    goal = target.cv if target.cv is not None else target.margin
    assert goal is not None
    goal_variance = _target_variance(target, domains, strata)
    assured = assured_cv if target.cv is not None else assured_margin
    p_meet = precision.p_meet(goal_variance)
    n = domains.sum(completes)
    enough = n >= target.min_completes * (1 - 1e-9)
    within = assured <= goal * (1 + 1e-6)
    whole = precision.folded <= MAX_FOLDED_SHARE
    publishable = is_target & enough & within & whole
    full = domains.sum((invitations < strata.volume * (1 - 1e-9)).astype(float)) == 0
    notes = np.select(
        [~is_target, publishable, ~enough, ~whole, full],
        [
            "",
            "publishable",
            f"fewer than {target.min_completes:g} completes",
            "strata too small: use coarser strata",
            "not reachable: misses the target even inviting everyone",
        ],
        default="misses the target",
    )
    table = pd.DataFrame(
        {
            "dimension": domains.dimension,
            "domain": domains.value,
            "strata": np.asarray(domains.membership.sum(axis=0)).ravel().astype(int),
            "volume": volume,
            "invitations": domains.sum(invitations),
            "completes": n,
            "mean": domain_mean,
            "margin": margin,
            "assured_margin": assured_margin,
            "cv": cv,
            "assured_cv": assured_cv,
            "target": np.where(is_target, goal, np.nan),
            "p_meet": np.where(is_target, p_meet, np.nan),
            "folded": precision.folded,
            "publishable": publishable,
            "note": notes,
        }
    )
    return table


# ----------------------------------------------------------------------------- summary


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
        target_text = "" if np.isnan(row.target) else fmt(row.target)
        p_text = "" if np.isnan(row.p_meet) else f"{row.p_meet:.0%}"
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


# --------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class SimulationResult:
    """What simulated periods of a plan delivered.

    ``domains``: one row per (``dimension``, ``domain``) as in the proposal, with the
    plan's ``publishable``, ``target`` and expected ``margin``, and from the simulation
    ``margin_median`` and ``margin_p90`` (realised margins), expected ``cv`` with the realised
    ``cv_median`` and ``cv_p90``, ``share_met``
    (periods whose realised margin, or CV, met the target), ``coverage`` (periods whose
    interval covered the domain's expected mean), ``respondents_mean``, ``respondents_p05``
    and ``share_collapsed`` (periods in which a stratum of the domain had fewer than two
    respondents and was folded into the rest). ``periods`` and ``seed`` say what was drawn.
    ``by_period`` has one row per period and domain: ``period`` (0-based), ``dimension``,
    ``domain``, ``estimate``, ``margin`` and ``respondents``, for staff who want the
    distributions.
    """

    domains: pd.DataFrame
    periods: int
    seed: int | None
    by_period: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    measure: Literal["margin", "cv"] = "margin"

    def summary(self) -> str:
        """One line per domain: target, expected and realised margins (or CVs), share met."""
        d = self.domains
        m = self.measure
        fmt = (lambda x: f"{x:.2%}") if m == "cv" else (lambda x: f"{x:.2f}")
        header = (
            f"{'dimension':<10} {'domain':<24} {'publish':>7} {'target':>7} {'expected':>8} "
            f"{'median':>8} {'p90':>8} {'met':>6} {'cover':>6} {'resp':>8}"
        )
        lines = [
            f"Simulated periods: {self.periods} (seed {self.seed})",
            "",
            header,
            "-" * len(header),
        ]
        for row in d.itertuples(index=False):
            target = "" if np.isnan(row.target) else _fmt(fmt, row.target)
            met = "" if np.isnan(row.share_met) else f"{row.share_met:.0%}"
            publish = "yes" if row.publishable else "no"
            expected, median, p90 = (getattr(row, f"{m}{k}") for k in ("", "_median", "_p90"))
            lines.append(
                f"{row.dimension:<10} {str(row.domain)[:24]:<24} {publish:>7} "
                f"{target:>7} {_fmt(fmt, expected):>8} {_fmt(fmt, median):>8} "
                f"{_fmt(fmt, p90):>8} {met:>6} {row.coverage:>6.0%} {row.respondents_mean:>8.1f}"
            )
        return "\n".join(line.rstrip() for line in lines)


@dataclass(frozen=True)
class _Draw:
    """One batch of simulated periods: per period x stratum counts and answer moments."""

    frame: np.ndarray  # transactions (periods x strata)
    sampled: np.ndarray
    respondents: np.ndarray
    total: np.ndarray  # sum of answers
    squares: np.ndarray  # sum of squared deviations from the stratum's sample mean
    answers: np.ndarray | None = None  # flat answers, period-major then stratum (kept if asked)


def _beta_parameters(mean: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m, v = mean / 100.0, (sd / 100.0) ** 2
    t = m * (1 - m) / v - 1.0
    return m * t, (1 - m) * t


def _draw(
    rng: np.random.Generator,
    strata: _Strata,
    rates: np.ndarray,
    periods: int,
    measure: str,
    *,
    keep_answers: bool = False,
) -> _Draw:
    """Draw ``periods`` periods at once (vectorised: no loop over transactions or answers)."""
    assert strata.mean is not None
    h = strata.volume.size
    frame = rng.poisson(strata.volume, size=(periods, h))
    sampled = rng.binomial(frame, rates)
    respondents = rng.binomial(sampled, strata.response_rate)
    counts = respondents.ravel()
    cell = np.repeat(np.arange(counts.size), counts)
    stratum = cell % h
    if measure == "proportion":
        answers = 100.0 * (rng.random(cell.size) < strata.mean[stratum] / 100.0)
    else:
        a, b = _beta_parameters(strata.mean, strata.raw_sd)
        answers = 100.0 * rng.beta(a[stratum], b[stratum])
    total = np.bincount(cell, weights=answers, minlength=counts.size)
    cell_mean = np.divide(total, counts, out=np.zeros_like(total), where=counts > 0)
    squares = np.bincount(cell, weights=(answers - cell_mean[cell]) ** 2, minlength=counts.size)
    shape = (periods, h)
    return _Draw(
        frame=frame,
        sampled=sampled,
        respondents=respondents,
        total=total.reshape(shape),
        squares=squares.reshape(shape),
        answers=answers if keep_answers else None,
    )


def _estimate(
    draw: _Draw, strata: _Strata, domains: _Domains, confidence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per period x domain: the stratified mean, its variance, respondents, collapsed flag."""
    r = draw.respondents.astype(float)
    big_n = draw.frame.astype(float)
    usable = r >= 2
    n_used = np.where(usable, big_n, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ybar = np.where(usable, draw.total / r, 0.0)
        s2 = np.where(usable, draw.squares / (r - 1), 0.0)
        contribution = np.where(
            usable, n_used**2 * strata.deff * np.clip(1 - r / big_n, 0, None) * s2 / r, 0.0
        )
    domain_n = domains.sum(n_used)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = domains.sum(n_used * ybar) / domain_n
        variance = domains.sum(contribution) / domain_n**2
    estimate = np.where(domain_n > 0, estimate, np.nan)
    variance = np.where(domain_n > 0, variance, np.inf)
    present = (big_n > 0) & ~usable
    collapsed = domains.sum(present.astype(float)) > 0
    return estimate, variance, domains.sum(r), collapsed


def _plan_rates(proposal: Proposal, need_mean: bool) -> tuple[_Strata, np.ndarray]:
    if not isinstance(proposal, Proposal):
        raise SampleDesignError(
            f"proposal: expected a Proposal (propose, evaluate or Proposal.from_records), got "
            f"{type(proposal).__name__}"
        )
    strata = _read_strata(proposal.strata, proposal.target, need_mean=need_mean)
    rates = _numeric(strata.table, "rate")
    return strata, rates


def simulate(
    proposal: Proposal, *, periods: int = 200, seed: int | None = None
) -> SimulationResult:
    """Draw ``periods`` synthetic periods of the plan and report realised precision per domain.

    See the module docstring for what is drawn and how each period is estimated. Needs the
    ``mean`` column (the answers are drawn around it). ``numpy.random.default_rng(seed)`` is
    the only source of randomness: the same seed gives the same result.
    """
    if not isinstance(periods, int) or periods < 1:
        raise SampleDesignError(f"periods: expected a whole number >= 1, got {periods!r}")
    strata, rates = _plan_rates(proposal, need_mean=True)
    target = proposal.target
    domains = _Domains.of(strata.table, (NATIONAL, *DIMENSIONS))
    rng = np.random.default_rng(seed)
    z = z_value(target.confidence)
    expected_answers = float(np.sum(strata.volume * rates * strata.response_rate))
    batch = int(max(1, min(periods, 2_000_000 // max(expected_answers, 1.0))))
    estimates, variances, respondents, collapsed = [], [], [], []
    done = 0
    while done < periods:
        size = min(batch, periods - done)
        draw = _draw(rng, strata, rates, size, target.measure)
        e, v, r, c = _estimate(draw, strata, domains, target.confidence)
        estimates.append(e)
        variances.append(v)
        respondents.append(r)
        collapsed.append(c)
        done += size
    estimate = np.vstack(estimates)
    variance = np.vstack(variances)
    resp = np.vstack(respondents)
    margin = z * np.sqrt(variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = np.sqrt(variance) / estimate
    assert strata.mean is not None
    true_mean = domains.sum(strata.volume * strata.mean) / domains.sum(strata.volume)
    covered = np.abs(estimate - true_mean) <= margin
    planned = proposal.domains.set_index(["dimension", "domain"])
    keys = list(zip(domains.dimension, domains.value, strict=True))
    plan_rows = planned.reindex(keys)
    goal = target.cv if target.cv is not None else target.margin
    realised = cv if target.cv is not None else margin
    is_target = np.isin(domains.dimension, target.by)
    met = np.where(np.isfinite(realised), realised <= goal, False)
    table = pd.DataFrame(
        {
            "dimension": domains.dimension,
            "domain": domains.value,
            "publishable": plan_rows["publishable"].to_numpy(dtype=bool),
            "target": np.where(is_target, goal, np.nan),
            "margin": plan_rows["margin"].to_numpy(dtype=float),
            "margin_median": np.median(margin, axis=0),
            "margin_p90": np.quantile(margin, 0.9, axis=0),
            "cv": plan_rows["cv"].to_numpy(dtype=float),
            "cv_median": np.median(np.where(np.isfinite(cv), cv, np.inf), axis=0),
            "cv_p90": np.quantile(np.where(np.isfinite(cv), cv, np.inf), 0.9, axis=0),
            "share_met": np.where(is_target, met.mean(axis=0), np.nan),
            "coverage": covered.mean(axis=0),
            "respondents_mean": resp.mean(axis=0),
            "respondents_p05": np.quantile(resp, 0.05, axis=0),
            "share_collapsed": np.vstack(collapsed).mean(axis=0),
        }
    )
    d = domains.value.size
    by_period = pd.DataFrame(
        {
            "period": np.repeat(np.arange(periods), d),
            "dimension": np.tile(domains.dimension, periods),
            "domain": np.tile(domains.value, periods),
            "estimate": estimate.ravel(),
            "margin": margin.ravel(),
            "respondents": resp.ravel(),
        }
    )
    return SimulationResult(
        domains=table,
        periods=periods,
        seed=seed,
        by_period=by_period,
        measure="cv" if target.cv is not None else "margin",
    )


def synthetic_responses(proposal: Proposal, *, seed: int | None = None) -> pd.DataFrame:
    """One simulated period as respondent rows: what :func:`simulate` draws for its first period.

    Columns: ``stratum``, the four dimensions, ``N_h`` (the period's transactions in the
    stratum), ``respondents_h``, ``weight`` (``N_h / respondents_h``) and ``answer``. Handy for
    trying the analysis pipeline (``analysis.SurveyDesign(df, weights="weight",
    strata="stratum", fpc="N_h")``) on a plan before it runs.
    """
    strata, rates = _plan_rates(proposal, need_mean=True)
    rng = np.random.default_rng(seed)
    draw = _draw(rng, strata, rates, 1, proposal.target.measure, keep_answers=True)
    assert draw.answers is not None
    counts = draw.respondents[0]
    rows = np.repeat(np.arange(counts.size), counts)
    table = strata.table.iloc[rows][["stratum", *DIMENSIONS]].reset_index(drop=True)
    table["N_h"] = draw.frame[0][rows]
    table["respondents_h"] = counts[rows]
    table["weight"] = table["N_h"] / table["respondents_h"]
    table["answer"] = draw.answers
    return table
