"""The `survey` command: one sub-command module per domain, each with `register(subparsers)`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from survey.errors import SurveyError

# Each module adds its sub-commands; order is the order of `survey --help`.
COMMAND_MODULES = (
    "survey.kernel.db_cli",
    "survey.http.serve_cli",
    "survey.registry.cli",
    "survey.sampling.cli",
    "survey.ingestion.cli",
    "survey.registry.questionnaires_cli",
    "survey.access.cli",
    "survey.demo.cli",
    "survey.results.cli",
    "survey.outreach.cli",
    "survey.publication.cli",
    "survey.outreach.maintenance_cli",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="survey",
        description="Citizen-satisfaction survey service: registry, sampling, ingestion, demo.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; domain errors print as one clear message and exit 2, never a trace."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except SurveyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
