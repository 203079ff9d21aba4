"""`survey users ...` (staff accounts and their tokens) and `survey audit` (the latest entries of
the audit log) from the console.

Commands that issue a token print it once, alone on the last line of their output, so scripts can
take it with `tail -n 1`; only its hash is stored.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from survey.access import users
from survey.context import open_context
from survey.errors import InvalidInput
from survey.kernel import audit
from survey.kernel.console import cli_principal, format_table, print_key_notice
from survey.kernel.db import transaction
from survey.models import ROLES, utcnow


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_users(subparsers)
    _register_audit(subparsers)


def _register_audit(subparsers: argparse._SubParsersAction) -> None:
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


def _register_users(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("users", help="staff users and their API tokens")
    actions = parser.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a staff user and print an API token once")
    add.add_argument("--username", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--agency", help="for role agency: the agency's code")
    add.add_argument("--name", default="", help="display name")
    _password_options(add)
    add.set_defaults(handler=_users_add)
    listing = actions.add_parser("list", help="list staff users")
    listing.set_defaults(handler=_users_list)
    token = actions.add_parser("token", help="issue a new API token for a user, printed once")
    token.add_argument("username")
    token.set_defaults(handler=_users_token)
    password = actions.add_parser(
        "set-password", help="set a user's password for /login (ends their browser sessions)"
    )
    password.add_argument("username")
    _password_options(password, required=True)
    password.set_defaults(handler=_users_set_password)
    for name, text in (
        ("deactivate", "stop a user: every token and session stops working"),
        ("activate", "let a deactivated user in again"),
        ("unlock", "lift a lockout after failed sign-ins"),
    ):
        change = actions.add_parser(name, help=text)
        change.add_argument("username")
        change.set_defaults(handler=_users_change, change=name)


def _password_options(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    group.add_argument(
        "--ask-password", action="store_true", help="prompt for the password (typed twice)"
    )


def _read_password(args: argparse.Namespace) -> str | None:
    """The password from stdin or a prompt; never from the command line (it would show in
    the process list and the shell history)."""
    if getattr(args, "password_stdin", False):
        line = sys.stdin.readline()
        if not line.strip():
            raise InvalidInput("--password-stdin: standard input held no password")
        return line.rstrip("\r\n")
    if getattr(args, "ask_password", False):
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise InvalidInput("the two passwords differ")
        return first
    return None


def _users_add(args: argparse.Namespace) -> int:
    password = _read_password(args)
    context = open_context(args)
    try:
        with transaction(context.sessions) as session:
            user, issued = users.add_user(
                session,
                cli_principal(),
                username=args.username,
                role=args.role,
                agency=args.agency,
                display_name=args.name,
                password=password,
            )
    finally:
        context.close()
    agency = f" of agency {user.agency}" if user.agency else ""
    signs_in = "; can sign in at /login" if user.has_password else ""
    print(f"user {user.username} added with role {user.role}{agency}{signs_in}")
    print_key_notice(issued.prefix, "this user's API calls (Authorization: Bearer <token>)")
    print(issued.key)
    return 0


def _users_list(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        with context.read_sessions() as session:
            staff = users.list_users(session)
    finally:
        context.close()
    print(
        format_table(
            ("username", "role", "agency", "name", "active", "tokens", "password", "locked until"),
            [
                (
                    u.username,
                    u.role,
                    u.agency,
                    u.display_name,
                    "yes" if u.active else "no",
                    u.active_tokens,
                    "yes" if u.has_password else "no",
                    f"{u.locked_until:%Y-%m-%d %H:%M}" if u.locked_until else "",
                )
                for u in staff
            ],
        )
    )
    print(f"{len(staff)} users")
    return 0


def _users_token(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        with transaction(context.sessions) as session:
            issued = users.issue_token(session, cli_principal(), args.username)
    finally:
        context.close()
    print(f"user {args.username}: new token issued (earlier tokens still work)")
    print_key_notice(issued.prefix, "this user's API calls (Authorization: Bearer <token>)")
    print(issued.key)
    return 0


def _users_set_password(args: argparse.Namespace) -> int:
    password = _read_password(args) or ""
    context = open_context(args)
    try:
        with transaction(context.sessions) as session:
            users.set_password(session, cli_principal(), args.username, password, now=utcnow())
    finally:
        context.close()
    print(f"user {args.username}: password set; their browser sessions were ended")
    return 0


def _users_change(args: argparse.Namespace) -> int:
    context = open_context(args)
    now = utcnow()
    try:
        with transaction(context.sessions) as session:
            if args.change == "unlock":
                users.unlock(session, cli_principal(), args.username, now=now)
            else:
                users.set_active(
                    session, cli_principal(), args.username, args.change == "activate", now=now
                )
    finally:
        context.close()
    done = {"unlock": "unlocked", "activate": "activated", "deactivate": "deactivated"}
    print(f"user {args.username} {done[args.change]}")
    return 0
