"""Command line for staff: estimates and models from the service's export (a CSV).

    python -m analysis estimate FILE.csv --weights w --strata stratum --fpc N_h \\
        --mean index --proportion satisfied --quantile index --q 0.25 --q 0.75 \\
        --by agency --format csv|json
    python -m analysis estimate FILE.csv --frame-counts FILE.frame_counts.csv \\
        --mean index --proportion satisfied --by agency        # a release's figures
    python -m analysis compare FILE.csv --weights w --strata stratum --fpc N_h \\
        --mean index --by agency [--within ...] [--contrast "TAX-EDU=TAX:1,EDU:-1"]
    python -m analysis regress FILE.csv --weights w --strata stratum \\
        --formula "q_overall ~ q_time + q_courtesy" [--family binomial] [--by agency]
    python -m analysis drivers FILE.csv --weights w --strata stratum \\
        --outcome q_overall --driver q_time --driver q_courtesy [--by agency]
    python -m analysis sae FILE.csv --weights w --strata stratum \\
        --mean index --area agency --area province --parent agency

Every mistake (unknown flag, unknown column, bad values) ends with one line on stderr,
``analysis: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import pandas as pd

from analysis._stages import LONELY_PSU_RULES
from analysis.contrasts import compare_domains, joint_estimates
from analysis.design import SurveyDesign
from analysis.drivers import key_drivers
from analysis.errors import AnalysisError
from analysis.quality import QualityRules
from analysis.quantile import QRULES
from analysis.regression import FAMILIES, regress
from analysis.release import calibrated_design, published_figures
from analysis.small_areas import small_area_estimates
from analysis.spreadsheet import csv_text

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
QUANTILE_METHODS = {
    "publication": None,
    "woodruff": "mean",
    "mean": "mean",
    "beta": "beta",
    "xlogit": "xlogit",
    "asin": "asin",
    "score": "score",
    "quantile": "quantile",
}
COMPARE_METHODS = {"publication": None, "wald": "wald", "normal": "normal"}


class UsageError(Exception):
    """A command-line mistake, reported in one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _design_options() -> _Parser:
    """Flags every command shares: the file and its sampling design."""
    shared = _Parser(add_help=False)
    shared.add_argument("file", help="CSV file: one row per response")
    shared.add_argument("--weights", help="weights column (omit to derive from --fpc)")
    shared.add_argument("--strata", help="strata column")
    shared.add_argument("--psu", action="append", help="PSU column; repeat per stage")
    shared.add_argument("--fpc", action="append", help="fpc column; repeat per stage")
    shared.add_argument(
        "--lonely-psu",
        default="fail",
        choices=list(LONELY_PSU_RULES),
        help="what a stratum with one PSU does (default: fail)",
    )
    shared.add_argument("--level", type=float, default=0.95, help="confidence level")
    shared.add_argument("--format", default="csv", choices=["csv", "json"])
    return shared


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="analysis", description="Design-based survey estimates (R survey).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    shared = [_design_options()]
    estimate = commands.add_parser(
        "estimate", parents=shared, help="means, proportions and totals per domain"
    )
    estimate.add_argument("--mean", action="append", default=[], help="column to average")
    estimate.add_argument("--proportion", action="append", default=[], help="0/1 column")
    estimate.add_argument("--total", action="append", default=[], help="column to total")
    estimate.add_argument("--quantile", action="append", default=[], help="column: quantiles")
    estimate.add_argument(
        "--q", action="append", type=float, help="probability for --quantile; repeat (0.5)"
    )
    estimate.add_argument("--by", action="append", help="domain column; repeat for several")
    estimate.add_argument("--mean-method", default="publication", choices=list(MEAN_METHODS))
    estimate.add_argument(
        "--proportion-method", default="publication", choices=list(PROPORTION_METHODS)
    )
    estimate.add_argument(
        "--quantile-method", default="publication", choices=list(QUANTILE_METHODS)
    )
    estimate.add_argument("--qrule", default="math", choices=list(QRULES))
    estimate.add_argument("--dropna", action="store_true", help="skip missing values")
    estimate.add_argument(
        "--frame-counts",
        help="the export's frame counts file: weight as a release does (calibration) and "
        "print its figures, grades and suppression",
    )
    estimate.add_argument(
        "--rules", help="JSON file of the quality rules (a release's notes.rules); default rules"
    )

    compare = commands.add_parser(
        "compare",
        parents=shared,
        help="differences between domains with the joint covariance (R svycontrast)",
    )
    compare.add_argument("--mean", help="column whose means are compared")
    compare.add_argument("--proportion", help="0/1 column whose shares are compared")
    compare.add_argument(
        "--by", action="append", required=True, help="domain column; repeat for several"
    )
    compare.add_argument(
        "--within",
        action="append",
        help="compare each domain with the domain of these --by columns containing it "
        "(default: with the whole population)",
    )
    compare.add_argument(
        "--contrast",
        action="append",
        default=[],
        help='a linear contrast of the domains instead: "NAME=LABEL:COEF,LABEL:COEF"',
    )
    compare.add_argument("--method", default="publication", choices=list(COMPARE_METHODS))
    compare.add_argument("--dropna", action="store_true", help="skip missing values")

    model = commands.add_parser(
        "regress", parents=shared, help="design-based regression (R svyglm)"
    )
    model.add_argument("--formula", required=True, help='e.g. "q_overall ~ q_time + q_outcome"')
    model.add_argument("--family", default="gaussian", choices=list(FAMILIES))
    model.add_argument("--by", action="append", help="fit per domain; repeat for several")

    drivers = commands.add_parser(
        "drivers", parents=shared, help="key-driver importance and performance"
    )
    drivers.add_argument("--outcome", required=True, help="overall satisfaction column")
    drivers.add_argument(
        "--driver", action="append", required=True, help="driver column; repeat (2 or more)"
    )
    drivers.add_argument("--by", help="domain column (the nation is always included)")
    drivers.add_argument(
        "--method", default="relative_weights", choices=["relative_weights", "shapley"]
    )
    drivers.add_argument("--replicates", type=int, default=200, help="bootstrap replicates")
    drivers.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    drivers.add_argument("--min-n", type=int, default=100, help="fewest responses per domain")
    drivers.add_argument("--max-vif", type=float, default=10.0, help="collinearity limit")

    sae = commands.add_parser(
        "sae", parents=shared, help="Fay-Herriot small-area estimates for cells"
    )
    sae.add_argument("--mean", required=True, help="column whose cell means are estimated")
    sae.add_argument(
        "--area", action="append", required=True, help="cell column; repeat for several"
    )
    sae.add_argument(
        "--parent", action="append", help="larger domain whose direct mean is a covariate"
    )
    sae.add_argument("--auxiliary", help="CSV of area-level covariates keyed by the area columns")
    sae.add_argument("--covariate", action="append", default=[], help="auxiliary column")
    sae.add_argument("--size", help="auxiliary column with the cell's frame count")
    sae.add_argument(
        "--no-log-size", action="store_true", help="leave the log cell size out of the model"
    )
    sae.add_argument("--method", default="REML", choices=["REML", "ML", "FH"])
    sae.add_argument("--variance", default="smoothed", choices=["smoothed", "direct"])
    sae.add_argument("--min-n", type=int, default=30, help="quality rule: fewest responses")
    sae.add_argument("--max-cv", type=float, default=0.333, help="quality rule: largest CV")
    sae.add_argument("--bootstrap", type=int, default=0, help="parametric bootstrap MSE")
    sae.add_argument("--seed", type=int, help="bootstrap seed")
    sae.add_argument(
        "--coefficients", action="store_true", help="print the model's coefficients instead"
    )
    return parser


def _read(path: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError as exc:
        raise UsageError(f"file {path!r} does not exist") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UsageError(f"file {path!r} is not a readable CSV: {exc}".splitlines()[0]) from exc


def _design(args: argparse.Namespace) -> SurveyDesign:
    """The design described by the shared flags, on the CSV file."""
    data = _read(args.file)
    psu = args.psu if args.psu is None or len(args.psu) > 1 else args.psu[0]
    fpc = args.fpc if args.fpc is None or len(args.fpc) > 1 else args.fpc[0]
    return SurveyDesign(
        data,
        weights=args.weights,
        strata=args.strata,
        psu=psu,
        fpc=fpc,
        lonely_psu=args.lonely_psu,
    )


def estimate(args: argparse.Namespace) -> pd.DataFrame:
    """Run the ``estimate`` command; returns the combined result table."""
    if not (args.mean or args.proportion or args.total or args.quantile):
        raise UsageError(
            "nothing to estimate: give --mean, --proportion, --total and/or --quantile"
        )
    if args.frame_counts is not None:
        return release_figures(args)
    if args.rules is not None:
        raise UsageError("--rules grades a release's figures: give --frame-counts too")
    design = _design(args)
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
    for column in args.quantile:
        table = design.quantile(
            column,
            args.q or [0.5],
            by=by,
            method=QUANTILE_METHODS[args.quantile_method],
            qrule=args.qrule,
            **options,
        )
        if "q" not in table.columns:
            table.insert(0, "q", (args.q or [0.5])[0])
        parts.append(table.assign(statistic="quantile", variable=column))
    result = pd.concat(parts, ignore_index=True)
    front = ["statistic", "variable", *(by or []), *(["q"] if args.quantile else [])]
    return result[front + [c for c in result.columns if c not in front]]


def release_figures(args: argparse.Namespace) -> pd.DataFrame:
    """``estimate --frame-counts``: the figures a release publishes from this export (its
    design and calibration, publication intervals, proportions in percent, quality grades;
    suppressed rows keep ``n`` and lose their numbers)."""
    fixed = {
        "--weights": args.weights,
        "--strata": args.strata,
        "--psu": args.psu,
        "--fpc": args.fpc,
        "--total": args.total,
        "--quantile": args.quantile,
    }
    given = [flag for flag, value in fixed.items() if value]
    given += [
        flag
        for flag, value in (
            ("--mean-method", args.mean_method),
            ("--proportion-method", args.proportion_method),
        )
        if value != "publication"
    ]
    if args.lonely_psu != "fail":
        given.append("--lonely-psu")
    if given:
        raise UsageError(
            f"--frame-counts reproduces a release, whose design, calibration and intervals "
            f"are fixed (docs/publication-methods.md); drop {', '.join(given)}"
        )
    rules = _rules(args.rules)
    design, _ = calibrated_design(_read(args.file), _read(args.frame_counts))
    parts = []
    for statistic, columns in (("mean", args.mean), ("proportion", args.proportion)):
        for column in columns:
            table = published_figures(
                design, statistic, column, args.by, level=args.level, rules=rules
            )
            parts.append(table.assign(statistic=statistic, variable=column))
    result = pd.concat(parts, ignore_index=True)
    front = ["statistic", "variable", *(args.by or [])]
    return result[front + [c for c in result.columns if c not in front]]


def _rules(path: str | None) -> QualityRules:
    """The quality rules of a JSON file (a release's ``notes.rules``), or the defaults."""
    if path is None:
        return QualityRules()
    try:
        with open(path, encoding="utf-8") as handle:
            values: Any = json.load(handle)
    except FileNotFoundError as exc:
        raise UsageError(f"--rules: file {path!r} does not exist") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--rules: {path!r} is not JSON: {exc}") from exc
    if isinstance(values, str):  # the note itself is JSON text inside JSON
        try:
            values = json.loads(values)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--rules: {path!r} is not a JSON object: {exc}") from exc
    known = set(QualityRules().to_dict())
    if not isinstance(values, dict) or set(values) - known:
        extra = sorted(set(values) - known) if isinstance(values, dict) else type(values).__name__
        raise UsageError(
            f"--rules: expected an object with keys among {sorted(known)}, got {extra}"
        )
    return QualityRules(**values)


def comparison(args: argparse.Namespace) -> pd.DataFrame:
    """Run the ``compare`` command: each domain against the domain containing it (or the
    whole population), or the given contrasts of the domains, with the joint covariance."""
    if (args.mean is None) == (args.proportion is None):
        raise UsageError("compare: give one of --mean COLUMN or --proportion COLUMN")
    statistic, variable = ("mean", args.mean) if args.mean else ("proportion", args.proportion)
    design = _design(args)
    if args.contrast:
        if args.within:
            raise UsageError("--contrast and --within: give one or the other")
        specs = dict(_contrast(text) for text in args.contrast)
        estimates = joint_estimates(design, statistic, variable, by=args.by, dropna=args.dropna)
        method = "normal" if args.method == "normal" else "wald"
        return estimates.contrast(specs, level=args.level, method=method)
    return compare_domains(
        design,
        statistic,
        variable,
        args.by,
        within=args.within,
        dropna=args.dropna,
        level=args.level,
        method=COMPARE_METHODS[args.method],
    )


def _contrast(text: str) -> tuple[str, dict[str, float]]:
    """``"NAME=LABEL:COEF,LABEL:COEF"`` (labels are domain values, joined with "." for
    several --by columns); numbers only, nothing is evaluated."""
    name, _, terms = text.partition("=") if "=" in text else (text, "", text)
    coefficients: dict[str, float] = {}
    for term in terms.split(","):
        label, colon, number = term.strip().rpartition(":")
        if not colon or not label:
            raise UsageError(f"--contrast {text!r}: expected LABEL:COEF terms, got {term!r}")
        try:
            coefficients[label.strip()] = float(number)
        except ValueError as exc:
            raise UsageError(
                f"--contrast {text!r}: the coefficient of {label!r} is not a number: {number!r}"
            ) from exc
    return name.strip(), coefficients


def regression(args: argparse.Namespace) -> pd.DataFrame:
    """Run the ``regress`` command: one row per coefficient (per domain with ``--by``)."""
    design = _design(args)
    return regress(design, args.formula, family=args.family, by=args.by, level=args.level)


def drivers(args: argparse.Namespace) -> pd.DataFrame:
    """Run the ``drivers`` command: importance and performance per driver and domain."""
    if args.replicates < 2:
        raise UsageError(f"--replicates: expected at least 2, got {args.replicates}")
    design = _design(args)
    return key_drivers(
        design,
        args.outcome,
        args.driver,
        by=args.by,
        method=args.method,
        replicates=args.replicates,
        seed=args.seed,
        level=args.level,
        min_n=args.min_n,
        max_vif=args.max_vif,
    )


def small_areas(args: argparse.Namespace) -> pd.DataFrame:
    """Run the ``sae`` command: Fay-Herriot estimates per cell (or the coefficients)."""
    if args.bootstrap < 0:
        raise UsageError(f"--bootstrap: expected 0 or more replicates, got {args.bootstrap}")
    if (args.covariate or args.size) and not args.auxiliary:
        raise UsageError("--covariate and --size need --auxiliary FILE.csv")
    auxiliary = _read(args.auxiliary) if args.auxiliary else None
    design = _design(args)
    result = small_area_estimates(
        design,
        args.mean,
        args.area,
        parent=args.parent,
        log_size=not args.no_log_size,
        size=args.size,
        auxiliary=auxiliary,
        covariates=args.covariate,
        method=args.method,
        variance=args.variance,
        min_n=args.min_n,
        max_cv=args.max_cv,
        bootstrap=args.bootstrap,
        seed=args.seed,
    )
    if args.coefficients:
        return result.fit.beta.assign(sigma2_u=result.fit.sigma2_u, method=result.fit.method)
    return result.table


COMMANDS = {
    "estimate": estimate,
    "compare": comparison,
    "regress": regression,
    "drivers": drivers,
    "sae": small_areas,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0, or 2 on any error)."""
    try:
        args = build_parser().parse_args(argv)
        if not 0 < args.level < 1:
            raise UsageError(f"--level: expected a number between 0 and 1, got {args.level}")
        table = COMMANDS[args.command](args)
    except (UsageError, AnalysisError) as exc:
        message = str(exc).replace("\n", " ")
        print(f"analysis: error: {message}", file=sys.stderr)
        return 2
    if args.format == "json":
        sys.stdout.write(table.to_json(orient="records", double_precision=15) + "\n")
    else:
        sys.stdout.write(csv_text(table, lineterminator="\n"))
    return 0
