"""Sampling plans: the YAML file format, its validation, activation as a new version, listing.

A plan file (see docs/service.md for the full reference)::

    name: example
    starts: 2026-01-01
    strata: [agency, service, channel]
    default_rate: 0.5
    rates:
      - {service: TAX-01, channel: in_person, rate: 1.0}
    contact_rule_days: 90
    quiet_hours: null            # or ["21:00", "08:00"]
    reminder_after_hours: 48     # null: no reminder
    expires_after_days: 7
    questionnaires:
      - {service: TAX-01, questionnaire: core-transaction, mode: sms_link}
      - {service: TAX-02, questionnaire: sms-short, mode: sms_dialog}

Validation reports every problem at once, each with its key path (`rates[2].rate`). Rate rules
may only name stratum dimensions, so that one stratum has one rate (its units' inclusion
probability). Two rules that can match the same transaction must either have the same rate or
one must refine the other (name all of its dimensions and more): then the more specific one
applies, as `survey.sampling.draw` does; any other overlap is ambiguous and refused.

Activation never changes an earlier version: it stores a new `SamplingPlan` row (version =
highest + 1) with a fresh random seed and the YAML source. The version in force on a day is the
one with the latest `starts` on or before it (ties: the highest version).

The statements behind all of this are in `survey.sampling.store`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar, get_args
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from questionnaires.loading import load_library
from questionnaires.safe_yaml import SafeYamlLoader
from questionnaires.schema import Questionnaire
from survey.context import AppContext
from survey.errors import Conflict, NotFound, PlanError, Problem
from survey.kernel import audit, sms
from survey.kernel.db import transaction
from survey.kernel.periods import DAY_FORMS, PeriodError, parse_day
from survey.kernel.principal import Principal
from survey.kernel.tokens import TOKEN_LENGTH
from survey.models import CHANNELS, MODES, SamplingPlan
from survey.registry import questionnaires as questionnaire_registry
from survey.sampling import store

__all__ = [
    "DIMENSIONS",
    "PlanCheck",
    "PlanDetail",
    "PlanFile",
    "PlanList",
    "PlanView",
    "ValidPlan",
    "activate_plan",
    "apply_plan",
    "check_plan",
    "list_plans",
    "parse_plan",
    "plan_detail",
    "plan_in_force",
    "plan_list",
    "show_plan",
    "today_in",
    "today_of",
    "validate_plan",
]

DIMENSIONS: tuple[str, ...] = ("agency", "service", "channel", "province")
Dimension = Literal["agency", "service", "channel", "province"]
DEFAULT_STRATA: tuple[Dimension, ...] = ("agency", "service", "channel")
MAX_PLAN_BYTES = 1024 * 1024
_CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

ChannelCode = Literal["in_person", "online", "phone", "kiosk"]
Mode = Literal["sms_link", "sms_dialog"]
Number = StrictFloat | StrictInt
Code = Annotated[StrictStr, Field(min_length=1, max_length=60)]


def _rate(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number between 0 and 1, got {value!r}")
    if not 0 <= value <= 1:
        raise ValueError(f"must be between 0 and 1, got {value}")
    return float(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateRule(_Strict):
    """`{agency|service|channel|province: ..., rate: r}`: the rate of the matching strata."""

    agency: Code | None = None
    service: Code | None = None
    channel: ChannelCode | None = None
    province: Code | None = None
    rate: Number

    _check_rate = field_validator("rate", mode="before")(_rate)

    def conditions(self) -> dict[str, str]:
        return {d: getattr(self, d) for d in DIMENSIONS if getattr(self, d) is not None}


class QuestionnaireChoice(_Strict):
    """Which questionnaire, in which mode, a service's (and channel's) sampled units get."""

    service: Code
    channel: ChannelCode | None = None
    questionnaire: Annotated[StrictStr, Field(min_length=1, max_length=80)]
    version: Annotated[StrictInt, Field(ge=1)] | None = None
    mode: Mode


class PlanFile(_Strict):
    """The plan file as written (structure and ranges; registry references checked apart)."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=120)]
    starts: date
    strata: Annotated[list[Dimension], Field(min_length=1)] = list(DEFAULT_STRATA)
    default_rate: Number
    rates: list[RateRule] = []
    # Upper bounds keep every date the service derives from a plan representable (a plan of
    # 10^9 days was accepted once and stopped all invitations with an OverflowError).
    contact_rule_days: Annotated[StrictInt, Field(ge=0, le=3660)] = 90
    quiet_hours: list[str] | None
    reminder_after_hours: Annotated[Number, Field(gt=0, le=24 * 366)] | None
    expires_after_days: Annotated[Number, Field(gt=0, le=366)]
    questionnaires: Annotated[list[QuestionnaireChoice], Field(min_length=1)]

    _check_default_rate = field_validator("default_rate", mode="before")(_rate)

    @field_validator("starts", mode="before")
    @classmethod
    def _day(cls, value: Any) -> Any:
        """The start day in either calendar (`2026-03-21` or Solar Hijri `1405-01-01`), with
        Persian or Arabic-Indic digits as typed; the loader keeps dates as text, since YAML
        would read `1405-01-01` as the Gregorian year 1405 and refuse `1405-02-31`."""
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return parse_day(value, field="starts")
            except PeriodError as exc:
                raise ValueError(exc.problems[0].message) from None
        raise ValueError(f"must be {DAY_FORMS}; got {value!r}")

    @field_validator("strata")
    @classmethod
    def _distinct_strata(cls, value: list[str]) -> list[str]:
        repeated = sorted({d for d in value if value.count(d) > 1})
        if repeated:
            raise ValueError(f"names {', '.join(repeated)} more than once")
        return value

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _clock_times(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError(
                f'must be null or two clock times such as ["21:00", "08:00"], got {value!r}'
            )
        for position, time in enumerate(value):
            if isinstance(time, int) and not isinstance(time, bool):
                raise ValueError(
                    f'[{position}] must be a quoted clock time such as "21:00"; YAML reads '
                    f"an unquoted {time // 60}:{time % 60:02d} as the number {time}"
                )
            if not isinstance(time, str) or not _CLOCK_TIME.match(time):
                raise ValueError(f'[{position}] must be a clock time "HH:MM", got {time!r}')
        if value[0] == value[1]:
            raise ValueError("start and end are the same time; use null for no quiet hours")
        return value


_Part = TypeVar("_Part", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ValidPlan:
    """A validated plan, ready to activate; `questionnaires` has each version resolved."""

    plan: PlanFile
    source: str
    questionnaires: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class PlanView:
    version: int
    name: str
    starts: date
    in_force: bool
    strata: list[str]
    default_rate: float
    rules: int
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class PlanDetail:
    version: int
    name: str
    starts: date
    in_force: bool
    strata: list[str]
    default_rate: float
    rates: list[dict[str, Any]]
    contact_rule_days: int
    quiet_hours: list[str] | None
    reminder_after_hours: float | None
    expires_after_days: float
    questionnaires: list[dict[str, Any]]
    source: str
    created_at: datetime
    created_by: str


# -- parsing and validation ------------------------------------------------------------------


def parse_plan(text: str, *, file: str) -> dict[str, Any]:
    """The YAML document as a mapping; PlanError for syntax errors or repeated keys."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PLAN_BYTES:
        raise PlanError(f"{file}: a plan file must be smaller than {MAX_PLAN_BYTES // 1024} KB")
    loader: _PlanLoader | None = None
    try:
        loader = _PlanLoader(text)  # the reader refuses control characters here already
        data = loader.get_single_data()
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        # PyYAML's constructors raise these for values such as the date 2026-13-01 or an
        # explicit `!!timestamp foo`.
        raise PlanError(f"{file}: a value cannot be read: {str(exc)[:200]}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else getattr(exc, "line", None)
        where = f" (line {line}, column {mark.column + 1})" if mark else ""
        where = where or (f" (line {line})" if line else "")
        problem = str(getattr(exc, "problem", None) or exc)[:200]
        raise PlanError(f"{file}: not valid YAML{where}: {problem}") from None
    finally:
        if loader is not None:
            loader.dispose()
    if loader.repeated:
        raise _plan_error(file, loader.repeated)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise PlanError(
            f"{file}: a plan file must be a mapping of keys (name, starts, ...), got {got}"
        )
    return data


def validate_plan(
    session: Session,
    text: str,
    *,
    file: str,
    starts: date | None = None,
    public_base_url: str | None = None,
) -> ValidPlan:
    """Check a plan file against the format and the registry without changing anything.

    With `public_base_url` (the service's, as invitations carry it) also check that every
    invitation and reminder of every questionnaire choice fits two SMS parts with the agency's
    name and the real link (`_message_problems`); the running service always passes it.
    Raises PlanError listing every problem, each with its key path.
    """
    data = parse_plan(text, file=file)
    if starts is not None:
        data["starts"] = starts
    problems: list[Problem] = []
    plan: PlanFile | None = None
    try:
        plan = PlanFile.model_validate(data)
    except ValidationError as exc:
        problems += _structural_problems(exc)
    problems += _reference_problems(session, data)
    strata = plan.strata if plan is not None else _raw_strata(data)
    rules = [
        (index, rule)
        for index, rule in _valid_parts(data.get("rates"), RateRule)
        if set(rule.conditions()) <= set(strata)
    ]
    problems += _overlap_problems(session, rules)
    choices = _valid_parts(data.get("questionnaires"), QuestionnaireChoice)
    choice_problems, resolved = _questionnaire_problems(session, choices)
    problems += choice_problems
    if public_base_url is not None:
        problems += _message_problems(session, choices, resolved, public_base_url)
    if (
        plan is not None
        and plan.reminder_after_hours is not None
        and plan.reminder_after_hours >= plan.expires_after_days * 24
    ):
        problems.append(
            Problem(
                f"must be earlier than the expiry ({plan.expires_after_days:g} days = "
                f"{plan.expires_after_days * 24:g} hours), got {plan.reminder_after_hours:g}",
                field="reminder_after_hours",
            )
        )
    if problems:
        order = {key: position for position, key in enumerate(data)}
        unique = sorted(dict.fromkeys(problems), key=lambda p: _file_order(p, order))
        raise _plan_error(file, unique)
    assert plan is not None
    return ValidPlan(plan=plan, source=text, questionnaires=tuple(resolved))


def apply_plan(
    session: Session,
    principal: Principal,
    text: str,
    *,
    file: str,
    starts: date | None = None,
    now: datetime | None = None,
    public_base_url: str | None = None,
) -> PlanDetail:
    """Validate and activate the plan as a new version (earlier versions stay as they were);
    with `public_base_url`, refuse texts that would not fit two SMS parts (`validate_plan`)."""
    valid = validate_plan(session, text, file=file, starts=starts, public_base_url=public_base_url)
    plan = valid.plan
    for choice in valid.questionnaires:
        questionnaire_registry.resolve(
            session, principal, choice["questionnaire"], choice["version"]
        )
    highest = store.highest_version(session)
    row = SamplingPlan(
        version=int(highest or 0) + 1,
        name=plan.name,
        starts=plan.starts,
        seed=secrets.token_hex(32),
        strata=list(plan.strata),
        default_rate=float(plan.default_rate),
        rates=[{**rule.conditions(), "rate": float(rule.rate)} for rule in plan.rates],
        contact_rule_days=plan.contact_rule_days,
        quiet_hours=plan.quiet_hours,
        reminder_after_hours=(
            float(plan.reminder_after_hours) if plan.reminder_after_hours is not None else None
        ),
        expires_after_days=float(plan.expires_after_days),
        questionnaires=[dict(choice) for choice in valid.questionnaires],
        source=text,
        created_by=principal.actor,
    )
    if now is not None:
        row.created_at = now
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict("another plan was activated at the same moment; apply it again") from None
    audit.record(
        session,
        principal,
        "plan.apply",
        "sampling_plan",
        row.version,
        after={
            "version": row.version,
            "name": row.name,
            "starts": row.starts.isoformat(),
            "file": file,
        },
        at=now,
    )
    return _detail(row, in_force=None)


# -- listing ---------------------------------------------------------------------------------


def plan_in_force(session: Session, day: date) -> SamplingPlan | None:
    """The plan in force on `day`: latest `starts` on or before it, ties by highest version."""
    return store.plan_in_force(session, day)


def today_in(now: datetime, timezone: str = "Asia/Tehran") -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def list_plans(session: Session, *, today: date) -> list[PlanView]:
    """Every version, newest first, marking the one in force on `today`."""
    current = plan_in_force(session, today)
    rows = store.plans_newest_first(session)
    return [
        PlanView(
            version=row.version,
            name=row.name,
            starts=row.starts,
            in_force=current is not None and row.id == current.id,
            strata=list(row.strata),
            default_rate=row.default_rate,
            rules=len(row.rates),
            created_at=row.created_at,
            created_by=row.created_by,
        )
        for row in rows
    ]


def show_plan(session: Session, version: int, *, today: date) -> PlanDetail:
    # Versions are database integers: a larger number cannot exist (and must not reach SQL).
    in_range = 0 < version < 2**31
    row = store.plan_by_version(session, version) if in_range else None
    if row is None:
        known = store.plan_versions(session)
        raise NotFound(
            f"no sampling plan version {version} "
            f"(versions: {', '.join(map(str, known)) or 'none yet'})"
        )
    current = plan_in_force(session, today)
    return _detail(row, in_force=current is not None and current.id == row.id)


def _detail(row: SamplingPlan, *, in_force: bool | None) -> PlanDetail:
    return PlanDetail(
        version=row.version,
        name=row.name,
        starts=row.starts,
        in_force=bool(in_force),
        strata=list(row.strata),
        default_rate=row.default_rate,
        rates=list(row.rates),
        contact_rule_days=row.contact_rule_days,
        quiet_hours=row.quiet_hours,
        reminder_after_hours=row.reminder_after_hours,
        expires_after_days=row.expires_after_days,
        questionnaires=list(row.questionnaires),
        source=row.source,
        created_at=row.created_at,
        created_by=row.created_by,
    )


# -- services on the running context (the staff API and the console) ------------------------


@dataclass(frozen=True, slots=True)
class PlanList:
    """Every plan version, newest first; `today` is the day `in_force` refers to."""

    today: date
    plans: list[PlanView]


@dataclass(frozen=True, slots=True)
class PlanCheck:
    """A plan file that passed validation (nothing activated)."""

    valid: bool
    name: str
    starts: date
    questionnaires: list[dict[str, Any]]


def today_of(context: AppContext) -> date:
    """Today in the service's timezone (Asia/Tehran unless configured otherwise)."""
    return today_in(context.clock(), context.settings.timezone)


def plan_list(context: AppContext) -> PlanList:
    """Every version, newest first, marking the one in force today."""
    today = today_of(context)
    with context.read_sessions() as session:
        return PlanList(today=today, plans=list_plans(session, today=today))


def plan_detail(context: AppContext, version: int) -> PlanDetail:
    """One version with its source; NotFound naming the versions there are."""
    with context.read_sessions() as session:
        return show_plan(session, version, today=today_of(context))


def check_plan(context: AppContext, text: str, file: str, starts: date | None = None) -> PlanCheck:
    """Validate a plan file against the format and the registry without activating it."""
    with context.read_sessions() as session:
        valid = validate_plan(
            session,
            text,
            file=file,
            starts=starts,
            public_base_url=context.settings.public_base_url,
        )
    return PlanCheck(
        valid=True,
        name=valid.plan.name,
        starts=valid.plan.starts,
        questionnaires=list(valid.questionnaires),
    )


def activate_plan(
    context: AppContext,
    principal: Principal,
    text: str,
    file: str,
    starts: date | None = None,
) -> PlanDetail:
    """Validate and activate a plan file as a new version (audited as `plan.apply`), then
    show it as stored, with `in_force` for today."""
    with transaction(context.sessions) as session:
        detail = apply_plan(
            session,
            principal,
            text,
            file=file,
            starts=starts,
            now=context.clock(),
            public_base_url=context.settings.public_base_url,
        )
    return plan_detail(context, detail.version)


# -- internals -------------------------------------------------------------------------------


class _PlanLoader(SafeYamlLoader):
    """A safe loader without aliases (questionnaires.safe_yaml) that records repeated keys
    instead of silently keeping the last one, and keeps dates as written (see `_day`)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.repeated: list[Problem] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                self.repeated.append(
                    Problem(
                        f"is given twice (line {key_node.start_mark.line + 1}); keep one",
                        field=key,
                    )
                )
            if isinstance(key, str):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _timestamp_as_text(loader: SafeYamlLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


_PlanLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_FIELDS_OF: dict[str, tuple[str, ...]] = {
    "rates": (*DIMENSIONS, "rate"),
    "questionnaires": tuple(QuestionnaireChoice.model_fields),
}


def _structural_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        # Unions (number | int) report once per member; keep the first.
        loc = tuple(p for p in loc if p not in ("float", "int", "function-after[_rate(), float]"))
        kind = error["type"]
        given = error.get("input")
        if kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            known = _FIELDS_OF.get(str(loc[0]), tuple(PlanFile.model_fields)) if loc else ()
            field_name = loc[-1]
            message = f"unknown key {field_name!r}; expected one of {', '.join(known)}"
            if loc and loc[0] == "rates" and field_name not in DIMENSIONS:
                message = (
                    f"unknown key {field_name!r}; a rate rule names some of "
                    f"{', '.join(DIMENSIONS)} and its rate"
                )
        elif kind == "value_error":
            message = str(error["ctx"]["error"])
            if message.startswith("[") and loc:
                index, _, message = message.partition("] ")
                loc = (*loc, int(index.strip("[")))
        elif kind == "literal_error":
            message = f"must be one of {error['ctx']['expected']}, got {given!r}"
        elif kind in ("greater_than", "greater_than_equal"):
            bound = error["ctx"].get("gt", error["ctx"].get("ge"))
            relation = "greater than" if kind == "greater_than" else "at least"
            message = f"must be {relation} {bound}, got {given!r}"
        elif kind in ("model_type", "dict_type"):
            example = {
                "rates": "{service: TAX-01, rate: 0.5}",
                "questionnaires": "{service: TAX-01, questionnaire: core-transaction, mode: "
                "sms_link}",
            }.get(str(loc[0]) if loc else "", "{key: value}")
            message = f"must be a mapping such as {example}, got {given!r}"
        elif kind in ("int_type", "float_type", "string_type", "list_type", "date_type"):
            expected = {
                "int_type": "a whole number",
                "float_type": "a number",
                "string_type": "text",
                "list_type": "a list",
                "date_type": "a date (YYYY-MM-DD)",
            }[kind]
            message = f"must be {expected}, got {given!r}"
        else:
            text = error["msg"]
            message = f"{text[0].lower()}{text[1:]}, got {given!r}"
        problems.append(Problem(message, field=_path(loc) or None))
    # One problem per key path: a value that fails both union members is reported once.
    by_field: dict[str | None, Problem] = {}
    for problem in problems:
        by_field.setdefault(problem.field, problem)
    return list(by_field.values())


def _reference_problems(session: Session, data: Mapping[str, Any]) -> list[Problem]:
    """Codes the plan names that the registry does not know; strata the rules step outside."""
    problems = []
    strata = _raw_strata(data)
    agencies = store.agency_codes(session)
    services = store.service_codes(session)
    provinces = store.province_codes(session)
    rates = data.get("rates")
    for index, rule in enumerate(rates if isinstance(rates, list) else []):
        if not isinstance(rule, Mapping):
            continue
        named = [d for d in DIMENSIONS if rule.get(d) is not None]
        if not named and set(rule) == {"rate"}:
            problems.append(
                Problem(
                    "a rate rule must name at least one of "
                    f"{', '.join(DIMENSIONS)}; for all strata use default_rate",
                    field=f"rates[{index}]",
                )
            )
        for dimension in named:
            value = rule[dimension]
            where = f"rates[{index}].{dimension}"
            if dimension not in strata:
                problems.append(
                    Problem(
                        f"{dimension!r} is not a stratum dimension (strata: {', '.join(strata)}); "
                        "a rate by it would vary within a stratum. Add it to strata or drop it",
                        field=where,
                    )
                )
            if dimension == "agency" and isinstance(value, str) and value not in agencies:
                problems.append(Problem(f"no agency {value!r} in the registry", field=where))
            if dimension == "service" and isinstance(value, str) and value not in services:
                problems.append(Problem(f"no service {value!r} in the registry", field=where))
            if dimension == "province" and isinstance(value, str) and value not in provinces:
                problems.append(Problem(f"unknown province {value!r}", field=where))
    choices = data.get("questionnaires")
    for index, choice in enumerate(choices if isinstance(choices, list) else []):
        if not isinstance(choice, Mapping):
            continue
        value = choice.get("service")
        if isinstance(value, str) and value and value not in services:
            problems.append(
                Problem(
                    f"no service {value!r} in the registry",
                    field=f"questionnaires[{index}].service",
                )
            )
    return problems


def _plan_error(file: str, problems: list[Problem]) -> PlanError:
    noun = "problem" if len(problems) == 1 else "problems"
    return PlanError(f"{file}: the sampling plan has {len(problems)} {noun}", problems)


def _raw_strata(data: Mapping[str, Any]) -> list[str]:
    strata = data.get("strata", list(DEFAULT_STRATA))
    if isinstance(strata, list) and all(isinstance(s, str) for s in strata):
        return strata
    return list(DEFAULT_STRATA)


def _file_order(problem: Problem, order: Mapping[str, int]) -> tuple[int, int, str]:
    """Problems in the order of the file: top-level key, list position, then the rest."""
    path = problem.field or ""
    match = re.match(r"^([^.\[]*)(?:\[(\d+)\])?(.*)$", path)
    assert match is not None
    top, index, rest = match.groups()
    return (order.get(top, len(order)), int(index) if index else -1, rest)


def _valid_parts(raw: Any, model: type[_Part]) -> list[tuple[int, _Part]]:
    """The entries of a list that are valid on their own, with their positions, so that the
    checks needing the registry run even when another part of the file is wrong."""
    parts = []
    for index, entry in enumerate(raw if isinstance(raw, list) else []):
        try:
            parts.append((index, model.model_validate(entry)))
        except ValidationError:
            continue
    return parts


def _overlap_problems(session: Session, rules: Sequence[tuple[int, RateRule]]) -> list[Problem]:
    """Rules that can match one transaction with different rates and no clear precedence."""
    owner = store.service_owners(session)
    problems = []
    cells = []
    for index, rule in rules:
        conditions = rule.conditions()
        service = conditions.get("service")
        if service in owner and "agency" in conditions and owner[service] != conditions["agency"]:
            problems.append(
                Problem(
                    f"service {service!r} belongs to agency {owner[service]!r}, not "
                    f"{conditions['agency']!r}: this rule can never apply",
                    field=f"rates[{index}]",
                )
            )
        cells.append(conditions)
    for position, (j, later) in enumerate(rules):
        for earlier_position in range(position):
            i, earlier = rules[earlier_position]
            a, b = cells[earlier_position], cells[position]
            if not _can_both_match(a, b, owner):
                continue
            if a == b:
                problems.append(
                    Problem(f"repeats the strata of rates[{i}]; keep one rule", field=f"rates[{j}]")
                )
            elif earlier.rate != later.rate and not _refines(a, b) and not _refines(b, a):
                shared = {**a, **b}
                where = ", ".join(f"{k} {v}" for k, v in shared.items())
                problems.append(
                    Problem(
                        f"overlaps rates[{i}] (both apply to {where}) with a different rate "
                        f"({later.rate:g} vs {earlier.rate:g}), and neither refines the other (a "
                        "rule naming all of another's dimensions and more takes precedence)",
                        field=f"rates[{j}]",
                    )
                )
    return problems


def _can_both_match(a: Mapping[str, str], b: Mapping[str, str], owner: Mapping[str, str]) -> bool:
    for dimension in DIMENSIONS:
        if dimension in a and dimension in b and a[dimension] != b[dimension]:
            return False
    agency_a = a.get("agency") or owner.get(a.get("service", ""))
    agency_b = b.get("agency") or owner.get(b.get("service", ""))
    return not (agency_a and agency_b and agency_a != agency_b)


def _refines(specific: Mapping[str, str], general: Mapping[str, str]) -> bool:
    """True when `specific` names every condition of `general` and more."""
    return len(specific) > len(general) and all(specific.get(k) == v for k, v in general.items())


def _questionnaire_problems(
    session: Session, choices: Sequence[tuple[int, QuestionnaireChoice]]
) -> tuple[list[Problem], list[dict[str, Any]]]:
    """Each choice's questionnaire must be registered or bundled (SMS form for sms_dialog)."""
    problems = []
    resolved = []
    library = None
    seen: dict[tuple[str, str | None], int] = {}
    for index, choice in choices:
        where = f"questionnaires[{index}]"
        key = (choice.service, choice.channel)
        if key in seen:
            channel = f", channel {choice.channel}" if choice.channel else ""
            problems.append(
                Problem(
                    f"service {choice.service}{channel} already has a questionnaire in "
                    f"questionnaires[{seen[key]}]",
                    field=where,
                )
            )
            continue
        seen[key] = index
        row = questionnaire_registry.find(session, choice.questionnaire, choice.version)
        content: Mapping[str, Any] | None = row.content if row is not None else None
        version = row.version if row is not None else None
        if row is None:
            library = library if library is not None else load_library()
            bundled = library.get(choice.questionnaire)
            if bundled is not None and choice.version in (None, bundled.version):
                content, version = bundled.to_dict(), bundled.version
        if content is None or version is None:
            wanted = choice.questionnaire + (
                f" version {choice.version}" if choice.version is not None else ""
            )
            problems.append(
                Problem(
                    f"questionnaire {wanted!r} is neither registered nor bundled; register it "
                    "with `survey questionnaires load FILE`",
                    field=f"{where}.questionnaire",
                )
            )
            continue
        if choice.mode == "sms_dialog" and not content.get("sms"):
            problems.append(
                Problem(
                    f"mode sms_dialog needs a questionnaire with an SMS form; "
                    f"{choice.questionnaire!r} version {version} has none (use sms_link, or a "
                    "questionnaire with an `sms:` list such as sms-short)",
                    field=f"{where}.mode",
                )
            )
        entry: dict[str, Any] = {"service": choice.service}
        if choice.channel is not None:
            entry["channel"] = choice.channel
        entry.update(questionnaire=choice.questionnaire, version=version, mode=choice.mode)
        resolved.append(entry)
    return problems, resolved


assert set(CHANNELS) == set(get_args(ChannelCode))
assert set(MODES) == set(get_args(Mode))
assert get_args(Dimension) == DIMENSIONS


def _message_problems(
    session: Session,
    choices: Sequence[tuple[int, QuestionnaireChoice]],
    resolved: Sequence[Mapping[str, Any]],
    public_base_url: str,
) -> list[Problem]:
    """Questionnaire choices whose invitations or reminders cannot fit two SMS parts with the
    agency's name (its SMS name, or the shortest fallback of its full name) and the link as the
    service sends it: refused now rather than found unsendable when a unit is sampled."""
    entries = {(entry["service"], entry.get("channel")): entry for entry in resolved}
    owners = store.services_with_agencies(session, {entry["service"] for entry in resolved})
    library = None
    problems = []
    for index, choice in choices:
        entry = entries.get((choice.service, choice.channel))
        if entry is None or choice.service not in owners:
            continue  # reported already
        row = questionnaire_registry.find(session, entry["questionnaire"], entry["version"])
        if row is not None:
            content: Mapping[str, Any] = row.content
        else:
            library = library if library is not None else load_library()
            content = library[entry["questionnaire"]].to_dict()
        if entry["mode"] == "sms_dialog" and not content.get("sms"):
            continue  # reported already
        service, agency = owners[choice.service]
        senders = {
            "fa": sms.Sender(sms.agency_names(agency.sms_name_fa, agency.name_fa), service.name_fa),
            "en": sms.Sender(sms.agency_names(agency.sms_name_en, agency.name_en), service.name_en),
        }
        found = sms.invitation_problems(
            Questionnaire.from_dict(content),
            entry["mode"],
            public_base_url=public_base_url,
            senders=senders,
        )
        if found:
            link = f"{public_base_url.rstrip('/')}/s/{'x' * TOKEN_LENGTH}"
            problems.append(
                Problem(
                    f"agency {agency.code} (service {service.code}), questionnaire "
                    f"{entry['questionnaire']} version {entry['version']} in mode "
                    f"{entry['mode']}: SMS texts do not fit two parts with the link "
                    f"{public_base_url.rstrip('/')}/s/<token> ({len(link)} characters): "
                    f"{'; '.join(found)}. Shorten the agency's SMS name (`survey agencies "
                    f"sms-name {agency.code}`), the questionnaire's SMS items or "
                    "SURVEY_PUBLIC_BASE_URL",
                    field=f"questionnaires[{index}]",
                )
            )
    return problems
