"""`survey plans validate|apply|list|show`: sampling plans from YAML files; `survey plans
propose|simulate`: sample design from the history (docs/sample-design.md)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from analysis.planning import Target
from analysis.samplesize import SampleDesignError
from survey.context import open_context
from survey.errors import InvalidInput, PlanError, Problem
from survey.kernel.console import cli_principal, format_table, read_text_file
from survey.kernel.db import transaction
from survey.kernel.periods import parse_period
from survey.sampling import plans
from survey.sampling import proposals as plan_proposals


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plans", help="validate, activate and list sampling plans")
    actions = parser.add_subparsers(dest="plans_command", required=True, metavar="ACTION")
    register_plan_design(actions)
    validate = actions.add_parser("validate", help="check a plan file without activating it")
    validate.add_argument("file")
    validate.add_argument("--starts", type=_date, help="override the file's start date")
    validate.set_defaults(handler=_validate)
    apply = actions.add_parser(
        "apply", help="validate a plan file and activate it as a new version"
    )
    apply.add_argument("file")
    apply.add_argument("--starts", type=_date, help="override the file's start date (YYYY-MM-DD)")
    apply.set_defaults(handler=_apply)
    listing = actions.add_parser("list", help="list plan versions, marking the one in force")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="show one plan version with its source")
    show.add_argument("version", type=int)
    show.set_defaults(handler=_show)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _print_problems(file: str, error: PlanError) -> int:
    """Compiler style: one `FILE: key.path: message` line per problem."""
    print(f"error: {error.message}", file=sys.stderr)
    for problem in error.problems:
        print(f"{file}: {problem}", file=sys.stderr)
    return 2


def _validate(args: argparse.Namespace) -> int:
    text = read_text_file(args.file)
    context = open_context(args)
    try:
        with context.read_sessions() as session:
            valid = plans.validate_plan(session, text, file=args.file, starts=args.starts)
    except PlanError as exc:
        return _print_problems(args.file, exc)
    finally:
        context.close()
    plan = valid.plan
    print(
        f"{args.file}: valid plan {plan.name!r} starting {plan.starts}: strata "
        f"{', '.join(plan.strata)}, default rate {plan.default_rate:g}, "
        f"{len(plan.rates)} rate rule(s), {len(valid.questionnaires)} questionnaire choice(s)"
    )
    return 0


def _apply(args: argparse.Namespace) -> int:
    text = read_text_file(args.file)
    context = open_context(args)
    try:
        with transaction(context.sessions) as session:
            detail = plans.apply_plan(
                session, cli_principal(), text, file=args.file, starts=args.starts
            )
        with context.read_sessions() as session:
            today = plans.today_in(context.clock(), context.settings.timezone)
            shown = plans.show_plan(session, detail.version, today=today)
    except PlanError as exc:
        return _print_problems(args.file, exc)
    finally:
        context.close()
    state = "in force today" if shown.in_force else f"in force from {shown.starts}"
    print(f"plan {shown.name!r} activated as version {shown.version} ({state})")
    return 0


def _list(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        today = plans.today_in(context.clock(), context.settings.timezone)
        with context.read_sessions() as session:
            versions = plans.list_plans(session, today=today)
    finally:
        context.close()
    print(
        format_table(
            ("version", "name", "starts", "in force", "strata", "default", "rules", "by"),
            [
                (
                    p.version,
                    p.name,
                    p.starts,
                    "*" if p.in_force else "",
                    ",".join(p.strata),
                    f"{p.default_rate:g}",
                    p.rules,
                    p.created_by,
                )
                for p in versions
            ],
        )
    )
    print(f"{len(versions)} versions; * marks the one in force today ({today})")
    return 0


def _show(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        today = plans.today_in(context.clock(), context.settings.timezone)
        with context.read_sessions() as session:
            plan = plans.show_plan(session, args.version, today=today)
    finally:
        context.close()
    state = "in force today" if plan.in_force else "not in force today"
    print(
        f"# version {plan.version} ({state}), activated "
        f"{plan.created_at:%Y-%m-%d %H:%M} UTC by {plan.created_by}"
    )
    for choice in plan.questionnaires:
        channel = f" ({choice['channel']})" if choice.get("channel") else ""
        print(
            f"# {choice['service']}{channel}: {choice['questionnaire']} "
            f"version {choice['version']}, {choice['mode']}"
        )
    print(plan.source.rstrip("\n"))
    return 0


# `survey plans propose|simulate`: sample design from the history (docs/sample-design.md).

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
        "--history", help="the past period to read inputs from (default: as long, just before)"
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
    result.inputs.to_csv(inputs_path(out), index=False, lineterminator="\n")
    print(result.proposal.summary())
    print(f"\nwrote {out} (plan file), {design_path(out)} (design) and {inputs_path(out)} (inputs)")
    return 0


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
