"""Staff HTTP API for sampling plans (thin: parse, call, map).

A plan is posted as its YAML text (`Content-Type: application/yaml` or text/plain); problems
come back as 422 with every problem and its key path.

Proposals and simulations of plans from the platform's history are in survey.results.api
(they read the export); `POST /api/v1/plans` activates the plan file they produce.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

import anyio.to_thread
from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery

from survey.errors import InvalidInput
from survey.http.dependencies import Caller, Context
from survey.http.guards import staff
from survey.sampling import plans

WRITERS = ("admin", "statistician")
READERS = ("admin", "statistician", "viewer")
SOURCE = "<request body>"


def _yaml_text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the plan is not UTF-8 text (byte {exc.start})") from None


class PlanController(Controller):
    path = "/api/v1"
    tags = ("plans",)

    @get("/plans", guards=[staff(*READERS)], sync_to_thread=True)
    def list_plans(self, context: Context) -> dict[str, Any]:
        """Every plan version, newest first; `in_force` marks today's (Asia/Tehran)."""
        return asdict(plans.plan_list(context))

    @get("/plans/{version:int}", guards=[staff(*READERS)], sync_to_thread=True)
    def show_plan(self, context: Context, version: FromPath[int]) -> dict[str, Any]:
        return asdict(plans.plan_detail(context, version))

    @post("/plans", guards=[staff(*WRITERS)], status_code=201)
    async def apply_plan(
        self,
        request: Request[Any, Any, Any],
        context: Context,
        principal: Caller,
        starts: FromQuery[date | None] = None,
    ) -> dict[str, Any]:
        """Validate the YAML body and activate it as a new plan version."""
        text = _yaml_text(await request.body())
        return asdict(
            await anyio.to_thread.run_sync(
                plans.activate_plan, context, principal, text, SOURCE, starts
            )
        )

    @post("/plans/validate", guards=[staff(*WRITERS)], status_code=200)
    async def validate_plan(
        self,
        request: Request[Any, Any, Any],
        context: Context,
        starts: FromQuery[date | None] = None,
    ) -> dict[str, Any]:
        """Check the YAML body without activating it."""
        text = _yaml_text(await request.body())
        return asdict(
            await anyio.to_thread.run_sync(plans.check_plan, context, text, SOURCE, starts)
        )
