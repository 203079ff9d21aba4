"""The export as staff download it over HTTP: CSV text with its file name, each download
written to the audit log (data leaving the service is consequential)."""

from __future__ import annotations

from dataclasses import dataclass

from survey.context import AppContext
from survey.kernel import audit
from survey.kernel.periods import parse_day
from survey.kernel.principal import Principal
from survey.results.export import (
    ExportResult,
    export_responses,
    frame_counts_csv,
    record_export,
    responses_csv,
)


@dataclass(frozen=True, slots=True)
class Download:
    """A CSV file to hand over: its name and its text."""

    name: str
    text: str


def _export(context: AppContext, date_from: str, date_to: str, partial: bool) -> ExportResult:
    start = parse_day(date_from, field="from")
    end = parse_day(date_to, field="to")
    return export_responses(context, start, end, include_partial=partial)


def responses_download(
    context: AppContext, principal: Principal, date_from: str, date_to: str, partial: bool
) -> Download:
    """Responses with their design columns and weights (`survey export responses`)."""
    result = _export(context, date_from, date_to, partial)
    record_export(context, principal, result, target="api")
    return Download(f"responses_{result.start}_{result.end}.csv", responses_csv(result))


def frame_counts_download(
    context: AppContext, principal: Principal, date_from: str, date_to: str, partial: bool
) -> Download:
    """The frame counts by stratum and margins that go with the responses of those days."""
    result = _export(context, date_from, date_to, partial)
    with context.sessions() as session, session.begin():
        audit.record(
            session,
            principal,
            "export.frame_counts",
            "frame_count",
            f"{result.start}..{result.end}",
            after={"rows": len(result.frame_counts), "target": "api"},
        )
    name = f"responses_{result.start}_{result.end}.frame_counts.csv"
    return Download(name, frame_counts_csv(result))
