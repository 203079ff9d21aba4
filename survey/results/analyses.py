"""Staff analysis API: survey regression, key drivers and small-area estimates of one period.

Each endpoint exports the period's completed responses (survey.results.export: the same rows,
weights and design strata as `survey export responses`), builds the design
`SurveyDesign(responses, weights="weight", strata="stratum", fpc="N_h", lonely_psu="adjust")`
and runs the analysis package (docs/models.md):

- `POST /api/v1/analysis/regress` JSON `{period, formula, family?, by?, level?}`:
  `analysis.regression.regress` (R `svyglm`), one row per coefficient (per domain);
- `GET /api/v1/analysis/drivers?period=&agency=&outcome=&driver=...`:
  `analysis.drivers.key_drivers`, importance (share of R^2) and performance per driver,
  nationally and per agency, on the responses to one questionnaire (`questionnaire=`, by
  default the one the agency, or everyone, answered most); the drivers default to its index
  items other than the outcome (`q_overall`), as their `score_<item>` columns;
- `GET /api/v1/analysis/small-areas?period=&area=agency&area=province&parent=agency`:
  `analysis.small_areas.small_area_estimates`, Fay-Herriot EBLUPs for cells whose direct
  estimate fails the quality rule, labelled model-based, with the agency x province frame
  counts as auxiliary sizes (cells with transactions but no responses get the synthetic
  estimate).

Tables come back as JSON rows (NaN as null). Bad periods, formulas, columns and options are
422 naming the parameter. Admins and statisticians only: these run on unpublished
response-level data of every agency.

A formula from a caller is never handed to patsy (which evaluates Python): it is parsed by
our own grammar (analysis.formula_grammar: export columns, `+ - : * ( )`, `C()`, `Q()`, a few
transforms and `I()` with one operation on literal numbers), and only the parse tree,
rendered again, is fitted; anything else is a 422 naming the offending token.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import msgspec
import numpy as np
import pandas as pd

from analysis import SurveyDesign
from analysis.drivers import Method, key_drivers
from analysis.errors import AnalysisError
from analysis.formula_grammar import FormulaError, ParsedFormula, parse_formula
from analysis.regression import Family, regress
from analysis.small_areas import Method as SmallAreaMethod
from analysis.small_areas import Variance, small_area_estimates
from questionnaires.schema import Questionnaire
from survey.context import AppContext
from survey.errors import InvalidInput, Problem
from survey.kernel.periods import Period, parse_period
from survey.results import store
from survey.results.export import export_responses
from survey.results.proposals import period_record

ROLES = ("admin", "statistician")


@dataclass(frozen=True)
class PeriodData:
    """A period's export as a design, with what it was made from."""

    period: Period
    design: SurveyDesign
    responses: pd.DataFrame
    frame_counts: pd.DataFrame


class RegressIn(msgspec.Struct, forbid_unknown_fields=True):
    period: str
    formula: str
    family: str = "gaussian"
    by: str | list[str] | None = None
    level: float = 0.95


def _invalid(message: str, field: str) -> InvalidInput:
    return InvalidInput(message, [Problem(message, field=field)])


def period_data(context: AppContext, text: str, *, questionnaire: str | None = None) -> PeriodData:
    """The period's completed responses (of one questionnaire when asked) as a design."""
    period = parse_period(text)
    export = export_responses(context, period.start, period.end - timedelta(days=1))
    responses = export.responses
    if questionnaire:
        responses = responses[responses["questionnaire"] == questionnaire]
    if responses.empty:
        which = f" to questionnaire {questionnaire!r}" if questionnaire else ""
        raise _invalid(
            f"no completed responses{which} in {period.label} "
            f"({period.start.isoformat()} to {(period.end - timedelta(days=1)).isoformat()})",
            "questionnaire" if questionnaire else "period",
        )
    data = responses.reset_index(drop=True).copy()
    # responses without a reported province belong to no province domain
    data["province"] = data["province"].replace("", np.nan)
    try:
        design = SurveyDesign(
            data, weights="weight", strata="stratum", fpc="N_h", lonely_psu="adjust"
        )
    except AnalysisError as exc:  # the export's design columns are checked there already
        raise _invalid(f"the period's design cannot be built: {exc}", "period") from None
    return PeriodData(period, design, data, export.frame_counts)


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON values: NaN, NA and infinities become null, numpy scalars Python ones."""
    rows = []
    for record in table.to_dict(orient="records"):
        row = {}
        for key, value in record.items():
            if isinstance(value, np.generic):
                value = value.item()
            if value is pd.NA or (isinstance(value, float) and not math.isfinite(value)):
                value = None
            row[str(key)] = value
        rows.append(row)
    return rows


# One formula must not take the server's memory: patsy builds the whole design matrix before
# anything can check it (C(response_id):C(agency) on 255 rows took 2.6 GB).
MAX_COEFFICIENTS = 1_000
MAX_MATRIX_CELLS = 50_000_000  # rows x coefficients: 400 MB of float64


def safe_formula(formula: str, responses: pd.DataFrame) -> str:
    """The formula as our own grammar reads it (analysis.formula_grammar), re-rendered: patsy
    evaluates Python, so only this rendering of a parse tree ever reaches it, never the text
    a caller sent. Refused too when its design matrix could not fit in memory."""
    try:
        parsed = parse_formula(formula, set(responses.columns))
    except FormulaError as exc:
        raise _invalid(str(exc), "formula") from None
    size = _coefficients_bound(parsed, responses)
    if size > MAX_COEFFICIENTS or size * len(responses) > MAX_MATRIX_CELLS:
        raise _invalid(
            f"formula: its categories would make up to {size:,} coefficients over "
            f"{len(responses):,} responses; at most {MAX_COEFFICIENTS:,} coefficients (and "
            f"{MAX_MATRIX_CELLS:,} matrix cells) are fitted: use fewer or coarser categories",
            "formula",
        )
    return parsed.render()


def _coefficients_bound(parsed: ParsedFormula, responses: pd.DataFrame) -> int:
    """An upper bound of the columns patsy would build: per term, the product over its
    columns of (levels + 1) for categorical ones (C(...) or text) and 2 for numeric ones."""
    total = 1
    for term in parsed.terms:
        if term.startswith("-"):
            continue
        size = 1
        for column in parsed.columns:
            quoted = f'Q("{column}")'
            if quoted not in term and not re.search(
                rf"(?<![\w.]){re.escape(column)}(?![\w.])", term
            ):
                continue
            values = responses[column]
            wrapped = f"C({column}" in term or f"C({quoted}" in term
            categorical = wrapped or not pd.api.types.is_numeric_dtype(values)
            size *= int(values.nunique()) + 1 if categorical else 2
            if size > MAX_COEFFICIENTS:
                return size
        total += size
    return total


def _by_columns(by: str | list[str] | None, columns: set[str], field: str = "by") -> list[str]:
    names = [] if by is None else ([by] if isinstance(by, str) else list(by))
    names = [n.strip() for n in names if n and n.strip()]
    for name in names:
        if name not in columns:
            raise _invalid(f"{field}: {name!r} is not a column of the period's export", field)
        if names.count(name) > 1:
            raise _invalid(f"{field}: {name!r} is given more than once", field)
    return names


def run_regression(context: AppContext, body: RegressIn) -> dict[str, Any]:
    data = period_data(context, body.period)
    columns = set(data.responses.columns)
    formula = safe_formula(body.formula, data.responses)
    by = _by_columns(body.by, columns)
    try:
        # The analysis package checks the family itself (a 422 naming it): no narrowing here.
        family = cast(Family, body.family)
        table = regress(data.design, formula, family=family, by=by or None, level=body.level)
    except AnalysisError as exc:
        raise _invalid(str(exc), _field_of(str(exc), "formula")) from None
    return {
        "period": period_record(data.period),
        "formula": body.formula,
        "formula_fitted": formula,
        "family": body.family,
        "by": by,
        "responses": len(data.responses),
        "rows": _records(table),
    }


def _check_seed(seed: int) -> None:
    """numpy takes seeds from 0 to 2**64 - 1; anything else would be a 500 deep inside."""
    if not 0 <= seed < 2**63:
        raise _invalid(f"seed: expected a whole number from 0 to {2**63 - 1}, got {seed}", "seed")


def _field_of(message: str, default: str) -> str:
    head = message.split(":", 1)[0].strip()
    known = ("family", "level", "by", "formula", "method", "drivers", "outcome", "area", "parent")
    for name in known:
        if head == name or head.startswith(f"{name} "):
            return name
    return default


def _score_column(name: str, columns: set[str], field: str) -> str:
    """An item id (`q_time`) means its score column (`score_q_time`); a column name itself."""
    for candidate in (f"score_{name}", name):
        if candidate in columns:
            return candidate
    raise _invalid(
        f"{field}: {name!r} is neither an item with a score column nor a column of the "
        "period's export",
        field,
    )


def _index_items(context: AppContext, responses: pd.DataFrame) -> tuple[str, list[str]]:
    """The most answered questionnaire in the export and its index items."""
    counts = responses.groupby(["questionnaire", "questionnaire_version"]).size()
    most = cast(tuple[str, int], counts.idxmax())  # a key of the two-level index
    qid, version = str(most[0]), int(most[1])
    with context.read_sessions() as session:
        content = store.index_content(session, qid, version)
    if content is None:  # the export only holds registered questionnaires
        raise _invalid(f"questionnaire {qid} v{version} is not registered", "questionnaire")
    questionnaire = Questionnaire.from_dict(content, file=f"{qid} v{version}")
    return str(qid), [entry.item for entry in questionnaire.scoring.index]


def run_drivers(
    context: AppContext,
    *,
    period: str,
    agency: str | None,
    outcome: str,
    drivers: list[str],
    questionnaire: str | None,
    method: str,
    replicates: int,
    seed: int,
    min_n: int,
) -> dict[str, Any]:
    if not 2 <= replicates <= 1000:
        raise _invalid(f"replicates: expected 2 to 1000, got {replicates}", "replicates")
    if min_n < 2:
        raise _invalid(f"min_n: expected 2 or more, got {min_n}", "min_n")
    _check_seed(seed)
    first = period_data(context, period, questionnaire=questionnaire)
    qid = questionnaire
    if not drivers or qid is None:
        answered = first.responses
        if agency and agency in set(answered["agency"]):
            answered = answered[answered["agency"] == agency]  # the agency's own instrument
        qid, items = _index_items(context, answered)
        drivers = drivers or [item for item in items if item != outcome]
    data = first if questionnaire == qid else period_data(context, period, questionnaire=qid)
    columns = set(data.responses.columns)
    if agency and agency not in set(data.responses["agency"]):
        raise _invalid(f"agency: no responses from agency {agency!r} in {period}", "agency")
    outcome_column = _score_column(outcome, columns, "outcome")
    driver_columns = [_score_column(d, columns, "driver") for d in drivers]
    try:
        table = key_drivers(
            data.design,
            outcome_column,
            driver_columns,
            by="agency",
            method=cast(Method, method),  # checked by the analysis package
            replicates=replicates,
            seed=seed,
            min_n=min_n,
        )
    except AnalysisError as exc:
        raise _invalid(str(exc), _field_of(str(exc), "driver")) from None
    if agency:
        table = table[(table["scope"] == "national") | (table["agency"] == agency)]
    return {
        "period": period_record(data.period),
        "questionnaire": qid,
        "outcome": outcome_column,
        "drivers": driver_columns,
        "method": method,
        "replicates": replicates,
        "rows": _records(table),
    }


def run_small_areas(
    context: AppContext,
    *,
    period: str,
    variable: str,
    area: list[str] | None,
    parent: list[str] | None,
    method: str,
    variance: str,
    min_n: int,
    max_cv: float,
    bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    """Fay-Herriot estimates for the cells of `area` (default agency x province), borrowing
    strength within `parent` (default agency, when agency is an area column)."""
    area = list(area or ["agency", "province"])
    parent = list(parent) if parent is not None else (["agency"] if "agency" in area else [])
    parent = [p for p in parent if p]
    if not 0 <= bootstrap <= 2000:
        raise _invalid(f"bootstrap: expected 0 to 2000 replicates, got {bootstrap}", "bootstrap")
    _check_seed(seed)
    if min_n < 2:
        raise _invalid(f"min_n: expected 2 or more, got {min_n}", "min_n")
    if not (math.isfinite(max_cv) and max_cv > 0):
        raise _invalid(f"max_cv: expected a positive number, got {max_cv}", "max_cv")
    data = period_data(context, period)
    columns = set(data.responses.columns)
    if variable not in columns:
        raise _invalid(f"variable: {variable!r} is not a column of the period's export", "variable")
    areas = _by_columns(area, columns, "area")
    parents = _by_columns(parent, columns, "parent")
    if not areas:
        raise _invalid("area: expected one or more columns naming the cells", "area")
    auxiliary = None
    if sorted(areas) == ["agency", "province"]:
        auxiliary = _frame_sizes(data.frame_counts)
    try:
        result = small_area_estimates(
            data.design,
            variable,
            areas,
            parent=parents or None,
            size="frame_count" if auxiliary is not None else None,
            auxiliary=auxiliary,
            method=cast(SmallAreaMethod, method),  # checked by the analysis package
            variance=cast(Variance, variance),
            min_n=min_n,
            max_cv=max_cv,
            bootstrap=bootstrap,
            seed=seed,
        )
    except AnalysisError as exc:
        raise _invalid(str(exc), _field_of(str(exc), "area")) from None
    table = result.table
    if auxiliary is not None:  # show each cell's transactions beside its estimate
        table = table.merge(auxiliary, on=areas, how="left")
    fit = result.fit
    return {
        "period": period_record(data.period),
        "variable": variable,
        "area": areas,
        "parent": parents,
        "method": fit.method,
        "sigma2_u": fit.sigma2_u,
        "coefficients": _records(fit.beta),
        "model_based_cells": int(table["model_based"].sum()),
        "label": (
            "Rows with model_based true are model-based (Fay-Herriot EBLUP, standard error "
            "rmse); the others keep their direct estimate, which passes the quality rule."
        ),
        "rows": _records(table),
    }


def _frame_sizes(frame_counts: pd.DataFrame) -> pd.DataFrame | None:
    """Eligible transactions per agency x province over the period (the export's margins)."""
    cells = frame_counts[frame_counts["margin"] == "agency_province"]
    cells = cells[cells["province"].fillna("") != ""]
    if cells.empty:
        return None
    sizes = cells.groupby(["agency", "province"], as_index=False)["N"].sum()
    return pd.DataFrame(sizes).rename(columns={"N": "frame_count"})
