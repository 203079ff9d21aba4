"""`survey dispatch [--once]`: send due SMS (invitations, reminders, dialog replies); `survey keys`
(secret-key rotation) and `survey maintenance` (phone retention).

Without `--once` it runs until interrupted (Ctrl-C stops it after the message in hand). The
gateway is `SURVEY_SMS_GATEWAY` unless `--gateway` names another.
"""

from __future__ import annotations

import argparse
import signal
import threading

from survey.context import open_context
from survey.errors import InvalidInput, Problem
from survey.kernel import audit
from survey.kernel.console import cli_principal
from survey.kernel.db import transaction
from survey.outreach.dispatcher import Dispatcher, DispatchOptions
from survey.outreach.gateways import SPECS, gateway_from_spec
from survey.outreach.key_rotation import describe, key_status, reencrypt_phones
from survey.outreach.retention import purge_phones


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_dispatch(subparsers)
    _register_maintenance(subparsers)


def _register_dispatch(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dispatch", help="send due SMS: invitations, reminders, dialog replies"
    )
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    parser.add_argument("--rate", type=float, default=None, help="messages per second (default 10)")
    parser.add_argument("--gateway", default=None, help=f"override SURVEY_SMS_GATEWAY ({SPECS})")
    parser.set_defaults(handler=_dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    if args.rate is not None and args.rate <= 0:
        raise InvalidInput(
            "--rate must be positive", [Problem(f"expected > 0; got {args.rate}", field="--rate")]
        )
    context = open_context(args)
    gateway = gateway_from_spec(
        args.gateway or context.settings.sms_gateway, settings=context.settings
    )
    try:
        dispatcher = Dispatcher(
            context,
            gateway,
            options=DispatchOptions.from_settings(context.settings, rate_per_second=args.rate),
        )
        if args.once:
            report = dispatcher.run_once()
            print(
                f"invited {report.invited}, sent {report.sent}, reminders queued "
                f"{report.reminders}, expired {report.expired}, recovered {report.recovered}, "
                f"to retry {report.retried}, failed {report.failed}"
            )
            return 0
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):  # finish the message in hand, then stop
            signal.signal(signum, lambda *_: stop.set())
        print(f"dispatching through {gateway.name}; Ctrl-C to stop")
        dispatcher.run_forever(stop)
        return 0
    finally:
        gateway.close()
        context.close()


# `survey keys ...` (secret-key rotation) and `survey maintenance ...` (phone retention).


def _register_maintenance(subparsers: argparse._SubParsersAction) -> None:
    keys = subparsers.add_parser("keys", help="secret-key rotation: status, re-encrypt phones")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    status = key_commands.add_parser("status", help="stored phones per key id")
    status.set_defaults(handler=_status)
    rotate = key_commands.add_parser(
        "rotate",
        help="re-encrypt and re-hash stored phones under the current SURVEY_SECRET_KEY",
    )
    rotate.add_argument("--batch-size", type=int, default=1000, help="units per transaction")
    rotate.set_defaults(handler=_rotate)

    maintenance = subparsers.add_parser("maintenance", help="retention: erase phones past use")
    actions = maintenance.add_subparsers(
        dest="maintenance_command", required=True, metavar="ACTION"
    )
    purge = actions.add_parser(
        "purge-phones",
        help="erase phones of invitations finished more than SURVEY_PHONE_RETENTION_DAYS ago",
    )
    purge.add_argument(
        "--days", type=int, default=None, help="override SURVEY_PHONE_RETENTION_DAYS (0 or more)"
    )
    purge.add_argument("--dry-run", action="store_true", help="count only; erase nothing")
    purge.set_defaults(handler=_purge)


def _status(args: argparse.Namespace) -> int:
    context = open_context(args)
    try:
        status = key_status(context)
    finally:
        context.close()
    print("\n".join(describe(status)))
    return 1 if status.unknown_key_ids else 0


def _rotate(args: argparse.Namespace) -> int:
    if args.batch_size <= 0:
        raise InvalidInput(
            "--batch-size must be positive",
            [Problem(f"expected > 0; got {args.batch_size}", field="--batch-size")],
        )
    context = open_context(args)
    try:
        report = reencrypt_phones(context, batch_size=args.batch_size)
        status = key_status(context)
        with transaction(context.sessions) as session:
            audit.record(
                session,
                cli_principal(),
                "keys.rotate",
                "secret_key",
                context.vault.key_id,
                after={
                    "reencrypted": report.reencrypted,
                    "rehashed_contacts": report.rehashed_contacts,
                    "rehashed_opt_outs": report.rehashed_opt_outs,
                    "undecryptable": report.undecryptable,
                },
                at=context.clock(),
            )
    finally:
        context.close()
    print(
        f"re-encrypted {report.reencrypted} phones under key {status.current_key_id}; "
        f"moved {report.rehashed_contacts} contact-rule rows and {report.rehashed_opt_outs} "
        f"opt-outs to the new hash; {report.undecryptable} could not be decrypted"
    )
    print("\n".join(describe(status)))
    return 1 if report.undecryptable else 0


def _purge(args: argparse.Namespace) -> int:
    if args.days is not None and args.days < 0:
        raise InvalidInput(
            "--days must be 0 or more", [Problem(f"got {args.days}", field="--days")]
        )
    context = open_context(args)
    try:
        report = purge_phones(context, retention_days=args.days, dry_run=args.dry_run)
        if not args.dry_run:
            with transaction(context.sessions) as session:
                audit.record(
                    session,
                    cli_principal(),
                    "maintenance.purge_phones",
                    "sampled_unit",
                    after={
                        "phones_erased": report.phones_erased,
                        "contacts_deleted": report.contacts_deleted,
                        "hashes_blanked": report.hashes_blanked,
                        "retention_days": report.retention_days,
                    },
                    at=context.clock(),
                )
    finally:
        context.close()
    prefix = "would erase (dry run): " if args.dry_run else ""
    for line in report.lines():
        print(prefix + line)
    return 0
