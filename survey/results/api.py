"""Staff HTTP API of the results domain (thin: parse, call one service, return).

- Export downloads (statisticians and admins), CSV, audited:
  `GET /api/v1/export/responses?from=DAY&to=DAY[&include_partial=true]` and
  `GET /api/v1/export/frame-counts?from=DAY&to=DAY`. Days are Gregorian (2026-03-21) or Solar
  Hijri (1405-01-01), `to` inclusive; columns as `survey export responses` (docs/export.md).
- Analyses of a period (statisticians and admins; survey.results.analyses):
  `POST /api/v1/analysis/regress`, `GET /api/v1/analysis/drivers`,
  `GET /api/v1/analysis/small-areas`.
- AAPOR rates: `GET /api/v1/rates?period=1405-01&by=agency|channel|mode|province` (every staff
  role; an agency operator sees its own agency).
- Sample design from history (survey.results.proposals, docs/sample-design.md):
  `POST /api/v1/plans/proposals` JSON `{period, target_moe | target_cv, by, ...}` -> the
  proposal's plan file (`plan_yaml`), design sidecar (`design_yaml`), inputs (`inputs_csv`)
  and its summary table as data (`domains`, `totals`, `strata`), audited as `plan.propose`;
  `POST /api/v1/plans/simulations` JSON `{plan_yaml, design_yaml, periods?, seed?}` -> what
  simulated periods of the (perhaps edited) plan deliver. `POST /api/v1/plans`
  (survey.sampling.api) activates the plan file.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, QueryParameter

from survey.errors import InvalidInput
from survey.http.bodies import parse_body
from survey.http.dependencies import Caller, Context
from survey.http.guards import agency_scope, staff
from survey.http.openapi import documented_body, json_example
from survey.results import proposals as plan_proposals
from survey.results.analyses import ROLES, RegressIn, run_drivers, run_regression, run_small_areas
from survey.results.downloads import Download, frame_counts_download, responses_download
from survey.results.rates import rates_report

CSV = "text/csv; charset=utf-8"
PLAN_DESIGNERS = ("admin", "statistician")


class SimulationIn(msgspec.Struct, forbid_unknown_fields=True):
    plan_yaml: str
    design_yaml: str
    periods: int = 200
    seed: int | None = 1


# -- the answers' types (the services build plain dicts; these say what the API sends) --------

Scalar = str | int | float | bool | None
Row = dict[str, Scalar]


class PeriodOut(msgspec.Struct):
    """A period with its days in both calendars (`last_day` inclusive)."""

    label: str
    calendar: str
    first_day: str
    last_day: str
    days: int
    text: str


class RegressionOut(msgspec.Struct):
    period: PeriodOut
    formula: str
    formula_fitted: str
    family: str
    by: list[str]
    responses: int
    rows: Annotated[
        list[Row],
        msgspec.Meta(
            description="One row per term (per group of `by`): term, estimate, se, ci_low, "
            "ci_high, df, p_value, n, dropped, note, and the `by` columns"
        ),
    ]


class DriversOut(msgspec.Struct):
    period: PeriodOut
    questionnaire: str
    outcome: str
    drivers: list[str]
    method: str
    replicates: int
    rows: Annotated[
        list[Row],
        msgspec.Meta(
            description="One row per driver, nationally then per agency: scope, agency, driver, "
            "importance, importance_se, ci_low, ci_high, raw_weight, r2, performance, "
            "performance_se, n, max_vif, note"
        ),
    ]


class SmallAreasOut(msgspec.Struct):
    period: PeriodOut
    variable: str
    area: list[str]
    parent: list[str]
    method: str
    sigma2_u: float | None
    coefficients: Annotated[list[Row], msgspec.Meta(description="term, estimate, se, z, p_value")]
    model_based_cells: int
    label: str
    rows: Annotated[
        list[Row],
        msgspec.Meta(
            description="One row per cell: the `area` columns, n, direct, direct_se, direct_cv, "
            "direct_ok, eblup, mse, rmse, gamma, synthetic, estimate, model_based, ..."
        ),
    ]


class RatesPeriodOut(msgspec.Struct):
    label: str
    calendar: str
    start: str
    end: str


class RateRowOut(msgspec.Struct, omit_defaults=True):
    """AAPOR dispositions and rates of one group (the group named by `by`; `all` first)."""

    interviews: int = msgspec.field(name="I")  # the JSON keys are AAPOR's letters
    partials: int = msgspec.field(name="P")
    refusals: int = msgspec.field(name="R")
    non_contacts: int = msgspec.field(name="NC")
    other: int = msgspec.field(name="O")
    unknown_household: int = msgspec.field(name="UH")
    unknown_other: int = msgspec.field(name="UO")
    total: int
    RR1: float | None
    RR2: float | None
    COOP1: float | None
    CON1: float | None
    agency: str | None = None
    channel: str | None = None
    mode: str | None = None
    province: str | None = None


class RatesOut(msgspec.Struct):
    period: RatesPeriodOut
    by: Literal["agency", "channel", "mode", "province"]
    rows: list[RateRowOut]


class ProposalIn(msgspec.Struct, forbid_unknown_fields=True):
    """A sample-design request (docs/sample-design.md); exactly one of target_moe, target_cv."""

    period: Annotated[str, msgspec.Meta(examples=["1405-Q1"])]
    target_moe: float | None = None
    target_cv: float | None = None
    by: list[str] | str = "agency"
    measure: Literal["mean", "proportion"] = "mean"
    history: str | None = None
    strata: list[str] | str | None = None
    within: str = "optimal"
    total: float | None = None
    budget: float | None = None
    q: float | None = None
    cost_per_part: float | None = None
    assurance: float | None = None
    min_completes: float | None = None
    name: str | None = None


class ProposalTableOut(msgspec.Struct):
    target: dict[str, Any]
    method: dict[str, Any]
    domains: list[Row]
    totals: dict[str, float | None]
    strata: list[Row]
    summary_text: str


class ProposalOut(ProposalTableOut):
    period: PeriodOut
    history: PeriodOut | None
    sources: dict[str, dict[str, int]]
    plan_yaml: str
    design_yaml: str
    inputs_csv: str


class SimulatedOut(msgspec.Struct):
    periods: int
    seed: int | None
    measure: str
    domains: list[Row]
    summary_text: str


class SimulationOut(msgspec.Struct):
    proposal: ProposalTableOut
    simulation: SimulatedOut


def _out(value: Any, kind: type[Any]) -> Any:
    """A service's plain answer as the API's typed one (the schema says what is sent)."""
    return msgspec.convert(value, kind)


CSV_ANSWER = {200: ResponseSpec(str, media_type="text/csv", description="The CSV file (UTF-8)")}


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput("the request body must be a JSON object")
    return value


def _csv(download: Download) -> Response[str]:
    headers = {
        "Content-Disposition": f'attachment; filename="{download.name}"',
        "Cache-Control": "no-store",
    }
    return Response(download.text, media_type=CSV, headers=headers)


class ExportController(Controller):
    path = "/api/v1/export"
    tags = ("export",)
    guards = (staff("admin", "statistician"),)

    @get(
        "/responses",
        summary="Responses with design columns and weights (CSV)",
        sync_to_thread=True,
        responses=CSV_ANSWER,
    )
    def responses(
        self,
        context: Context,
        principal: Caller,
        date_from: Annotated[str, QueryParameter(name="from")],
        date_to: Annotated[str, QueryParameter(name="to")],
        include_partial: FromQuery[bool] = False,
    ) -> Response[str]:
        return _csv(responses_download(context, principal, date_from, date_to, include_partial))

    @get(
        "/frame-counts",
        summary="Frame counts by stratum and margins (CSV)",
        sync_to_thread=True,
        responses=CSV_ANSWER,
    )
    def frame_counts(
        self,
        context: Context,
        principal: Caller,
        date_from: Annotated[str, QueryParameter(name="from")],
        date_to: Annotated[str, QueryParameter(name="to")],
        include_partial: FromQuery[bool] = False,
    ) -> Response[str]:
        return _csv(frame_counts_download(context, principal, date_from, date_to, include_partial))


class AnalysisController(Controller):
    path = "/api/v1/analysis"
    tags = ("analysis",)
    guards = (staff(*ROLES),)

    @post(
        "/regress",
        status_code=200,
        summary="Design-based regression (svyglm) on a period",
        dependencies=documented_body(
            RegressIn,
            examples=[
                json_example(
                    "The index by channel",
                    {"period": "1405-08", "formula": "index ~ channel", "family": "gaussian"},
                )
            ],
        ),
    )
    async def regression(self, request: Request[Any, Any, Any], context: Context) -> RegressionOut:
        body: RegressIn = parse_body(await request.body(), RegressIn)
        return _out(await anyio.to_thread.run_sync(run_regression, context, body), RegressionOut)

    @get("/drivers", sync_to_thread=True, summary="Key drivers of overall satisfaction")
    def drivers(
        self,
        context: Context,
        period: FromQuery[str],
        agency: FromQuery[str | None] = None,
        outcome: FromQuery[str] = "q_overall",
        driver: Annotated[list[str] | None, QueryParameter(name="driver")] = None,
        questionnaire: FromQuery[str | None] = None,
        method: FromQuery[str] = "relative_weights",
        replicates: FromQuery[int] = 200,
        seed: FromQuery[int] = 0,
        min_n: FromQuery[int] = 100,
    ) -> DriversOut:
        found = run_drivers(
            context,
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
        return _out(found, DriversOut)

    @get("/small-areas", sync_to_thread=True, summary="Fay-Herriot small-area estimates")
    def small_areas(
        self,
        context: Context,
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
    ) -> SmallAreasOut:
        found = run_small_areas(
            context,
            period=period,
            variable=variable,
            area=area,
            parent=parent,
            method=method,
            variance=variance,
            min_n=min_n,
            max_cv=max_cv,
            bootstrap=bootstrap,
            seed=seed,
        )
        return _out(found, SmallAreasOut)


class RatesController(Controller):
    path = "/api/v1/rates"
    tags = ("rates",)

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
    ) -> RatesOut:
        found = rates_report(context, period, by=by, agency_id=agency_scope(principal))
        return _out(found, RatesOut)


class PlanDesignController(Controller):
    path = "/api/v1/plans"
    tags = ("plans",)
    guards = (staff(*PLAN_DESIGNERS),)

    @post(
        "/proposals",
        status_code=200,
        dependencies=documented_body(
            ProposalIn,
            examples=[
                json_example(
                    "A margin of 3 points per agency",
                    {"period": "1405-Q1", "target_moe": 3, "by": ["agency"]},
                )
            ],
        ),
    )
    async def propose_plan(
        self, request: Request[Any, Any, Any], context: Context, principal: Caller
    ) -> ProposalOut:
        """Per-stratum rates meeting a target precision, from the platform's history."""
        wanted = plan_proposals.parse_request(_json_object(await request.body()))
        found = await anyio.to_thread.run_sync(
            plan_proposals.run_proposal, context, principal, wanted
        )
        return _out(found, ProposalOut)

    @post(
        "/simulations",
        status_code=200,
        dependencies=documented_body(SimulationIn, description="A proposal's two files"),
    )
    async def simulate_plan(self, request: Request[Any, Any, Any]) -> SimulationOut:
        """What simulated periods of a (perhaps edited) proposal deliver against its targets."""
        body: SimulationIn = parse_body(await request.body(), SimulationIn)
        found = await anyio.to_thread.run_sync(
            plan_proposals.run_simulation, body.plan_yaml, body.design_yaml, body.periods, body.seed
        )
        return _out(found, SimulationOut)
