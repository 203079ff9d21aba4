"""Staff downloads of the export for analysis (statisticians and admins only), as CSV:

- `GET /api/v1/export/responses?from=DAY&to=DAY[&include_partial=true]`
- `GET /api/v1/export/frame-counts?from=DAY&to=DAY`

Days are Gregorian (2026-03-21) or Solar Hijri (1405-01-01), `to` inclusive. Columns are those
of `survey export responses` (docs/export.md). Each download is written to the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from litestar import Controller, Request, Response, get
from litestar.params import FromQuery, QueryParameter

from survey.context import AppContext
from survey.http.guards import Guard, principal_of, staff
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

CSV = "text/csv; charset=utf-8"


class ExportController(Controller):
    path = "/api/v1/export"
    tags: ClassVar[list[str]] = ["export"]
    guards: ClassVar[list[Guard]] = [staff("admin", "statistician")]

    def _export(
        self, request: Request[Any, Any, Any], date_from: str, date_to: str, partial: bool
    ) -> ExportResult:
        context: AppContext = request.app.state.context
        start = parse_day(date_from, field="from")
        end = parse_day(date_to, field="to")
        return export_responses(context, start, end, include_partial=partial)

    @get(
        "/responses", summary="Responses with design columns and weights (CSV)", sync_to_thread=True
    )
    def responses(
        self,
        request: Request[Any, Any, Any],
        date_from: Annotated[str, QueryParameter(name="from")],
        date_to: Annotated[str, QueryParameter(name="to")],
        include_partial: FromQuery[bool] = False,
    ) -> Response[str]:
        result = self._export(request, date_from, date_to, include_partial)
        principal: Principal = principal_of(request)
        record_export(request.app.state.context, principal, result, target="api")
        name = f"responses_{result.start}_{result.end}.csv"
        return Response(
            responses_csv(result),
            media_type=CSV,
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            },
        )

    @get("/frame-counts", summary="Frame counts by stratum and margins (CSV)", sync_to_thread=True)
    def frame_counts(
        self,
        request: Request[Any, Any, Any],
        date_from: Annotated[str, QueryParameter(name="from")],
        date_to: Annotated[str, QueryParameter(name="to")],
        include_partial: FromQuery[bool] = False,
    ) -> Response[str]:
        result = self._export(request, date_from, date_to, include_partial)
        context: AppContext = request.app.state.context
        with context.sessions() as session, session.begin():
            audit.record(
                session,
                principal_of(request),
                "export.frame_counts",
                "frame_count",
                f"{result.start}..{result.end}",
                after={"rows": len(result.frame_counts), "target": "api"},
            )
        name = f"responses_{result.start}_{result.end}.frame_counts.csv"
        return Response(
            frame_counts_csv(result),
            media_type=CSV,
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            },
        )


def _download_headers(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
