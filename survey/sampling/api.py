"""Staff HTTP API for sampling plans (thin: parse, call, map).

A plan is posted as its YAML text (`Content-Type: application/yaml` or text/plain); problems
come back as 422 with every problem and its key path.

Proposals and simulations of plans from the platform's history are in survey.results.api
(they read the export); `POST /api/v1/plans` activates the plan file they produce.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath, QueryParameter

from survey.errors import InvalidInput
from survey.http.dependencies import Caller, Context
from survey.http.guards import staff
from survey.http.openapi import documented_body, extra_request_media, json_example
from survey.kernel.periods import parse_optional_day
from survey.sampling import plans

WRITERS = ("admin", "statistician")
READERS = ("admin", "statistician", "viewer")
SOURCE = "<request body>"
STARTS = "override the file's start day: 2026-03-21, or Solar Hijri 1405-01-01 (year below 1700)"


PLAN_YAML = """name: example
starts: 2026-01-01
strata: [agency, service, channel]
default_rate: 0.5
rates:
  - {service: TAX-01, channel: in_person, rate: 1.0}
contact_rule_days: 90
quiet_hours: ["21:00", "08:00"]
reminder_after_hours: 48
expires_after_days: 7
questionnaires:
  - {service: TAX-01, questionnaire: core-transaction, mode: sms_link}
"""
PLAN_BODY = documented_body(
    str,
    media_type="application/yaml",
    description="The plan file (YAML, UTF-8; format: docs/service.md, 'The plan file')",
    examples=[json_example("A plan file", PLAN_YAML)],
)
PLAN_MEDIA = extra_request_media(text_plain="The plan file as plain text (YAML)")


class RateRuleOut(msgspec.Struct, omit_defaults=True):
    """A rule giving the strata it names another sampling rate."""

    rate: float
    agency: str | None = None
    service: str | None = None
    channel: str | None = None
    province: str | None = None


class QuestionnaireChoiceOut(msgspec.Struct, omit_defaults=True):
    """Which questionnaire (version resolved) a service's sampled units get, and how."""

    service: str
    questionnaire: str
    mode: str
    version: int | None = None
    channel: str | None = None


class PlanSummaryOut(msgspec.Struct):
    version: int
    name: str
    starts: date
    in_force: bool
    strata: list[str]
    default_rate: float
    rules: int
    created_at: datetime
    created_by: str


class PlanListOut(msgspec.Struct):
    """Every plan version, newest first; `today` is the day `in_force` refers to."""

    today: date
    plans: list[PlanSummaryOut]


class PlanDetailOut(msgspec.Struct):
    """One plan version as stored, with its source file."""

    version: int
    name: str
    starts: date
    in_force: bool
    strata: list[str]
    default_rate: float
    rates: list[RateRuleOut]
    contact_rule_days: int
    quiet_hours: list[str] | None
    reminder_after_hours: float | None
    expires_after_days: float
    questionnaires: list[QuestionnaireChoiceOut]
    source: str
    created_at: datetime


class PlanCheckOut(msgspec.Struct):
    """A plan file that passed validation (nothing activated)."""

    valid: bool
    name: str
    starts: date
    questionnaires: list[QuestionnaireChoiceOut]


def _out(value: Any, kind: type[Any]) -> Any:
    """A service's view as the API's typed answer (the schema says exactly what is sent)."""
    return msgspec.convert(value, kind, from_attributes=True)


def _yaml_text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the plan is not UTF-8 text (byte {exc.start})") from None


class PlanController(Controller):
    path = "/api/v1"
    tags = ("plans",)

    @get("/plans", guards=[staff(*READERS)], sync_to_thread=True)
    def list_plans(self, context: Context) -> PlanListOut:
        """Every plan version, newest first; `in_force` marks today's (Asia/Tehran)."""
        return _out(plans.plan_list(context), PlanListOut)

    @get("/plans/{version:int}", guards=[staff(*READERS)], sync_to_thread=True)
    def show_plan(self, context: Context, version: FromPath[int]) -> PlanDetailOut:
        return _out(plans.plan_detail(context, version), PlanDetailOut)

    @post(
        "/plans",
        guards=[staff(*WRITERS)],
        status_code=201,
        dependencies=PLAN_BODY,
        opt=PLAN_MEDIA,
    )
    async def apply_plan(
        self,
        request: Request[Any, Any, Any],
        context: Context,
        principal: Caller,
        starts: Annotated[str | None, QueryParameter(description=STARTS)] = None,
    ) -> PlanDetailOut:
        """Validate the YAML body and activate it as a new plan version."""
        day = parse_optional_day(starts, field="starts")
        text = _yaml_text(await request.body())
        activated = await anyio.to_thread.run_sync(
            plans.activate_plan, context, principal, text, SOURCE, day
        )
        return _out(activated, PlanDetailOut)

    @post(
        "/plans/validate",
        guards=[staff(*WRITERS)],
        status_code=200,
        dependencies=PLAN_BODY,
        opt=PLAN_MEDIA,
    )
    async def validate_plan(
        self,
        request: Request[Any, Any, Any],
        context: Context,
        starts: Annotated[str | None, QueryParameter(description=STARTS)] = None,
    ) -> PlanCheckOut:
        """Check the YAML body without activating it."""
        day = parse_optional_day(starts, field="starts")
        text = _yaml_text(await request.body())
        checked = await anyio.to_thread.run_sync(plans.check_plan, context, text, SOURCE, day)
        return _out(checked, PlanCheckOut)
