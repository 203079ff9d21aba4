"""Staff HTTP API for sampling plans and registered questionnaires (thin: parse, call, map).

A plan is posted as its YAML text (`Content-Type: application/yaml` or text/plain); problems
come back as 422 with every problem and its key path.

The sample-design workflow (docs/sample-design.md), as `survey plans propose|simulate|apply`:

- `POST /api/v1/plans/proposals` JSON `{period, target_moe | target_cv, by, ...}` -> the
  proposal's plan file (`plan_yaml`), design sidecar (`design_yaml`), inputs (`inputs_csv`)
  and its summary table as data (`domains`, `totals`, `strata`); audited as `plan.propose`;
- `POST /api/v1/plans/simulations` JSON `{plan_yaml, design_yaml, periods?, seed?}` -> the
  plan as (perhaps) edited and what simulated periods of it delivered;
- `POST /api/v1/plans` with the (edited) `plan_yaml` activates it.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any, ClassVar

import anyio.to_thread
import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery

from survey.context import AppContext
from survey.errors import InvalidInput, Problem
from survey.http.bodies import parse_body
from survey.http.guards import principal_of, staff
from survey.kernel import audit
from survey.kernel.db import transaction
from survey.kernel.principal import Principal
from survey.registry import questionnaires as questionnaire_registry
from survey.sampling import plans
from survey.sampling import proposals as plan_proposals

WRITERS = ("admin", "statistician")
READERS = ("admin", "statistician", "viewer")
SOURCE = "<request body>"
MAX_SIMULATED_PERIODS = 2000


class SimulationIn(msgspec.Struct, forbid_unknown_fields=True):
    plan_yaml: str
    design_yaml: str
    periods: int = 200
    seed: int | None = 1


def _yaml_text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the plan is not UTF-8 text (byte {exc.start})") from None


def _today(context: AppContext) -> date:
    return plans.today_in(context.clock(), context.settings.timezone)


class PlanController(Controller):
    path = "/api/v1"
    tags: ClassVar[list[str]] = ["plans"]

    @get("/plans", guards=[staff(*READERS)], sync_to_thread=True)
    def list_plans(self, request: Request) -> dict[str, Any]:
        """Every plan version, newest first; `in_force` marks today's (Asia/Tehran)."""
        context: AppContext = request.app.state.context
        today = _today(context)
        with context.read_sessions() as session:
            versions = plans.list_plans(session, today=today)
        return {"today": today, "plans": [asdict(p) for p in versions]}

    @get("/plans/{version:int}", guards=[staff(*READERS)], sync_to_thread=True)
    def show_plan(self, request: Request, version: FromPath[int]) -> dict[str, Any]:
        context: AppContext = request.app.state.context
        with context.read_sessions() as session:
            detail = plans.show_plan(session, version, today=_today(context))
        return asdict(detail)

    @post("/plans", guards=[staff(*WRITERS)], status_code=201)
    async def apply_plan(
        self, request: Request, starts: FromQuery[date | None] = None
    ) -> dict[str, Any]:
        """Validate the YAML body and activate it as a new plan version."""
        text = _yaml_text(await request.body())
        context: AppContext = request.app.state.context
        principal = principal_of(request)

        def work() -> plans.PlanDetail:
            with transaction(context.sessions) as session:
                detail = plans.apply_plan(
                    session, principal, text, file=SOURCE, starts=starts, now=context.clock()
                )
            with context.read_sessions() as session:
                return plans.show_plan(session, detail.version, today=_today(context))

        return asdict(await anyio.to_thread.run_sync(work))

    @post("/plans/validate", guards=[staff(*WRITERS)], status_code=200)
    async def validate_plan(
        self, request: Request, starts: FromQuery[date | None] = None
    ) -> dict[str, Any]:
        """Check the YAML body without activating it."""
        text = _yaml_text(await request.body())
        context: AppContext = request.app.state.context

        def work() -> plans.ValidPlan:
            with context.read_sessions() as session:
                return plans.validate_plan(session, text, file=SOURCE, starts=starts)

        valid = await anyio.to_thread.run_sync(work)
        return {
            "valid": True,
            "name": valid.plan.name,
            "starts": valid.plan.starts,
            "questionnaires": list(valid.questionnaires),
        }

    @post("/plans/proposals", guards=[staff(*WRITERS)], status_code=200)
    async def propose_plan(self, request: Request) -> dict[str, Any]:
        """Per-stratum rates meeting a target precision, from the platform's history."""
        wanted = plan_proposals.parse_request(_json_object(await request.body()))
        context: AppContext = request.app.state.context
        principal = principal_of(request)
        return await anyio.to_thread.run_sync(propose, context, principal, wanted)

    @post("/plans/simulations", guards=[staff(*WRITERS)], status_code=200)
    async def simulate_plan(self, request: Request) -> dict[str, Any]:
        """What simulated periods of a (perhaps edited) proposal deliver against its targets."""
        body: SimulationIn = parse_body(await request.body(), SimulationIn)
        return await anyio.to_thread.run_sync(
            simulate, body.plan_yaml, body.design_yaml, body.periods, body.seed
        )

    @get("/questionnaires", guards=[staff(*READERS)], sync_to_thread=True)
    def list_questionnaires(self, request: Request) -> dict[str, Any]:
        context: AppContext = request.app.state.context
        with context.read_sessions() as session:
            rows = questionnaire_registry.list_questionnaires(session)
        return {"questionnaires": [asdict(q) for q in rows]}


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput("the request body must be a JSON object")
    return value


def propose(
    context: AppContext, principal: Principal, request: plan_proposals.ProposalRequest
) -> dict[str, Any]:
    """Run a proposal and audit who asked for which target (shared by the API and the page)."""
    result = request.run(context)
    totals = result.proposal.totals
    domains = result.proposal.domains
    with transaction(context.sessions) as session:
        audit.record(
            session,
            principal,
            "plan.propose",
            "sampling_plan_proposal",
            request.period.label,
            after={
                "period": request.period.label,
                "target": request.target.to_dict(),
                "within": request.within,
                "invitations": round(totals["invitations"], 1),
                "cost": round(totals["cost"], 2),
                "publishable": int(domains["publishable"].sum()),
            },
            at=context.clock(),
        )
    return {
        "period": plan_proposals.period_record(request.period),
        "history": (
            plan_proposals.period_record(result.history) if result.history is not None else None
        ),
        **plan_proposals.proposal_records(result.proposal),
        "sources": {
            "response_rate": _counts(result.inputs["response_rate_source"]),
            "index": _counts(result.inputs["index_source"]),
        },
        "plan_yaml": result.plan_text,
        "design_yaml": result.design_text,
        "inputs_csv": result.inputs.to_csv(index=False, lineterminator="\n"),
    }


def _counts(values: Any) -> dict[str, int]:
    """How many strata took each source (stratum, agency, assumed or file)."""
    return {str(k): int(v) for k, v in sorted(values.value_counts().items())}


def simulate(plan_yaml: str, design_yaml: str, periods: int, seed: int | None) -> dict[str, Any]:
    """Simulate a plan file against its design sidecar (shared by the API and the page)."""
    if not 1 <= periods <= MAX_SIMULATED_PERIODS:
        raise InvalidInput(
            "bad number of periods",
            [Problem(f"expected 1 to {MAX_SIMULATED_PERIODS}, got {periods}", "periods")],
        )
    simulation = plan_proposals.simulate_plan(
        plan_yaml, design_yaml, file="plan_yaml", periods=periods, seed=seed
    )
    return plan_proposals.simulation_records(simulation)
