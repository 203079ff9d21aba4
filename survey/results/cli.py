"""`survey rates --period P`, `survey export responses --from D --to D --out FILE.csv`, and
`survey plans propose|simulate`: sample design from the history (docs/sample-design.md)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

from analysis.planning import Target
from analysis.samplesize import SampleDesignError
from survey.context import open_context
from survey.errors import InvalidInput, Problem
from survey.kernel.console import cli_principal, format_table, read_text_file
from survey.kernel.periods import Period, format_date, parse_day, parse_period
from survey.kernel.spreadsheet import csv_text
from survey.results import proposals as plan_proposals
from survey.results.export import export_responses, record_export, write_export
from survey.results.rates import DISPOSITIONS, GROUPINGS, RATES, response_rates


def register(subparsers: argparse._SubParsersAction) -> None:
    register_plan_design(_actions_of(subparsers, "plans"))
    rates = subparsers.add_parser(
        "rates",
        help="AAPOR response, cooperation and contact rates for a period",
        description="Rates of invitations whose transaction day falls in the period "
        "(definitions in docs/export.md).",
    )
    rates.add_argument(
        "--period",
        required=True,
        help="1405-01 (Solar Hijri month), 1405-Q1, 1405, or Gregorian 2026-03, 2026-Q1, 2026",
    )
    rates.add_argument("--by", choices=GROUPINGS, default="agency")
    rates.add_argument("--format", choices=("table", "csv", "json"), default="table")
    rates.set_defaults(handler=_rates)

    export = subparsers.add_parser("export", help="exports for analysis")
    kinds = export.add_subparsers(dest="export_kind", required=True, metavar="WHAT")
    responses = kinds.add_parser(
        "responses",
        help="one row per response with design columns and weights, plus frame counts",
        description="Writes FILE.csv (responses) and FILE.frame_counts.csv (calibration "
        "totals). Columns are documented in docs/export.md. Never a phone or a token.",
    )
    responses.add_argument(
        "--from",
        dest="date_from",
        required=True,
        help="first transaction day (2026-03-21 or 1405-01-01)",
    )
    responses.add_argument(
        "--to", dest="date_to", required=True, help="last transaction day, inclusive"
    )
    responses.add_argument("--out", required=True, help="the responses CSV to write")
    responses.add_argument(
        "--include-partial",
        action="store_true",
        help="also export partial responses (flagged in the status column)",
    )
    responses.set_defaults(handler=_export_responses)


def _rates(args: argparse.Namespace) -> int:
    period = parse_period(args.period)
    context = open_context(args)
    try:
        with context.read_sessions() as session:
            table = response_rates(session, period, by=args.by)
    finally:
        context.close()
    records = table.records()
    if args.format == "json":
        print(json.dumps({"period": period.label, "by": args.by, "rows": records}, indent=2))
        return 0
    headers = [args.by, *DISPOSITIONS, "total", *RATES]
    if args.format == "csv":
        sys.stdout.write(csv_text(table.table[headers], float_format="%.6f"))
        return 0
    print(f"period {period.label}: Tehran days {period.start} to {period.end} (end excluded)")
    rows = [
        [r[args.by], *(r[d] for d in DISPOSITIONS), r["total"],
         *("-" if r[n] is None else f"{r[n]:.3f}" for n in RATES)]
        for r in records
    ]  # fmt: skip
    print(format_table(headers, rows))
    return 0


def _export_responses(args: argparse.Namespace) -> int:
    start = parse_day(args.date_from, field="--from")
    end = parse_day(args.date_to, field="--to")
    context = open_context(args)
    try:
        result = export_responses(context, start, end, include_partial=args.include_partial)
        responses_path, frames_path = write_export(result, args.out)
        record_export(context, cli_principal(), result, target=str(responses_path))
    finally:
        context.close()
    print(
        f"wrote {len(result.responses)} responses to {responses_path} and "
        f"{len(result.frame_counts)} frame-count rows to {frames_path}"
    )
    return 0


DIMENSION_CHOICES = ("agency", "service", "channel", "province", "all")


def register_plan_design(actions: argparse._SubParsersAction) -> None:
    """Add `propose` and `simulate` to the `survey plans` sub-commands."""
    propose = actions.add_parser(
        "propose",
        help="propose per-stratum rates meeting a target precision, from past periods",
        description="Write a plan file whose rates meet a target margin of error (or CV) for "
        "every domain of the --by dimensions, from past frame counts, response rates and "
        "index SDs; print its summary table. See docs/sample-design.md.",
    )
    propose.add_argument("--period", required=True, help="the period planned, e.g. 1405-Q1")
    target = propose.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-moe", type=float, help="95%% margin of error, in points")
    target.add_argument("--target-cv", type=float, help="coefficient of variation, e.g. 0.03")
    propose.add_argument(
        "--by",
        action="append",
        choices=DIMENSION_CHOICES,
        help="dimension whose every domain must meet the target (repeatable; default agency)",
    )
    propose.add_argument("--measure", choices=("mean", "proportion"), default="mean")
    propose.add_argument(
        "--history",
        help="the past period to read inputs from (default: the last 6 complete months before "
        "today and the period; days to come are never read)",
    )
    propose.add_argument(
        "--inputs",
        help="a per-stratum inputs CSV to plan from instead of the history (a forecast, or an "
        "edited <stem>.inputs.csv of an earlier proposal)",
    )
    propose.add_argument(
        "--strata", help="comma-separated strata dimensions (default: the plan in force's)"
    )
    propose.add_argument(
        "--within", choices=("optimal", "neyman", "proportional", "equal"), default="optimal"
    )
    fixed = propose.add_mutually_exclusive_group()
    fixed.add_argument("--total", type=float, help="spend exactly this many completes")
    fixed.add_argument("--budget", type=float, help="spend exactly this cost per period")
    propose.add_argument("--q", type=float, default=0.5, help="Bankier exponent (with a total)")
    propose.add_argument(
        "--cost-per-part",
        type=float,
        help="SMS price per part (default 1: costs in SMS parts; with --inputs it replaces "
        "the table's cost_per_part column)",
    )
    propose.add_argument("--assurance", type=float, default=0.95)
    propose.add_argument("--min-completes", type=float, default=30.0)
    propose.add_argument("--name", help="the plan's name (default: 'proposal PERIOD')")
    propose.add_argument("--out", help="the plan file to write (default: proposal-PERIOD.yaml)")
    propose.set_defaults(handler=_propose)
    simulate = actions.add_parser(
        "simulate",
        help="simulate periods of a proposed (perhaps edited) plan file against its targets",
    )
    simulate.add_argument("file")
    simulate.add_argument("--design", help="the design sidecar (default: <stem>.design.yaml)")
    simulate.add_argument("--periods", type=int, default=200)
    simulate.add_argument("--seed", type=int, default=1)
    simulate.set_defaults(handler=_simulate)


def design_path(plan_file: str | Path) -> Path:
    """The design sidecar beside a plan file: `proposal.yaml` -> `proposal.design.yaml`."""
    path = Path(plan_file)
    return path.with_name(f"{path.stem}.design.yaml")


def inputs_path(plan_file: str | Path) -> Path:
    """The inputs table beside a plan file: `proposal.yaml` -> `proposal.inputs.csv`."""
    path = Path(plan_file)
    return path.with_name(f"{path.stem}.inputs.csv")


def _target(args: argparse.Namespace) -> Target:
    try:
        return Target(
            by=tuple(args.by or ("agency",)),
            margin=args.target_moe,
            cv=args.target_cv,
            measure=args.measure,
            min_completes=args.min_completes,
            assurance=args.assurance,
        )
    except SampleDesignError as exc:
        raise InvalidInput("the target cannot be used", [Problem(str(exc), "target")]) from None


def _propose(args: argparse.Namespace) -> int:
    period = parse_period(args.period)
    history = parse_period(args.history, field="history") if args.history else None
    target = _target(args)
    strata = [s.strip() for s in args.strata.split(",") if s.strip()] if args.strata else None
    out = Path(args.out or f"proposal-{period.label}.yaml")
    given = None
    if args.inputs:
        given = plan_proposals.read_inputs_csv(read_text_file(args.inputs), file=args.inputs)
        if args.cost_per_part is not None:
            given["cost_per_part"] = args.cost_per_part
    cost_per_part = 1.0 if args.cost_per_part is None else args.cost_per_part
    context = open_context(args)
    try:
        result = plan_proposals.propose_plan(
            context,
            period=period,
            target=target,
            history=history,
            strata=strata,
            name=args.name,
            within=args.within,
            total=args.total,
            budget=args.budget,
            q=args.q,
            assumptions=plan_proposals.Assumptions(cost_per_part=cost_per_part),
            inputs=given,
        )
    finally:
        context.close()
    out.write_text(result.plan_text, encoding="utf-8")
    design_path(out).write_text(result.design_text, encoding="utf-8")
    inputs_path(out).write_text(csv_text(result.inputs), encoding="utf-8")
    if result.history is not None:
        print(f"History read: {result.history.label}, {_days(result.history)}")
    print(result.proposal.summary())
    for line in plan_proposals.spread_lines(result.spread):
        print(line)
    for note in result.notes:
        print(f"note: {note.text}", file=sys.stderr)
    print(f"\nwrote {out} (plan file), {design_path(out)} (design) and {inputs_path(out)} (inputs)")
    return 0


def _days(period: Period) -> str:
    return f"{format_date(period.start)} to {format_date(period.end - timedelta(days=1))}"


def _simulate(args: argparse.Namespace) -> int:
    if args.periods < 1:
        raise InvalidInput(
            "bad --periods", [Problem(f"expected >= 1, got {args.periods}", "periods")]
        )
    design = args.design or str(design_path(args.file))
    simulation = plan_proposals.simulate_plan(
        read_text_file(args.file),
        read_text_file(design),
        file=args.file,
        periods=args.periods,
        seed=args.seed,
    )
    print(simulation.proposal.summary())
    print()
    print(simulation.result.summary())
    return 0


def _actions_of(subparsers: argparse._SubParsersAction, command: str) -> argparse._SubParsersAction:
    """The actions of a command another domain registered (`plans` is survey.sampling.cli's)."""
    parser: argparse.ArgumentParser = subparsers.choices[command]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise LookupError(f"the command {command!r} has no actions")
