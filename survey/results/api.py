"""Staff downloads of the export for analysis (statisticians and admins only), as CSV:

- `GET /api/v1/export/responses?from=DAY&to=DAY[&include_partial=true]`
- `GET /api/v1/export/frame-counts?from=DAY&to=DAY`

Days are Gregorian (2026-03-21) or Solar Hijri (1405-01-01), `to` inclusive. Columns are those
of `survey export responses` (docs/export.md). Each download is written to the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery, QueryParameter

from survey.context import AppContext
from survey.errors import InvalidInput
from survey.http.bodies import parse_body
from survey.http.dependencies import Caller, Context
from survey.http.guards import Guard, agency_scope, principal_of, staff
from survey.kernel import audit
from survey.kernel.periods import parse_day, parse_period
from survey.kernel.principal import Principal
from survey.results import proposals as plan_proposals
from survey.results.analyses import ROLES, RegressIn, run_drivers, run_regression, run_small_areas
from survey.results.export import (
    ExportResult,
    export_responses,
    frame_counts_csv,
    record_export,
    responses_csv,
)
from survey.results.rates import response_rates

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


class AnalysisController(Controller):
    path = "/api/v1/analysis"
    tags: ClassVar[list[str]] = ["analysis"]
    guards: ClassVar[list[Guard]] = [staff(*ROLES)]

    @post("/regress", status_code=200, summary="Design-based regression (svyglm) on a period")
    async def regression(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        body: RegressIn = parse_body(await request.body(), RegressIn)
        context: AppContext = request.app.state.context
        return await anyio.to_thread.run_sync(run_regression, context, body)

    @get("/drivers", sync_to_thread=True, summary="Key drivers of overall satisfaction")
    def drivers(
        self,
        request: Request[Any, Any, Any],
        period: FromQuery[str],
        agency: FromQuery[str | None] = None,
        outcome: FromQuery[str] = "q_overall",
        driver: Annotated[list[str] | None, QueryParameter(name="driver")] = None,
        questionnaire: FromQuery[str | None] = None,
        method: FromQuery[str] = "relative_weights",
        replicates: FromQuery[int] = 200,
        seed: FromQuery[int] = 0,
        min_n: FromQuery[int] = 100,
    ) -> dict[str, Any]:
        return run_drivers(
            request.app.state.context,
            period=period,
            agency=agency,
            outcome=outcome,
            drivers=list(driver or []),
            questionnaire=questionnaire,
            method=method,
            replicates=replicates,
            seed=seed,
            min_n=min_n,
        )

    @get("/small-areas", sync_to_thread=True, summary="Fay-Herriot small-area estimates")
    def small_areas(
        self,
        request: Request[Any, Any, Any],
        period: FromQuery[str],
        variable: FromQuery[str] = "index",
        area: Annotated[list[str] | None, QueryParameter(name="area")] = None,
        parent: Annotated[list[str] | None, QueryParameter(name="parent")] = None,
        method: FromQuery[str] = "REML",
        variance: FromQuery[str] = "smoothed",
        min_n: FromQuery[int] = 30,
        max_cv: FromQuery[float] = 0.333,
        bootstrap: FromQuery[int] = 0,
        seed: FromQuery[int] = 1,
    ) -> dict[str, Any]:
        areas = list(area or ["agency", "province"])
        parents = list(parent) if parent is not None else (["agency"] if "agency" in areas else [])
        return run_small_areas(
            request.app.state.context,
            period=period,
            variable=variable,
            area=areas,
            parent=[p for p in parents if p],
            method=method,
            variance=variance,
            min_n=min_n,
            max_cv=max_cv,
            bootstrap=bootstrap,
            seed=seed,
        )


# `GET /api/v1/rates?period=1405-01&by=agency|channel|mode|province`: AAPOR rates for staff.


class RatesController(Controller):
    path = "/api/v1/rates"
    tags: ClassVar[list[str]] = ["rates"]

    @get(
        "/",
        guards=[staff("admin", "statistician", "viewer", "agency")],
        summary="AAPOR response (RR1, RR2), cooperation and contact rates for a period",
        sync_to_thread=True,
    )
    def rates(
        self,
        context: Context,
        principal: Caller,
        period: FromQuery[str],
        by: FromQuery[str] = "agency",
    ) -> dict[str, Any]:
        agency_id = agency_scope(principal)  # an agency operator: its own agency only
        wanted = parse_period(period)
        with context.read_sessions() as session:
            table = response_rates(session, wanted, by=by, agency_id=agency_id)
        return {
            "period": {
                "label": wanted.label,
                "calendar": wanted.calendar,
                "start": wanted.start.isoformat(),
                "end": wanted.end.isoformat(),
            },
            "by": by,
            "rows": table.records(),
        }


class SimulationIn(msgspec.Struct, forbid_unknown_fields=True):
    plan_yaml: str
    design_yaml: str
    periods: int = 200
    seed: int | None = 1


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput("the request body must be a JSON object")
    return value


PLAN_DESIGNERS = ("admin", "statistician")


class PlanDesignController(Controller):
    """The sample-design workflow (docs/sample-design.md), as `survey plans propose|simulate`:

    - `POST /api/v1/plans/proposals` JSON `{period, target_moe | target_cv, by, ...}` -> the
      proposal's plan file (`plan_yaml`), design sidecar (`design_yaml`), inputs (`inputs_csv`)
      and its summary table as data (`domains`, `totals`, `strata`); audited as `plan.propose`;
    - `POST /api/v1/plans/simulations` JSON `{plan_yaml, design_yaml, periods?, seed?}` -> the
      plan as (perhaps) edited and what simulated periods of it delivered;
    - `POST /api/v1/plans` (survey.sampling.api) with the (edited) `plan_yaml` activates it.
    """

    path = "/api/v1"
    tags: ClassVar[list[str]] = ["plans"]

    @post("/plans/proposals", guards=[staff(*PLAN_DESIGNERS)], status_code=200)
    async def propose_plan(self, request: Request) -> dict[str, Any]:
        """Per-stratum rates meeting a target precision, from the platform's history."""
        wanted = plan_proposals.parse_request(_json_object(await request.body()))
        context: AppContext = request.app.state.context
        principal = principal_of(request)
        return await anyio.to_thread.run_sync(
            plan_proposals.run_proposal, context, principal, wanted
        )

    @post("/plans/simulations", guards=[staff(*PLAN_DESIGNERS)], status_code=200)
    async def simulate_plan(self, request: Request) -> dict[str, Any]:
        """What simulated periods of a (perhaps edited) proposal deliver against its targets."""
        body: SimulationIn = parse_body(await request.body(), SimulationIn)
        return await anyio.to_thread.run_sync(
            plan_proposals.run_simulation, body.plan_yaml, body.design_yaml, body.periods, body.seed
        )
