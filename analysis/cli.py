"""Command line for staff: design-based estimates from the service's export.

    python -m analysis estimate FILE.csv --weights w --strata stratum --fpc N_h \\
        --mean index --proportion satisfied --by agency --format csv|json

Every mistake (unknown flag, unknown column, bad values) ends with one line on stderr,
``analysis: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

import pandas as pd

from analysis.design import SurveyDesign
from analysis.errors import AnalysisError

MEAN_METHODS = {"publication": None, "wald": "wald", "normal": "normal"}
PROPORTION_METHODS = {
    "publication": None,
    "beta": "beta",
    "logit": "logit",
    "xlogit": "xlogit",
    "wald": "wald",
    "likelihood": "likelihood",
    "wilson": "wilson",
}


class UsageError(Exception):
    """A command-line mistake, reported in one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="analysis", description="Design-based survey estimates (R survey).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    estimate = commands.add_parser(
        "estimate", help="means, proportions and totals per domain from a CSV export"
    )
    estimate.add_argument("file", help="CSV file: one row per response")
    estimate.add_argument("--weights", help="weights column (omit to derive from --fpc)")
    estimate.add_argument("--strata", help="strata column")
    estimate.add_argument("--psu", action="append", help="PSU column; repeat per stage")
    estimate.add_argument("--fpc", action="append", help="fpc column; repeat per stage")
    estimate.add_argument(
        "--lonely-psu",
        default="fail",
        choices=["fail", "adjust", "average", "certainty"],
        help="what a stratum with one PSU does (default: fail)",
    )
    estimate.add_argument("--mean", action="append", default=[], help="column to average")
    estimate.add_argument("--proportion", action="append", default=[], help="0/1 column")
    estimate.add_argument("--total", action="append", default=[], help="column to total")
    estimate.add_argument("--by", action="append", help="domain column; repeat for several")
    estimate.add_argument("--mean-method", default="publication", choices=list(MEAN_METHODS))
    estimate.add_argument(
        "--proportion-method", default="publication", choices=list(PROPORTION_METHODS)
    )
    estimate.add_argument("--level", type=float, default=0.95, help="confidence level")
    estimate.add_argument("--dropna", action="store_true", help="skip missing values")
    estimate.add_argument("--format", default="csv", choices=["csv", "json"])
    return parser


def _read(path: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError as exc:
        raise UsageError(f"file {path!r} does not exist") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UsageError(f"file {path!r} is not a readable CSV: {exc}".splitlines()[0]) from exc


def estimate(args: argparse.Namespace) -> pd.DataFrame:
    """Run the ``estimate`` command; returns the combined result table."""
    if not (args.mean or args.proportion or args.total):
        raise UsageError("nothing to estimate: give --mean, --proportion and/or --total")
    data = _read(args.file)
    psu = args.psu if args.psu is None or len(args.psu) > 1 else args.psu[0]
    fpc = args.fpc if args.fpc is None or len(args.fpc) > 1 else args.fpc[0]
    design = SurveyDesign(
        data,
        weights=args.weights,
        strata=args.strata,
        psu=psu,
        fpc=fpc,
        lonely_psu=args.lonely_psu,
    )
    by = args.by
    parts = []
    options = {"level": args.level, "dropna": args.dropna}
    for column in args.mean:
        table = design.mean(column, by=by, method=MEAN_METHODS[args.mean_method], **options)
        parts.append(table.assign(statistic="mean", variable=column))
    for column in args.proportion:
        table = design.proportion(
            column, by=by, method=PROPORTION_METHODS[args.proportion_method], **options
        )
        parts.append(table.assign(statistic="proportion", variable=column))
    for column in args.total:
        table = design.total(column, by=by, method=MEAN_METHODS[args.mean_method], **options)
        parts.append(table.assign(statistic="total", variable=column))
    result = pd.concat(parts, ignore_index=True)
    front = ["statistic", "variable", *(by or [])]
    return result[front + [c for c in result.columns if c not in front]]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0, or 2 on any error)."""
    try:
        args = build_parser().parse_args(argv)
        table = estimate(args)
    except (UsageError, AnalysisError) as exc:
        message = str(exc).replace("\n", " ")
        print(f"analysis: error: {message}", file=sys.stderr)
        return 2
    if args.format == "json":
        sys.stdout.write(table.to_json(orient="records", double_precision=15) + "\n")
    else:
        table.to_csv(sys.stdout, index=False)
    return 0
