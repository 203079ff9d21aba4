"""`survey audit`: the latest entries of the audit log."""

from __future__ import annotations

import argparse
import json

from survey.context import open_context
from survey.kernel import audit
from survey.kernel.console import format_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="list the audit log, newest first")
    parser.add_argument("--limit", type=int, default=50, help="how many entries (default 50)")
    parser.add_argument("--action", help="only this action, e.g. plan.apply")
    parser.set_defaults(handler=_audit)


def _change(before: object, after: object) -> str:
    def text(value: object) -> str:
        return "-" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)

    return f"{text(before)} -> {text(after)}"


def _audit(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        with context.read_sessions() as session:
            entries = audit.recent(session, limit=args.limit, action=args.action)
    finally:
        context.close()
    print(
        format_table(
            ("id", "at (UTC)", "actor", "action", "entity", "change"),
            [
                (
                    e.id,
                    f"{e.at:%Y-%m-%d %H:%M:%S}",
                    e.actor,
                    e.action,
                    f"{e.entity}:{e.entity_id}" if e.entity_id else e.entity,
                    _change(e.before, e.after),
                )
                for e in entries
            ],
        )
    )
    return 0
