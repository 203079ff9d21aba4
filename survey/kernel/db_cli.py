"""`survey db upgrade|current`: schema migrations."""

from __future__ import annotations

import argparse

from survey.context import load_settings
from survey.kernel import db


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db", help="database schema migrations")
    actions = parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="apply all migrations (safe to repeat)")
    upgrade.set_defaults(handler=_upgrade)
    current = actions.add_parser("current", help="print the schema revision in the database")
    current.set_defaults(handler=_current)


def _upgrade(_: argparse.Namespace) -> int:
    settings = load_settings()
    db.upgrade(settings)
    print(f"database at revision {db.current_revision(settings)}")
    return 0


def _current(_: argparse.Namespace) -> int:
    print(db.current_revision(load_settings()) or "empty (run `survey db upgrade`)")
    return 0
