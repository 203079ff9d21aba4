"""Staff HTTP API for sampling plans and registered questionnaires (thin: parse, call, map).

A plan is posted as its YAML text (`Content-Type: application/yaml` or text/plain); problems
come back as 422 with every problem and its key path.

Proposals and simulations of plans from the platform's history are in survey.results.api
(they read the export); `POST /api/v1/plans` activates the plan file they produce.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any, ClassVar

import anyio.to_thread
from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery

from survey.context import AppContext
from survey.errors import InvalidInput
from survey.http.guards import principal_of, staff
from survey.kernel.db import transaction
from survey.registry import questionnaires as questionnaire_registry
from survey.sampling import plans

WRITERS = ("admin", "statistician")
READERS = ("admin", "statistician", "viewer")
SOURCE = "<request body>"


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

    @get("/questionnaires", guards=[staff(*READERS)], sync_to_thread=True)
    def list_questionnaires(self, request: Request) -> dict[str, Any]:
        context: AppContext = request.app.state.context
        with context.read_sessions() as session:
            rows = questionnaire_registry.list_questionnaires(session)
        return {"questionnaires": [asdict(q) for q in rows]}
