"""`survey dispatch [--once]`: send due SMS (invitations, reminders, dialog replies).

Without `--once` it runs until interrupted (Ctrl-C stops it after the message in hand). The
gateway is `SURVEY_SMS_GATEWAY` unless `--gateway` names another.
"""

from __future__ import annotations

import argparse
import signal
import threading

from survey.context import open_context
from survey.errors import InvalidInput, Problem
from survey.outreach.dispatcher import Dispatcher, DispatchOptions
from survey.outreach.gateways import SPECS, gateway_from_spec


def register(subparsers: argparse._SubParsersAction) -> None:
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
