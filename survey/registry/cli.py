"""`survey agencies|services|users ...`: the registry and staff accounts from the console.

Commands that issue a key or token print it once, alone on the last line of their output, so
scripts can take it with `tail -n 1`; only its hash is stored.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from survey.access import users
from survey.context import open_context
from survey.errors import InvalidInput
from survey.kernel.console import cli_principal, format_table, read_text_file
from survey.kernel.db import transaction
from survey.models import ROLES, utcnow
from survey.registry import agencies as registry
from survey.registry.agencies import ImportReport


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_agencies(subparsers)
    _register_services(subparsers)
    _register_users(subparsers)


def _register_agencies(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("agencies", help="add, list and import agencies; their keys")
    actions = parser.add_subparsers(dest="agencies_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add an agency and print its new API key once")
    add.add_argument("--code", required=True, help="agency code, e.g. TAX")
    add.add_argument("--name-fa", required=True, help="Persian name")
    add.add_argument("--name-en", required=True, help="English name")
    add.add_argument("--parent", help="code of the parent agency")
    add.add_argument("--province", help="province code, e.g. tehran")
    add.set_defaults(handler=_agencies_add)
    listing = actions.add_parser("list", help="list agencies")
    listing.set_defaults(handler=_agencies_list)
    imports = actions.add_parser(
        "import", help="add agencies from CSV (code,name_fa,name_en,parent,province)"
    )
    imports.add_argument("file")
    imports.set_defaults(handler=_agencies_import)
    rotate = actions.add_parser(
        "rotate-key", help="revoke the agency's keys and print a new one once"
    )
    rotate.add_argument("code")
    rotate.set_defaults(handler=_agencies_rotate)
    revoke = actions.add_parser("revoke-key", help="revoke every key of the agency")
    revoke.add_argument("code")
    revoke.set_defaults(handler=_agencies_revoke)


def _register_services(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("services", help="add, list and import agencies' services")
    actions = parser.add_subparsers(dest="services_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a service of an agency")
    add.add_argument("--agency", required=True, help="code of the agency delivering it")
    add.add_argument("--code", required=True, help="national service code, e.g. TAX-01")
    add.add_argument("--name-fa", required=True, help="Persian name")
    add.add_argument("--name-en", required=True, help="English name")
    add.set_defaults(handler=_services_add)
    listing = actions.add_parser("list", help="list services")
    listing.add_argument("--agency", help="only this agency's services")
    listing.set_defaults(handler=_services_list)
    imports = actions.add_parser(
        "import", help="add services from CSV (agency,code,name_fa,name_en)"
    )
    imports.add_argument("file")
    imports.set_defaults(handler=_services_import)


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


# -- agencies --------------------------------------------------------------------------------


def _agencies_add(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        with transaction(context.sessions) as session:
            agency, issued = registry.add_agency(
                session,
                cli_principal(),
                code=args.code,
                name_fa=args.name_fa,
                name_en=args.name_en,
                parent=args.parent,
                province=args.province,
            )
    finally:
        context.close()
    print(f"agency {agency.code} added: {agency.name_en} / {agency.name_fa}")
    _print_key_notice(issued.prefix, "the agency's systems (Authorization: Bearer <key>)")
    print(issued.key)
    return 0


def _agencies_list(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        with context.read_sessions() as session:
            agencies = registry.list_agencies(session, cli_principal())
    finally:
        context.close()
    print(
        format_table(
            ("code", "name_en", "name_fa", "parent", "province", "services", "keys"),
            [
                (a.code, a.name_en, a.name_fa, a.parent, a.province, a.services, a.active_keys)
                for a in agencies
            ],
        )
    )
    print(f"{len(agencies)} agencies")
    return 0


def _agencies_import(args: argparse.Namespace) -> int:
    text = read_text_file(args.file)
    context = open_context(args)
    try:
        with transaction(context.sessions) as session:
            report = registry.import_agencies(session, cli_principal(), text)
    finally:
        context.close()
    return _print_report(args.file, report)


def _agencies_rotate(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        with transaction(context.sessions) as session:
            issued = registry.rotate_agency_key(session, cli_principal(), args.code)
    finally:
        context.close()
    print(f"agency {args.code}: earlier keys revoked, new key issued")
    _print_key_notice(issued.prefix, "the agency's systems (Authorization: Bearer <key>)")
    print(issued.key)
    return 0


def _agencies_revoke(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        with transaction(context.sessions) as session:
            revoked = registry.revoke_agency_keys(session, cli_principal(), args.code)
    finally:
        context.close()
    print(f"agency {args.code}: {revoked} key(s) revoked; it cannot report until given a new key")
    return 0


# -- services --------------------------------------------------------------------------------


def _services_add(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        with transaction(context.sessions) as session:
            service = registry.add_service(
                session,
                cli_principal(),
                agency=args.agency,
                code=args.code,
                name_fa=args.name_fa,
                name_en=args.name_en,
            )
    finally:
        context.close()
    print(
        f"service {service.code} of agency {service.agency} added: "
        f"{service.name_en} / {service.name_fa}"
    )
    return 0


def _services_list(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        with context.read_sessions() as session:
            services = registry.list_services(session, cli_principal(), agency=args.agency)
    finally:
        context.close()
    print(
        format_table(
            ("code", "agency", "name_en", "name_fa"),
            [(s.code, s.agency, s.name_en, s.name_fa) for s in services],
        )
    )
    print(f"{len(services)} services")
    return 0


def _services_import(args: argparse.Namespace) -> int:
    text = read_text_file(args.file)
    context = open_context(args)
    try:
        with transaction(context.sessions) as session:
            report = registry.import_services(session, cli_principal(), text)
    finally:
        context.close()
    return _print_report(args.file, report)


# -- users -----------------------------------------------------------------------------------


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
    _print_key_notice(issued.prefix, "this user's API calls (Authorization: Bearer <token>)")
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
    _print_key_notice(issued.prefix, "this user's API calls (Authorization: Bearer <token>)")
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


# -- output ----------------------------------------------------------------------------------


def _print_key_notice(prefix: str, use: str) -> None:
    print(
        f"Key {prefix}... is shown only this once (only its hash is stored); "
        f"keep it safe and use it for {use}:"
    )


def _print_report(file: str, report: ImportReport) -> int:
    for row in report.rows:
        if row.status == "error":
            for problem in row.problems:
                print(f"{file}: {problem}")
    print(f"{file}: {report.summary()}")
    return 1 if report.failed else 0
