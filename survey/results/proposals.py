"""Sample-design proposals from the platform's own history, written as plan files.

`propose_plan` reads, for a history period (by default the last complete months before today
and before the planned period: survey.results.plan_history, which also cuts days to come and
says when the history is short or partial), per stratum of the plan's strata dimensions:

    volume          eligible transactions (frame counts) per day since the agency's first
                    report in the history, scaled to the planned period's days
    response_rate   completed / invited among the history's invitations (by transaction day)
    mean, sd        of the 0-100 index among the history's completed responses (the export)
    parts           SMS parts sent per invitation (the outbox)

A stratum with fewer than `Assumptions.min_invitations` invitations takes its agency's pooled
response rate, and failing that the assumed one; likewise the index's mean and SD with
`min_responses`. The proposal's inputs table says which source each number came from.

It then calls `analysis.planning.propose` and returns two texts: the plan file (the format
of `survey.sampling.plans`, with the summary table as comments at the top and one rate rule per
stratum;
questionnaires and contact settings copied from the plan in force on the period's first day,
else the latest plan) and its design sidecar
(`<name>.design.yaml`: the target, the method and the per-stratum inputs), which
`simulate_plan` reads back with the plan file, after any edit of the rates, to check it.

Strata with no transactions in the history get the plan's `default_rate`, set to the proposal's
overall rate (expected invitations / expected transactions).

With the totals it gives their spread: what each past month's traffic, response and SMS parts
would have made of them, and a prediction interval (survey.results.plan_history).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from sqlalchemy.orm import Session

from analysis.planning import (
    Proposal,
    SimulationResult,
    Target,
    evaluate,
    propose,
    simulate,
)
from analysis.samplesize import SampleDesignError
from questionnaires.safe_yaml import load_yaml
from survey.context import AppContext
from survey.errors import InvalidInput, NotFound, Problem
from survey.ingestion.frames import frame_counts
from survey.kernel import audit
from survey.kernel.db import transaction
from survey.kernel.locale import fold_digits
from survey.kernel.periods import Period, PeriodError, format_date, parse_day, parse_period
from survey.kernel.principal import Principal
from survey.kernel.spreadsheet import csv_text
from survey.models import SamplingPlan
from survey.results import store
from survey.results.export import export_responses
from survey.results.plan_history import (
    HistoryNote,
    Spread,
    default_history,
    month_table,
    read_history,
    total_spread,
)
from survey.sampling import plans
from survey.sampling.draw import PlanSpec, RateRule, Unit
from survey.sampling.plans import DIMENSIONS, parse_plan

__all__ = [
    "Assumptions",
    "PlanProposal",
    "PlanSimulation",
    "ProposalRequest",
    "design_inputs",
    "parse_request",
    "period_record",
    "proposal_records",
    "propose_plan",
    "read_inputs_csv",
    "simulate_plan",
    "simulation_records",
]

_PLAN_KEYS = ("contact_rule_days", "quiet_hours", "reminder_after_hours", "expires_after_days")
_CHOICE_KEYS = ("service", "channel", "questionnaire", "version", "mode")
_SOURCE_COLUMNS = (
    "stratum",
    "response_rate_source",
    "index_source",
    "history_eligible",
    "history_invitations",
    "history_completes",
    "history_responses",
)
_NUMERIC_COLUMNS = (
    "volume",
    "response_rate",
    "sd",
    "mean",
    "deff",
    "parts_per_invitation",
    "cost_per_part",
    "cost_per_invitation",
)


@dataclass(frozen=True)
class Assumptions:
    """What a stratum without enough history is assumed to have, and the SMS price."""

    response_rate: float = 0.2
    sd: float = 25.0
    mean: float = 70.0
    parts_per_invitation: float = 2.0
    cost_per_part: float = 1.0
    deff: float = 1.0
    min_invitations: int = 30
    min_responses: int = 20


@dataclass(frozen=True)
class PlanProposal:
    """A proposal: the plan file text, its design sidecar text, and the computed proposal;
    from a history, what to know about it (`notes`) and the totals' spread over its months."""

    plan_text: str
    design_text: str
    proposal: Proposal
    inputs: pd.DataFrame
    history: Period | None = None  # the history read (None: inputs were given)
    notes: tuple[HistoryNote, ...] = ()
    spread: Spread | None = None


@dataclass(frozen=True)
class PlanSimulation:
    """A plan file's rates evaluated against its design inputs, and simulated."""

    proposal: Proposal
    result: SimulationResult


def _design_error(exc: SampleDesignError, field: str) -> InvalidInput:
    return InvalidInput("the sample design cannot be computed", [Problem(str(exc), field=field)])


def _stratum_key(row: Mapping[Any, Any], strata: Sequence[str]) -> str:
    return "|".join(f"{dimension}={row[dimension]}" for dimension in strata)


def _check_strata(strata: Sequence[str]) -> tuple[str, ...]:
    dims = tuple(strata)
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise InvalidInput(
            "unknown strata dimension",
            [Problem(f"expected some of {', '.join(DIMENSIONS)}; got {unknown[0]!r}", "strata")],
        )
    if "agency" not in dims:
        raise InvalidInput(
            "the strata must split by agency",
            [Problem("a proposal plans per agency; add 'agency' to the strata", "strata")],
        )
    return dims


# ---------------------------------------------------------------------------------- inputs


def design_inputs(
    context: AppContext,
    *,
    history: Period,
    planned_days: int,
    strata: Sequence[str],
    assumptions: Assumptions = Assumptions(),
    agency_days: Callable[[str], int] | None = None,
) -> pd.DataFrame:
    """Per stratum: the inputs of `analysis.planning` from `history`, and their sources.
    Volumes are per day of history (`agency_days(agency)` days for an agency that started
    reporting inside it; default all of it), scaled to `planned_days`.

    Columns: `analysis.planning.STRATUM_COLUMNS` plus `history_eligible`,
    `history_invitations`, `history_completes`, `history_responses`, `response_rate_source`
    and `index_source` (`stratum`, `agency` or `assumed`).
    """
    dims = _check_strata(strata)
    end = history.end - timedelta(days=1)
    group = ("agency", *[d for d in dims if d != "agency"])
    with context.read_sessions() as session:
        counts = frame_counts(session, start=history.start, end=end, by=group)
        invited = _invitations(session, history, group)
        parts = _parts_per_invitation(session, history)
    volume = pd.DataFrame(
        [{**t.group, "history_eligible": t.eligible} for t in counts],
        columns=[*group, "history_eligible"],
    )
    volume = volume[volume["history_eligible"] > 0]
    if volume.empty:
        raise InvalidInput(
            "no transactions in the history period",
            [
                Problem(
                    f"{history.label} ({format_date(history.start)} to "
                    f"{format_date(end)}) has no eligible transactions to plan from",
                    "history",
                )
            ],
        )
    for dimension in DIMENSIONS:
        if dimension not in volume.columns:
            volume[dimension] = ""
        volume[dimension] = volume[dimension].fillna("").astype(str)
    table = volume.merge(invited, on=list(group), how="left")
    table[["history_invitations", "history_completes"]] = (
        table[["history_invitations", "history_completes"]].fillna(0).astype(int)
    )
    table = table.merge(_index_moments(context, history, group), on=list(group), how="left")
    table["history_responses"] = pd.to_numeric(table["history_responses"]).fillna(0).astype(int)
    for column in ("index_mean", "index_sd"):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(float)
    days = table["agency"].map(agency_days) if agency_days else history.days
    table["volume"] = table["history_eligible"] * planned_days / days
    _fill_response_rate(table, assumptions)
    _fill_index(table, assumptions)
    table["stratum"] = [_stratum_key(row, dims) for row in table.to_dict(orient="records")]
    table["deff"] = assumptions.deff
    table["parts_per_invitation"] = parts if parts is not None else assumptions.parts_per_invitation
    table["cost_per_part"] = assumptions.cost_per_part
    table["cost_per_invitation"] = 0.0
    ordered = [
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
        "history_eligible",
        "history_invitations",
        "history_completes",
        "history_responses",
        "response_rate_source",
        "index_source",
    ]
    return table[ordered].sort_values("stratum").reset_index(drop=True)


def _invitations(session: Session, history: Period, group: Sequence[str]) -> pd.DataFrame:
    rows = store.invitation_counts(session, history, group)
    frame = pd.DataFrame(rows, columns=[*group, "history_invitations", "history_completes"])
    for dimension in group:
        frame[dimension] = frame[dimension].fillna("").astype(str)
    return frame


def _parts_per_invitation(session: Session, history: Period) -> float | None:
    """SMS parts sent per invitation of the history (None when nothing was sent)."""
    parts, invitations = store.sent_parts(session, history)
    if not invitations:
        return None
    return float(parts) / float(invitations)


def _index_moments(context: AppContext, history: Period, group: Sequence[str]) -> pd.DataFrame:
    columns = [*group, "history_responses", "index_mean", "index_sd"]
    export = export_responses(context, history.start, history.end - timedelta(days=1))
    responses = export.responses
    if responses.empty or "index" not in responses.columns:
        return pd.DataFrame(columns=columns)
    data = responses[[*group, "index"]].copy()
    for dimension in group:
        data[dimension] = data[dimension].fillna("").astype(str)
    data["index"] = pd.to_numeric(data["index"], errors="coerce")
    data = data.dropna(subset=["index"])
    moments = (
        data.groupby(list(group))["index"]
        .agg(history_responses="count", index_mean="mean", index_sd="std")
        .reset_index()
    )
    return moments[columns]


def _fill_response_rate(table: pd.DataFrame, assumptions: Assumptions) -> None:
    own = table["history_invitations"] >= assumptions.min_invitations
    pooled = table.groupby("agency")[["history_invitations", "history_completes"]].transform("sum")
    agency_ok = pooled["history_invitations"] >= assumptions.min_invitations
    with np.errstate(divide="ignore", invalid="ignore"):
        own_rate = table["history_completes"] / table["history_invitations"]
        agency_rate = pooled["history_completes"] / pooled["history_invitations"]
    rate = np.where(own, own_rate, np.where(agency_ok, agency_rate, assumptions.response_rate))
    source = np.where(own, "stratum", np.where(agency_ok, "agency", "assumed"))
    # a history with no completes at all says nothing usable about the rate: assume
    zero = rate <= 0
    table["response_rate"] = np.where(zero, assumptions.response_rate, rate)
    table["response_rate_source"] = np.where(zero, "assumed", source)


def _fill_index(table: pd.DataFrame, assumptions: Assumptions) -> None:
    n = table["history_responses"].fillna(0)
    own = (n >= assumptions.min_responses) & (table["index_sd"] > 0)
    agency_n = n.groupby(table["agency"]).transform("sum")
    mean_sum = (table["index_mean"].fillna(0) * n).groupby(table["agency"]).transform("sum")
    agency_mean = mean_sum / agency_n.where(agency_n > 0)
    # pooled within-stratum variance of the agency (strata with two or more responses)
    ss = ((n - 1).clip(lower=0) * table["index_sd"].fillna(0) ** 2).groupby(table["agency"])
    dof = (n - 1).clip(lower=0).groupby(table["agency"]).transform("sum")
    agency_sd = np.sqrt(ss.transform("sum") / dof.where(dof > 0))
    agency_ok = (agency_n >= assumptions.min_responses) & (agency_sd > 0)
    table["mean"] = np.where(
        own, table["index_mean"], np.where(agency_ok, agency_mean, assumptions.mean)
    )
    table["sd"] = np.where(own, table["index_sd"], np.where(agency_ok, agency_sd, assumptions.sd))
    table["index_source"] = np.where(own, "stratum", np.where(agency_ok, "agency", "assumed"))
    # the beta model of the answers needs 0 < mean < 100 and sd^2 < mean (100 - mean)
    table["mean"] = table["mean"].clip(1.0, 99.0)
    limit = np.sqrt(table["mean"] * (100 - table["mean"])) * 0.99
    table["sd"] = np.minimum(table["sd"], limit)


def read_inputs_csv(text: str, *, file: str) -> pd.DataFrame:
    """A per-stratum inputs table from CSV text (the columns of `analysis.planning`:
    `STRATUM_COLUMNS`); numbers are checked here, ranges by the design itself."""
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InvalidInput(f"{file}: not a readable CSV table: {exc}") from None
    table.columns = [str(c).strip() for c in table.columns]
    required = ("stratum", "agency", "service", "channel", "volume", "response_rate")
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InvalidInput(
            f"{file}: missing columns",
            [Problem(f"expected a column {c!r}", field=c) for c in missing],
        )
    problems = []
    for column in _NUMERIC_COLUMNS:
        if column not in table.columns:
            continue
        raw = table[column].str.strip()
        values = pd.to_numeric(raw.where(raw != ""), errors="coerce")
        for position in np.flatnonzero((values.isna() & (raw != "")).to_numpy()):
            problems.append(
                Problem(
                    f"expected a number, got {raw.iloc[position]!r}",
                    field=column,
                    row=int(position) + 2,  # the header is line 1
                )
            )
        table[column] = values
    if "province" not in table.columns:
        table["province"] = ""
    if problems:
        raise InvalidInput(f"{file}: some values are not numbers", problems)
    return table


def _given_inputs(inputs: pd.DataFrame, dims: Sequence[str]) -> pd.DataFrame:
    """Inputs from a file: one row per stratum of the plan's dimensions, sources marked."""
    table = inputs.reset_index(drop=True).copy()
    missing = [d for d in dims if d not in table.columns]
    if missing:
        raise InvalidInput(
            "the inputs do not name the strata",
            [Problem(f"expected a column {missing[0]!r} (a strata dimension)", field=missing[0])],
        )
    for dimension in DIMENSIONS:
        if dimension not in table.columns:
            table[dimension] = ""
        table[dimension] = table[dimension].fillna("").astype(str)
    repeated = table.duplicated(subset=list(dims), keep="first")
    if repeated.any():
        row = int(np.argmax(repeated.to_numpy()))
        key = ", ".join(f"{d}={table.at[row, d]!s}" for d in dims)
        raise InvalidInput(
            "the inputs repeat a stratum",
            [Problem(f"{key} appears twice (strata: {', '.join(dims)})", row=row + 2)],
        )
    for column in ("response_rate_source", "index_source"):
        if column not in table.columns:
            table[column] = "file"
    return table


# -------------------------------------------------------------------------------- proposal


def _base_plan(session: Session, day: date) -> SamplingPlan:
    """The plan in force on `day`, else the latest one."""
    row = plans.plan_in_force(session, day) or store.latest_plan(session)
    if row is None:
        raise NotFound(
            "no sampling plan to copy questionnaires and contact settings from; "
            "apply a plan first (survey plans apply FILE)"
        )
    return row


def propose_plan(
    context: AppContext,
    *,
    period: Period,
    target: Target,
    history: Period | None = None,
    strata: Sequence[str] | None = None,
    name: str | None = None,
    within: WithinRule = "optimal",
    total: float | None = None,
    budget: float | None = None,
    q: float = 0.5,
    assumptions: Assumptions = Assumptions(),
    inputs: pd.DataFrame | None = None,
) -> PlanProposal:
    """A proposed plan for `period` meeting `target`, from `history` (default: the last
    complete months before today and the period, survey.results.plan_history), or from
    `inputs` (a per-stratum table such as `read_inputs_csv` gives: a forecast, or the inputs of
    an earlier proposal edited). Strata default to those of the plan in force."""
    today = plans.today_in(context.clock(), context.settings.timezone)
    asked = history or default_history(period, today)
    with context.read_sessions() as session:
        base = _base_plan(session, period.start)
        dims = _check_strata(strata or base.strata)
        base_settings = {key: getattr(base, key) for key in _PLAN_KEYS}
        base_version = base.version
        choices = [
            {k: choice[k] for k in _CHOICE_KEYS if choice.get(k) is not None}
            for choice in base.questionnaires or []
        ]
        read = read_history(session, asked, period, today) if inputs is None else None
    given = inputs
    group = ("agency", *[d for d in dims if d != "agency"])
    if read is not None:
        if read.period.days == 0:
            raise InvalidInput(
                "the history has not begun yet",
                [Problem(f"{asked.label} has no day before today to read", "history")],
            )
        inputs = design_inputs(
            context,
            history=read.period,
            planned_days=period.days,
            strata=dims,
            assumptions=assumptions,
            agency_days=read.agency_days,
        )
    else:
        assert inputs is not None
        inputs = _given_inputs(inputs, dims)
    past = read.period if read is not None else asked
    try:
        proposal = propose(
            inputs,
            target,
            within=within,
            total=total,
            budget=budget,
            q=q,
        )
    except SampleDesignError as exc:
        raise _design_error(exc, "target") from None
    totals = proposal.totals
    overall = totals["invitations"] / float(proposal.strata["volume"].sum())
    plan: dict[str, Any] = {
        "name": name or f"proposal {period.label}",
        "starts": period.start,
        "strata": list(dims),
        "default_rate": _rate_text(overall),
        "rates": [
            {**{d: row[d] for d in dims}, "rate": _rate_text(row["rate"])}
            for row in proposal.strata.to_dict(orient="records")
        ],
        **base_settings,
        "questionnaires": choices,
    }
    spread = None
    if read is not None:
        with context.read_sessions() as session:
            months, sent = month_table(session, read, group)
        spread = total_spread(
            months,
            sent,
            proposal.strata,
            history=read,
            group=group,
            planned_days=period.days,
            expected=totals,
            default_rate=float(plan["default_rate"]),
        )
    notes = read.notes if read is not None else ()
    header = _header(
        period, past if given is None else None, base_version, inputs, proposal, notes, spread
    )
    plan_text = header + _plan_yaml(plan)
    design = {
        "period": period.label,
        "history": past.label if given is None else "inputs given with the command",
        "proposal": proposal.to_records(),
        "sources": inputs[[c for c in _SOURCE_COLUMNS if c in inputs.columns]].to_dict(
            orient="records"
        ),
    }
    design_text = (
        "# Design inputs of a sampling-plan proposal (read by `survey plans simulate`).\n"
        + yaml.safe_dump(_plain(design), sort_keys=False, allow_unicode=True, width=100)
    )
    return PlanProposal(
        plan_text,
        design_text,
        proposal,
        inputs,
        past if given is None else None,
        notes,
        spread,
    )


def _plan_yaml(plan: Mapping[str, Any]) -> str:
    """The plan as the plan-file docs write it: one flow mapping per rule and choice."""

    def flow(value: Any) -> str:
        dumped = yaml.safe_dump(
            value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10_000
        )
        return str(dumped).strip().removesuffix("...").strip()

    lines = []
    for key, value in plan.items():
        if key in ("rates", "questionnaires"):
            lines.append(f"{key}:" if value else f"{key}: []")
            lines += [f"  - {flow(item)}" for item in value]
        else:
            lines.append(f"{key}: {flow(value)}")
    return "\n".join(lines) + "\n"


def _rate_text(rate: float) -> float:
    """A rate rounded *up* to 4 significant digits (never to 0, never above 1)."""
    if rate <= 0:
        return 0.0
    digits = 3 - math.floor(math.log10(rate))
    scaled = round(rate * 10**digits, 6)  # 0.25 stays 0.25, not 0.2501
    return min(1.0, math.ceil(scaled) / 10**digits)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def spread_lines(spread: Spread | None) -> list[str]:
    """The totals' intervals in words (the plan file's header and the CLI print them)."""
    if spread is None:
        return []
    if not spread.intervals:
        return [f"No interval for the totals: {spread.method}."]
    words = {"invitations": "invitations", "completes": "completes", "cost": "cost"}
    parts = [
        f"{words[name]} {low:,.0f} to {high:,.0f}" for name, (low, high) in spread.intervals.items()
    ]
    return [f"Per period, {spread.method}:", "  " + "; ".join(parts)]


def _header(
    period: Period,
    history: Period | None,
    base_version: int,
    inputs: pd.DataFrame,
    proposal: Proposal,
    notes: Sequence[HistoryNote] = (),
    spread: Spread | None = None,
) -> str:
    last = period.end - timedelta(days=1)
    origin = (
        "Inputs from a per-stratum table given with the command"
        if history is None
        else f"Inputs from {history.label}: {format_date(history.start)} to "
        f"{format_date(history.end - timedelta(days=1))}"
    )
    sources = inputs["response_rate_source"].value_counts().to_dict()
    index_sources = inputs["index_source"].value_counts().to_dict()
    lines = [
        f"Sampling-plan proposal for {period.label}: {format_date(period.start)} to "
        f"{format_date(last)}",
        f"{origin}; questionnaires and contact settings from plan version {base_version}",
        "Response rates from: " + ", ".join(f"{k} {v}" for k, v in sorted(sources.items())),
        "Index mean and SD from: "
        + ", ".join(f"{k} {v}" for k, v in sorted(index_sources.items())),
        "",
        *proposal.summary().splitlines(),
        "",
        *spread_lines(spread),
        *(f"Note: {note.text}" for note in notes),
        *([""] if spread is not None or notes else []),
        "Edit the rates if you wish, check with `survey plans simulate FILE`, then activate",
        "with `survey plans apply FILE`.",
    ]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines) + "\n"


# ------------------------------------------------------------------------------ simulation


def simulate_plan(
    plan_text: str,
    design_text: str,
    *,
    file: str = "plan",
    periods: int = 200,
    seed: int | None = None,
) -> PlanSimulation:
    """Evaluate the plan file's rates (as `survey.sampling.draw` applies them) on the design inputs
    of its sidecar, and simulate `periods` periods."""
    plan = parse_plan(plan_text, file=file)
    design = _read_design(design_text, DESIGN_FIELD)
    try:
        records = dict(design["proposal"])
        strata = pd.DataFrame(list(records["strata"]))
        strata["rate"] = _plan_rates(plan, strata, file)
        proposal = evaluate(
            strata, Target.from_dict(records["target"]), method=records.get("method") or {}
        )
        result = simulate(proposal, periods=periods, seed=seed)
    except SampleDesignError as exc:
        raise _design_error(exc, "design") from None
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        # The sidecar is a file people edit: a missing key or a value of the wrong kind is
        # theirs to mend, not a server error.
        raise InvalidInput(
            f"{DESIGN_FIELD}: the design file is not as `survey plans propose` writes it "
            f"({type(exc).__name__}: {str(exc)[:120]}); propose the plan again",
            [Problem(f"{type(exc).__name__}: {str(exc)[:120]}", DESIGN_FIELD)],
        ) from None
    return PlanSimulation(proposal, result)


DESIGN_FIELD = "design_yaml"


def _read_design(text: str, file: str) -> Mapping[str, Any]:
    try:
        design = load_yaml(text)
    except (yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        reason = str(exc)[:200]
        raise InvalidInput(
            f"{file}: the design file is not valid YAML: {reason}", [Problem(reason, file)]
        ) from None
    if not isinstance(design, dict) or not isinstance(design.get("proposal"), dict):
        raise InvalidInput(
            f"{file}: not a design file (expected the 'proposal' written by `survey plans "
            "propose`)",
            [Problem("expected the 'proposal' mapping", file)],
        )
    return design


def _plan_rates(plan: Mapping[str, Any], strata: pd.DataFrame, file: str) -> np.ndarray:
    """Each design stratum's rate under the plan's rules (most specific match, else default)."""
    problems = []
    rules = []
    for index, entry in enumerate(plan.get("rates") or []):
        if not isinstance(entry, dict) or "rate" not in entry:
            problems.append(Problem("expected a mapping with a rate", f"rates[{index}]"))
            continue
        conditions = tuple((k, str(v)) for k, v in entry.items() if k in DIMENSIONS)
        rules.append(RateRule(conditions, float(entry["rate"])))
    default = plan.get("default_rate")
    default_rate = 0.0
    if isinstance(default, int | float) and not isinstance(default, bool):
        default_rate = float(default)
    else:
        problems.append(Problem(f"expected a number, got {default!r}", "default_rate"))
    if problems:
        raise InvalidInput(f"{file}: the plan's rates cannot be read", problems)
    try:
        spec = PlanSpec(
            plan_id=0,
            version=0,
            starts=date.min,
            seed=b"",
            strata=tuple(plan.get("strata") or ("agency", "service", "channel")),
            default_rate=default_rate,
            rules=tuple(rules),
        )
    except ValueError as exc:
        raise InvalidInput(
            f"{file}: the plan's rates cannot be read", [Problem(str(exc))]
        ) from None
    return np.array(
        [
            spec.rate(
                Unit(
                    agency=str(row["agency"]),
                    external_id="",
                    service=str(row["service"]),
                    channel=str(row["channel"]),
                    province=str(row.get("province") or ""),
                )
            )
            for row in strata.to_dict(orient="records")
        ]
    )


# ------------------------------------------------------------- requests and plain records

_REQUEST_FIELDS = (
    "period",
    "target_moe",
    "target_cv",
    "by",
    "measure",
    "history",
    "strata",
    "within",
    "total",
    "budget",
    "q",
    "cost_per_part",
    "assurance",
    "min_completes",
    "name",
)
WithinRule = Literal["optimal", "neyman", "proportional", "equal"]
WITHIN_RULES: tuple[WithinRule, ...] = ("optimal", "neyman", "proportional", "equal")
BY_CHOICES = (*DIMENSIONS, "all")


@dataclass(frozen=True)
class ProposalRequest:
    """What the staff API and page ask `propose_plan` for (the CLI's options, by name)."""

    period: Period
    target: Target
    history: Period | None = None
    strata: tuple[str, ...] | None = None
    name: str | None = None
    within: WithinRule = "optimal"
    total: float | None = None
    budget: float | None = None
    q: float = 0.5
    cost_per_part: float = 1.0

    def run(self, context: AppContext) -> PlanProposal:
        return propose_plan(
            context,
            period=self.period,
            target=self.target,
            history=self.history,
            strata=self.strata,
            name=self.name,
            within=self.within,
            total=self.total,
            budget=self.budget,
            q=self.q,
            assumptions=Assumptions(cost_per_part=self.cost_per_part),
        )


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(
    values: Mapping[str, Any], key: str, problems: list[Problem], *, positive: bool = False
) -> float | None:
    raw = values.get(key)
    if _blank(raw):
        return None
    if isinstance(raw, bool):
        problems.append(Problem(f"expected a number, got {raw!r}", key))
        return None
    try:
        number = float(fold_digits(str(raw).strip()))
    except ValueError:
        problems.append(Problem(f"expected a number, got {raw!r}", key))
        return None
    if not math.isfinite(number) or (positive and number <= 0):
        problems.append(Problem(f"expected a number > 0, got {raw!r}", key))
        return None
    return number


def _names(raw: Any) -> list[str]:
    if _blank(raw):
        return []
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        return [str(items)]
    return [str(item).strip() for item in items if str(item).strip()]


def parse_request(values: Mapping[str, Any]) -> ProposalRequest:
    """Read a proposal request (a JSON object or a form's fields); every problem at once.

    Fields: `period` (required), exactly one of `target_moe` and `target_cv`, `by` (a list or
    comma-separated dimensions; default agency), `measure`, `history`, `strata`, `within`,
    `total` or `budget` with `q`, `cost_per_part`, `assurance`, `min_completes`, `name`.
    """
    problems = [
        Problem(f"unknown field; expected some of {', '.join(_REQUEST_FIELDS)}", str(key))
        for key in values
        if key not in _REQUEST_FIELDS
    ]
    period = history = None
    if _blank(values.get("period")):
        problems.append(Problem("required, e.g. 1405-Q1", "period"))
    else:
        try:
            period = parse_period(str(values["period"]))
        except PeriodError as exc:
            problems.extend(exc.problems)
    if not _blank(values.get("history")):
        try:
            history = parse_period(str(values["history"]), field="history")
        except PeriodError as exc:
            problems.extend(exc.problems)
    moe = _number(values, "target_moe", problems, positive=True)
    cv = _number(values, "target_cv", problems, positive=True)
    if (moe is None) == (cv is None) and not any(
        p.field in ("target_moe", "target_cv") for p in problems
    ):
        problems.append(
            Problem("give exactly one of target_moe (points) and target_cv", "target_moe")
        )
    by = _names(values.get("by")) or ["agency"]
    for dimension in by:
        if dimension not in BY_CHOICES:
            problems.append(
                Problem(f"expected some of {', '.join(BY_CHOICES)}; got {dimension!r}", "by")
            )
    strata = _names(values.get("strata")) or None
    for dimension in strata or ():
        if dimension not in DIMENSIONS:
            problems.append(
                Problem(f"expected some of {', '.join(DIMENSIONS)}; got {dimension!r}", "strata")
            )
    measure_text = str(values.get("measure") or "mean").strip()
    measure: Literal["mean", "proportion"] = (
        "proportion" if measure_text == "proportion" else "mean"
    )
    if measure_text not in ("mean", "proportion"):
        problems.append(Problem(f"expected mean or proportion; got {measure_text!r}", "measure"))
    within_text = str(values.get("within") or "optimal").strip()
    within: WithinRule = "optimal"
    for rule in WITHIN_RULES:
        if within_text == rule:
            within = rule
            break
    else:
        problems.append(
            Problem(f"expected one of {', '.join(WITHIN_RULES)}; got {within_text!r}", "within")
        )
    total = _number(values, "total", problems, positive=True)
    budget = _number(values, "budget", problems, positive=True)
    if total is not None and budget is not None:
        problems.append(Problem("give at most one of total and budget", "budget"))
    q = _number(values, "q", problems)
    cost = _number(values, "cost_per_part", problems, positive=True)
    assurance = _number(values, "assurance", problems)
    minimum = _number(values, "min_completes", problems)
    name = None if _blank(values.get("name")) else str(values["name"]).strip()
    target = None
    if not problems:
        try:
            target = Target(
                by=tuple(by),
                margin=moe,
                cv=cv,
                measure=measure,
                min_completes=30.0 if minimum is None else minimum,
                assurance=0.95 if assurance is None else assurance,
            )
        except SampleDesignError as exc:
            problems.append(Problem(str(exc), "target"))
    if problems:
        count = len(problems)
        raise InvalidInput(
            f"the proposal request has {count} problem{'s' if count > 1 else ''}", problems
        )
    assert period is not None and target is not None
    return ProposalRequest(
        period=period,
        target=target,
        history=history,
        strata=tuple(strata) if strata else None,
        name=name,
        within=within,
        total=total,
        budget=budget,
        q=0.5 if q is None else q,
        cost_per_part=1.0 if cost is None else cost,
    )


def period_record(period: Period) -> dict[str, Any]:
    """A period with its days in both calendars (`last_day` inclusive)."""
    last = period.end - timedelta(days=1)
    return {
        "label": period.label,
        "calendar": period.calendar,
        "first_day": period.start.isoformat(),
        "last_day": last.isoformat(),
        "days": period.days,
        "text": f"{format_date(period.start)} to {format_date(last)}",
    }


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain JSON values: NaN and infinity become None, numpy scalars Python ones."""
    rows = []
    for record in table.to_dict(orient="records"):
        row = {}
        for key, value in record.items():
            value = _plain(value)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            row[str(key)] = value
        rows.append(row)
    return rows


def proposal_records(proposal: Proposal) -> dict[str, Any]:
    """The summary table as data: target, method, one row per domain, totals, strata."""
    return {
        "target": proposal.target.to_dict(),
        "method": dict(proposal.method),
        "domains": _records(proposal.domains),
        "totals": proposal.totals,
        "strata": _records(proposal.strata),
        "summary_text": proposal.summary(),
    }


def simulation_records(simulation: PlanSimulation) -> dict[str, Any]:
    """A simulated plan as data: the plan as edited, then what the simulated periods gave."""
    result = simulation.result
    return {
        "proposal": proposal_records(simulation.proposal),
        "simulation": {
            "periods": result.periods,
            "seed": result.seed,
            "measure": result.measure,
            "domains": _records(result.domains),
            "summary_text": result.summary(),
        },
    }


MAX_SIMULATED_PERIODS = 2000


def run_proposal(
    context: AppContext, principal: Principal, request: ProposalRequest
) -> dict[str, Any]:
    """Run a proposal and audit who asked for which target (shared by the API and the page)."""
    result = request.run(context)
    totals = result.proposal.totals
    domains = result.proposal.domains
    with transaction(context.sessions) as session:
        audit.record(
            session,
            principal,
            "plan.propose",
            "sampling_plan_proposal",
            request.period.label,
            after={
                "period": request.period.label,
                "target": request.target.to_dict(),
                "within": request.within,
                "invitations": round(totals["invitations"], 1),
                "cost": round(totals["cost"], 2),
                "publishable": int(domains["publishable"].sum()),
            },
            at=context.clock(),
        )
    return {
        "period": period_record(request.period),
        "history": (period_record(result.history) if result.history is not None else None),
        "history_notes": [note_record(note) for note in result.notes],
        "uncertainty": spread_record(result.spread, result.proposal.totals),
        **proposal_records(result.proposal),
        "sources": {
            "response_rate": _counts(result.inputs["response_rate_source"]),
            "index": _counts(result.inputs["index_source"]),
        },
        "plan_yaml": result.plan_text,
        "design_yaml": result.design_text,
        "inputs_csv": csv_text(result.inputs),
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    return _plain(value)


def note_record(note: HistoryNote) -> dict[str, Any]:
    """A note about the history as plain data (days as ISO dates)."""
    return {"kind": note.kind, "text": note.text, "values": _json_value(note.values)}


def spread_record(spread: Spread | None, totals: Mapping[str, float]) -> dict[str, Any] | None:
    """The totals with their intervals (None without intervals) and the months behind them."""
    if spread is None:
        return None
    return {
        "level": spread.level,
        "method": spread.method,
        "totals": {
            name: {
                "expected": float(totals[name]),
                "low": spread.intervals[name][0] if name in spread.intervals else None,
                "high": spread.intervals[name][1] if name in spread.intervals else None,
            }
            for name in ("invitations", "completes", "cost")
        },
        "months": _records(spread.months),
    }


def _counts(values: Any) -> dict[str, int]:
    """How many strata took each source (stratum, agency, assumed or file)."""
    return {str(k): int(v) for k, v in sorted(values.value_counts().items())}


def run_simulation(
    plan_yaml: str, design_yaml: str, periods: int, seed: int | None
) -> dict[str, Any]:
    """Simulate a plan file against its design sidecar (shared by the API and the page)."""
    if not 1 <= periods <= MAX_SIMULATED_PERIODS:
        raise InvalidInput(
            "bad number of periods",
            [Problem(f"expected 1 to {MAX_SIMULATED_PERIODS}, got {periods}", "periods")],
        )
    simulation = simulate_plan(plan_yaml, design_yaml, file="plan_yaml", periods=periods, seed=seed)
    return simulation_records(simulation)


def apply_edited_plan(
    context: AppContext, principal: Principal, plan_yaml: str, starts: str
) -> int:
    """Activate a proposal's plan file as staff edited it (`starts` blank: the file's own
    start); the new plan version."""
    start = parse_day(starts, field="starts") if starts.strip() else None
    with transaction(context.sessions) as session:
        detail = plans.apply_plan(
            session,
            principal,
            plan_yaml,
            file="plan_yaml",
            starts=start,
            now=context.clock(),
            public_base_url=context.settings.public_base_url,
        )
    return detail.version
