"""What a release is computed from, and the computation: the export of the period (and of the
previous period, for changes), the registry names, the plan and questionnaire versions, the
driver items, then `analysis.release.compute_release`. The estimator lives in `analysis/`;
this module only gathers its inputs and packs its result into a snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

import pandas as pd
from sqlalchemy.orm import Session

from questionnaires.schema import Questionnaire
from survey.context import AppContext
from survey.errors import InvalidInput, Problem
from survey.kernel.periods import Period, parse_period, tehran_day
from survey.models import Agency, Channel, Province, Service
from survey.publication import store
from survey.results.export import ExportResult, export_responses

__all__ = [
    "METHODS_FILE",
    "compute_snapshot",
    "driver_items",
    "parse_release_period",
    "previous_period",
]

METHODS_FILE = Path(__file__).resolve().parents[2] / "docs" / "publication-methods.md"
RELEASE_FORMS = "1405 (Solar Hijri year), 1405-01 (month) or 1405-Q1 (quarter)"


def parse_release_period(text: str) -> Period:
    """A Solar Hijri month, quarter or year: the periods official statistics are published for."""
    period = parse_period(text, field="period")
    if period.calendar != "solar_hijri":
        message = f"period: releases are for Solar Hijri periods, {RELEASE_FORMS}; got {text!r}"
        raise InvalidInput(message, [Problem(f"expected {RELEASE_FORMS}", field="period")])
    return period


def previous_period(period: Period) -> Period:
    """The period of the same kind just before: 1405-01 -> 1404-12, 1405-Q1 -> 1404-Q4."""
    label = period.label
    if "-Q" in label:
        year, quarter = int(label[:4]), int(label[-1])
        return parse_period(f"{year - 1}-Q4" if quarter == 1 else f"{year}-Q{quarter - 1}")
    if "-" in label:
        year, month = int(label[:4]), int(label[5:])
        return parse_period(f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}")
    return parse_period(str(int(label) - 1))


def _export(context: AppContext, period: Period) -> ExportResult:
    return export_responses(context, period.start, period.end - timedelta(days=1))


def driver_items(questionnaire: Questionnaire) -> list[str]:
    """The index items other than those the `satisfied` rule reads (the overall question):
    the parts of the service whose scores drive overall satisfaction."""
    outcome = (
        set(questionnaire.scoring.satisfied.referenced_items())
        if (questionnaire.scoring.satisfied is not None)
        else set()
    )
    return [i.item for i in questionnaire.scoring.index if i.item not in outcome]


def compute_snapshot(context: AppContext, period: Period) -> dict[str, Any]:
    """Everything a release stores except its workflow fields (JSON-safe)."""
    from analysis.errors import AnalysisError
    from analysis.release import compute_release

    current = _export(context, period)
    if current.responses.empty:
        last = period.end - timedelta(days=1)
        raise InvalidInput(
            f"period {period.label}: no completed responses for transactions from "
            f"{period.start} to {last}; nothing to publish",
            [Problem(f"no completed responses in {period.label}", field="period")],
        )
    before = previous_period(period)
    previous = _export(context, before)
    has_previous = not previous.responses.empty
    with context.read_sessions() as session:
        drivers, drivers_from = _drivers(session, current.responses)
        names = _names(session, [current, previous] if has_previous else [current])
    try:
        tables = compute_release(
            current.responses,
            current.frame_counts,
            previous=(previous.responses, previous.frame_counts) if has_previous else None,
            drivers=drivers or None,
        )
    except AnalysisError as exc:
        raise InvalidInput(
            f"period {period.label}: the release cannot be computed from this data: {exc}",
            [Problem(str(exc), field="period")],
        ) from None
    now = context.clock()
    responses = current.responses
    return {
        "period": period.label,
        "period_start": period.start.isoformat(),
        "period_end": period.end.isoformat(),
        "previous_period": before.label if has_previous else None,
        "data_as_of": now.isoformat(),
        "complete": period.end <= _tehran_today(context),
        "response_count": len(responses),
        "previous_response_count": len(previous.responses) if has_previous else 0,
        "plan_versions": sorted({int(v) for v in responses["plan_version"].dropna()}),
        "questionnaire_versions": sorted(
            {
                f"{q}@{int(v)}"
                for q, v in zip(
                    responses["questionnaire"], responses["questionnaire_version"], strict=True
                )
            }
        ),
        "drivers": drivers,
        "drivers_from": drivers_from,
        "names": names,
        "methodology": _methodology(tables.notes, _questionnaire_counts(responses)),
        "notes": dict(tables.notes),
        "tables": tables.to_json(),
        "changes": [],
    }


def _tehran_today(context: AppContext) -> date:

    return tehran_day(context.clock())


def _drivers(session: Session, responses: pd.DataFrame) -> tuple[list[str], str | None]:
    """Drivers of the questionnaire version most responses used, where the export has scores."""
    counts = responses.groupby(["questionnaire", "questionnaire_version"]).size()
    if counts.empty:
        return [], None
    qid, version = cast(tuple[str, Any], counts.idxmax())  # the (questionnaire, version) key
    content = store.questionnaire_content(session, qid, int(version))
    if content is None:
        return [], None
    questionnaire = Questionnaire.from_dict(content, file=f"{qid}@{version}")
    present = [d for d in driver_items(questionnaire) if f"score_{d}" in responses.columns]
    return (present if len(present) >= 2 else []), f"{qid}@{int(version)}"


def _codes(frames: list[pd.DataFrame], column: str) -> set[str]:
    found: set[str] = set()
    for frame in frames:
        if column in frame.columns:
            found |= {str(v) for v in frame[column].dropna().unique() if str(v)}
    return found


_Named = type[Agency] | type[Service] | type[Province] | type[Channel]  # tables with names


def _names(session: Session, exports: list[ExportResult]) -> dict[str, dict[str, dict[str, str]]]:
    """Persian and English names of every code the release's tables can show."""
    frames = [e.responses for e in exports] + [e.frame_counts for e in exports]
    wanted: dict[str, tuple[_Named, set[str] | None]] = {
        "agencies": (Agency, _codes(frames, "agency")),
        "services": (Service, _codes(frames, "service")),
        "provinces": (Province, _codes(frames, "province")),
        "channels": (Channel, None),
    }
    return {key: store.code_names(session, table, codes) for key, (table, codes) in wanted.items()}


def _questionnaire_counts(responses: pd.DataFrame) -> dict[str, int]:
    counts = responses.groupby(["questionnaire", "questionnaire_version"]).size()
    keyed = cast(Iterable[tuple[tuple[str, Any], int]], counts.items())  # (qid, version) keys
    return {f"{q}@{int(v)}": int(n) for (q, v), n in keyed}


def _methodology(notes: dict[str, str], questionnaires: dict[str, int]) -> str:
    """The methodology note: the written methods (docs/publication-methods.md, when the
    installation has it) and the facts of this computation, including which questionnaires
    the responses answered (indices pool them: each is 0-100, from its own items)."""
    parts: list[str] = []
    if METHODS_FILE.is_file():
        parts.append(METHODS_FILE.read_text(encoding="utf-8").strip())
    from analysis.methodology import SUMMARY_KEYS  # the short note is shown on its own

    facts = [f"- {key}: {value}" for key, value in sorted(notes.items()) if key not in SUMMARY_KEYS]
    used = ", ".join(f"{name} ({n} responses)" for name, n in sorted(questionnaires.items()))
    facts.append(
        f"- questionnaires: {used}"
        + (
            "; each response's index is computed from its own questionnaire's items and "
            "weights (0-100), and the published indices pool them"
            if len(questionnaires) > 1
            else ""
        )
    )
    parts.append("## This release\n\n" + "\n".join(facts))
    return "\n\n".join(p for p in parts if p)
