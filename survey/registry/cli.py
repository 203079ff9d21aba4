"""`survey agencies|services|questionnaires ...`: the registry from the console.

Commands that issue a key or token print it once, alone on the last line of their output, so
scripts can take it with `tail -n 1`; only its hash is stored.
"""

from __future__ import annotations

import argparse
import sys

from survey.context import open_context
from survey.kernel.console import cli_principal, format_table, print_key_notice, read_text_file
from survey.kernel.db import transaction
from survey.kernel.sms import SMS_NAME_MAX
from survey.registry import agencies as registry
from survey.registry import questionnaires as questionnaire_registry
from survey.registry.agencies import ImportReport


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_agencies(subparsers)
    _register_services(subparsers)
    _register_questionnaires(subparsers)


def _register_agencies(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("agencies", help="add, list and import agencies; their keys")
    actions = parser.add_subparsers(dest="agencies_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add an agency and print its new API key once")
    add.add_argument("--code", required=True, help="agency code, e.g. TAX")
    add.add_argument("--name-fa", required=True, help="Persian name")
    add.add_argument("--name-en", required=True, help="English name")
    add.add_argument("--parent", help="code of the parent agency")
    add.add_argument("--province", help="province code, e.g. tehran")
    add.add_argument(
        "--sms-name-fa", help=f"short Persian name for SMS (at most {SMS_NAME_MAX} characters)"
    )
    add.add_argument(
        "--sms-name-en", help=f"short English name for SMS (at most {SMS_NAME_MAX} characters)"
    )
    add.set_defaults(handler=_agencies_add)
    sms_name = actions.add_parser(
        "sms-name",
        help="set the short names every invitation starts with",
        description=(
            "Set the agency's short SMS names: every invitation, reminder and SMS dialogue "
            f"starts with it, so it must be at most {SMS_NAME_MAX} characters (English: GSM-7 "
            "characters only). A language not given stays as it is; an empty name ('') goes "
            "back to the full name, shortened to its first words where it does not fit."
        ),
    )
    sms_name.add_argument("code")
    sms_name.add_argument("--fa", help="Persian SMS name, e.g. ثبت احوال")
    sms_name.add_argument("--en", help="English SMS name, e.g. 'Civil Registration'")
    sms_name.set_defaults(handler=_agencies_sms_name)
    listing = actions.add_parser("list", help="list agencies")
    listing.set_defaults(handler=_agencies_list)
    imports = actions.add_parser(
        "import",
        help="add agencies from CSV (code,name_fa,name_en,parent,province[,sms_name_fa,"
        "sms_name_en])",
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
                sms_name_fa=args.sms_name_fa,
                sms_name_en=args.sms_name_en,
            )
    finally:
        context.close()
    print(f"agency {agency.code} added: {agency.name_en} / {agency.name_fa}")
    print_key_notice(issued.prefix, "the agency's systems (Authorization: Bearer <key>)")
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
            (
                "code",
                "name_en",
                "name_fa",
                "sms_name_en",
                "sms_name_fa",
                "parent",
                "province",
                "services",
                "keys",
            ),
            [
                (
                    a.code,
                    a.name_en,
                    a.name_fa,
                    a.sms_name_en,
                    a.sms_name_fa,
                    a.parent,
                    a.province,
                    a.services,
                    a.active_keys,
                )
                for a in agencies
            ],
        )
    )
    print(f"{len(agencies)} agencies")
    return 0


def _agencies_sms_name(args: argparse.Namespace) -> int:
    names = {lang: value for lang, value in (("fa", args.fa), ("en", args.en)) if value is not None}
    if not names:
        print("error: give --fa NAME, --en NAME or both ('' for the full name)", file=sys.stderr)
        return 2
    context = open_context(args)
    try:
        with transaction(context.sessions) as session:
            agency = registry.set_sms_names(session, cli_principal(), args.code, names)
    finally:
        context.close()
    for lang, name, full in (
        ("fa", agency.sms_name_fa, agency.name_fa),
        ("en", agency.sms_name_en, agency.name_en),
    ):
        shown = name if name else f"none (invitations use {full!r}, shortened if it does not fit)"
        print(f"agency {agency.code}: {lang} SMS name {shown}")
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
    print_key_notice(issued.prefix, "the agency's systems (Authorization: Bearer <key>)")
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


# -- output ----------------------------------------------------------------------------------


def _print_report(file: str, report: ImportReport) -> int:
    for row in report.rows:
        if row.status == "error":
            for problem in row.problems:
                print(f"{file}: {problem}")
    print(f"{file}: {report.summary()}")
    return 1 if report.failed else 0


# `survey questionnaires load|list`: questionnaire versions registered in the database.


def _register_questionnaires(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "questionnaires", help="register questionnaire files in the database and list them"
    )
    actions = parser.add_subparsers(dest="questionnaires_command", required=True, metavar="ACTION")
    load = actions.add_parser(
        "load", help="register questionnaire files (folders: every .yaml/.yml/.json/.xlsx)"
    )
    load.add_argument("paths", nargs="+", metavar="DIR|FILE")
    load.set_defaults(handler=_questionnaires_load)
    listing = actions.add_parser("list", help="list registered questionnaire versions")
    listing.set_defaults(handler=_questionnaires_list)


def _questionnaires_load(args: argparse.Namespace) -> int:
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


def _questionnaires_list(args: argparse.Namespace) -> int:
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
