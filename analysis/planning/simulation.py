"""Synthetic periods drawn under a plan (`simulate`), to check it meets its targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, cast

import numpy as np
import pandas as pd

from analysis.planning.inputs import _numeric, _read_strata, _Strata
from analysis.planning.precision import _Domains
from analysis.planning.targets import DIMENSIONS, NATIONAL, Proposal, _fmt
from analysis.samplesize import (
    SampleDesignError,
    z_value,
)


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
            row_target, share_met = cast(float, row.target), cast(float, row.share_met)
            target = "" if np.isnan(row_target) else _fmt(fmt, row_target)
            met = "" if np.isnan(share_met) else f"{share_met:.0%}"
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
    assert goal is not None  # a Target has exactly one of cv and margin
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
