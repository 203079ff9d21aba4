"""`survey questionnaires load|list`: questionnaire versions registered in the database."""

from __future__ import annotations

import argparse

from survey.context import open_context
from survey.kernel.console import cli_principal, format_table
from survey.kernel.db import transaction
from survey.registry import questionnaires as questionnaire_registry


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "questionnaires", help="register questionnaire files in the database and list them"
    )
    actions = parser.add_subparsers(dest="questionnaires_command", required=True, metavar="ACTION")
    load = actions.add_parser(
        "load", help="register questionnaire files (folders: every .yaml/.yml/.json/.xlsx)"
    )
    load.add_argument("paths", nargs="+", metavar="DIR|FILE")
    load.set_defaults(handler=_load)
    listing = actions.add_parser("list", help="list registered questionnaire versions")
    listing.set_defaults(handler=_list)


def _load(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        with transaction(context.sessions) as session:
            results = questionnaire_registry.load_files(session, cli_principal(), args.paths)
    finally:
        context.close()
    for result in results:
        if result.status == "error":
            for problem in result.problems:
                print(
                    f"error: {problem}"
                    if problem.startswith(result.source)
                    else f"error: {result.source}: {problem}"
                )
        else:
            print(f"{result.source}: {result.qid} version {result.version} {result.status}")
    failed = sum(1 for r in results if r.status == "error")
    print(f"{len(results) - failed} loaded, {failed} failed")
    return 1 if failed else 0


def _list(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        with context.read_sessions() as session:
            rows = questionnaire_registry.list_questionnaires(session)
    finally:
        context.close()
    print(
        format_table(
            ("id", "version", "title_en", "title_fa", "items", "sms", "first used", "hash"),
            [
                (
                    q.qid,
                    q.version,
                    q.title_en,
                    q.title_fa,
                    q.items,
                    q.sms_items,
                    f"{q.first_used_at:%Y-%m-%d}" if q.first_used_at else None,
                    q.content_hash[:12],
                )
                for q in rows
            ],
        )
    )
    print(f"{len(rows)} questionnaire versions")
    return 0
