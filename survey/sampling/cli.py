"""`survey plans validate|apply|list|show`: sampling plans from YAML files. (`survey plans
propose|simulate`, sample design from the history, are added by survey.results.cli.)"""

from __future__ import annotations

import argparse
import sys

from survey.context import open_context
from survey.errors import PlanError
from survey.kernel.console import cli_principal, format_table, read_text_file
from survey.kernel.periods import parse_optional_day
from survey.sampling import plans


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plans", help="validate, activate and list sampling plans")
    actions = parser.add_subparsers(dest="plans_command", required=True, metavar="ACTION")
    validate = actions.add_parser("validate", help="check a plan file without activating it")
    validate.add_argument("file")
    validate.add_argument(
        "--starts",
        help="override the file's start day (2026-03-21 or 1405-01-01)",
    )
    validate.set_defaults(handler=_validate)
    apply = actions.add_parser(
        "apply", help="validate a plan file and activate it as a new version"
    )
    apply.add_argument("file")
    apply.add_argument(
        "--starts",
        help="override the file's start day (2026-03-21 or 1405-01-01)",
    )
    apply.set_defaults(handler=_apply)
    listing = actions.add_parser("list", help="list plan versions, marking the one in force")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="show one plan version with its source")
    show.add_argument("version", type=int)
    show.set_defaults(handler=_show)


def _print_problems(file: str, error: PlanError) -> int:
    """Compiler style: one `FILE: key.path: message` line per problem."""
    print(f"error: {error.message}", file=sys.stderr)
    for problem in error.problems:
        print(f"{file}: {problem}", file=sys.stderr)
    return 2


def _validate(args: argparse.Namespace) -> int:
    starts = parse_optional_day(args.starts, field="--starts")
    text = read_text_file(args.file)
    context = open_context(args)
    try:
        with context.read_sessions() as session:
            valid = plans.validate_plan(
                session,
                text,
                file=args.file,
                starts=starts,
                public_base_url=context.settings.public_base_url,
            )
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
    starts = parse_optional_day(args.starts, field="--starts")
    text = read_text_file(args.file)
    context = open_context(args)
    try:
        shown = plans.activate_plan(context, cli_principal(), text, args.file, starts)
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
        listing = plans.plan_list(context)
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
                for p in listing.plans
            ],
        )
    )
    print(f"{len(listing.plans)} versions; * marks the one in force today ({listing.today})")
    return 0


def _show(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        plan = plans.plan_detail(context, args.version)
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
