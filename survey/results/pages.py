"""The statisticians' sample-design page at `/staff/plans`: propose, simulate, apply.

Server-rendered, Persian and right-to-left by default (`?lang=en` for English), no scripts, in
the staff frame (survey.http.staff: language switch, navigation, sign-out). Agencies, services,
channels and provinces are shown by name, periods and months by name, numbers in the reader's
digits. It is the `survey plans propose|simulate|apply` workflow (docs/sample-design.md) in a
browser:

- `GET  /staff/plans`           the proposal form and the plan versions;
- `POST /staff/plans/propose`   a proposal: what to know about the history it read (short,
                                partial, days to come left out), the expected invitations,
                                completes and cost with their intervals over the past months,
                                its summary table (expected margins of error per domain,
                                invitations, SMS parts, cost, publishable or not) and its plan
                                file in an editable box;
- `POST /staff/plans/simulate`  the (edited) plan's summary table and simulated periods;
- `POST /staff/plans/apply`     activates the (edited) plan as a new version, then 303 back.

Admins and statisticians only (`survey.http.guards.staff`). Forms carry a signed double-submit
CSRF field (survey.kernel.csrf) bound to the signed-in staff member. Proposals and
activations are audited (`plan.propose`, `plan.apply`) with who and when.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import date
from typing import Any

import anyio.to_thread
import jdatetime
from litestar import Controller, MediaType, Request, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template
from markupsafe import Markup

from survey.context import AppContext
from survey.errors import InvalidInput, NotFound, Problem
from survey.http.dependencies import Caller, Context
from survey.http.guards import csrf_token, staff
from survey.http.staff import staff_frame
from survey.kernel.csrf import CsrfSigner
from survey.kernel.locale import Numbers, fold_digits, language_or_default, localise
from survey.kernel.principal import Principal
from survey.registry.names import CodeNames, code_names
from survey.results import proposals as plan_proposals
from survey.results.proposals import parse_request
from survey.sampling import plans

BASE = "/staff/plans"
COOKIE = "s_staff_csrf"
FIELD = "_csrf_token"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
FORM_FIELDS = (
    "period",
    "target_moe",
    "target_cv",
    "measure",
    "history",
    "strata",
    "within",
    "total",
    "budget",
    "q",
    "cost_per_part",
    "assurance",
    "min_completes",
    "name",
)
DEFAULTS = {"target_moe": "3", "measure": "mean", "within": "optimal", "by": ["agency"]}


def _lang(request: Request[Any, Any, Any]) -> str:
    return language_or_default(request.query_params.get("lang"))


def _binding(principal: Principal) -> str:
    return f"staff-plans:{principal.actor}"


def _session_csrf(request: Request[Any, Any, Any]) -> str | None:
    """The sign-in session's CSRF token when the request came with a session cookie (the guard
    checks it on every change made with the cookie), else None."""
    return csrf_token(request)


def _status(note: str) -> str:
    """A key for the template's words from `analysis.planning`'s English note."""
    for prefix, key in (
        ("publishable", "publishable"),
        ("fewer than", "few"),
        ("strata too small", "small"),
        ("not reachable", "unreachable"),
        ("misses", "misses"),
    ):
        if note.startswith(prefix):
            return key
    return ""


_QUARTERS = {
    "fa": ("بهار", "تابستان", "پاییز", "زمستان"),
    "en": ("spring", "summer", "autumn", "winter"),
}
_GREGORIAN_MONTHS = (
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
)


def period_name(label: str, lang: str) -> str:
    """`1405-Q1` as `spring 1405`, `1405-07` as `Mehr 1405`, `1405` as the year, and
    `1405-03..1405-08` as the two ends; in the reader's digits. Anything else as it is."""
    if ".." in label:
        first, _, last = label.partition("..")
        joiner = " تا " if lang == "fa" else " to "
        return period_name(first, lang) + joiner + period_name(last, lang)
    head, _, tail = label.partition("-")
    if not (head.isdigit() and len(head) == 4):
        return label
    year = int(head)
    solar = year < 1700
    if tail.upper().startswith("Q") and tail[1:].isdigit() and 1 <= int(tail[1:]) <= 4:
        quarter = int(tail[1:])
        text = f"{_QUARTERS[lang][quarter - 1]} {year}" if solar else f"{year} Q{quarter}"
    elif tail.isdigit() and 1 <= int(tail) <= 12:
        month = int(tail)
        if solar:
            months = jdatetime.date.j_months_fa if lang == "fa" else jdatetime.date.j_months_en
            text = f"{months[month - 1]} {year}"
        else:
            text = f"{_GREGORIAN_MONTHS[month - 1]} {year}"
    elif not tail:
        text = str(year)
    else:
        return label
    return localise(text, lang)


class _View:
    """Formats proposal and simulation records for one language, with the registry's names."""

    def __init__(self, lang: str, names: CodeNames | None = None) -> None:
        self.numbers = Numbers(lang)
        self.lang = lang
        self.names = names or CodeNames({})

    def _digits(self, text: str) -> str:
        return localise(text, self.lang)

    def fixed(self, value: float | None, digits: int = 2) -> str:
        if value is None:
            return "-"
        return self._digits(f"{value:,.{digits}f}")

    def share(self, value: float | None) -> str:
        return "-" if value is None else self._digits(f"{value * 100:.0f}%")

    def measure(self, value: float | None, cv: bool) -> str:
        if value is None:
            return "-"
        return self._digits(f"{value * 100:.1f}%") if cv else self.fixed(value)

    def days(self, period: Mapping[str, Any]) -> tuple[Markup, Markup]:
        return (
            self.numbers.day(date.fromisoformat(period["first_day"])),
            self.numbers.day(date.fromisoformat(period["last_day"])),
        )

    def domain(self, dimension: str, code: str) -> str:
        """A domain of the summary table by name (`all` is the country)."""
        return "" if dimension == "all" else self.names.name(dimension, code, self.lang)

    def note(self, note: Mapping[str, Any]) -> dict[str, Any]:
        """A note about the history with its values formatted (the template words it)."""
        values = dict(note.get("values") or {})
        shown: dict[str, Any] = {}
        for key, value in values.items():
            if key in ("first", "last"):
                shown[key] = self.numbers.day(date.fromisoformat(str(value)))
            elif key == "agencies":
                shown[key] = [
                    (self.names.name("agency", code, self.lang), self.numbers.day(
                        date.fromisoformat(str(day))
                    ))
                    for code, day in dict(value).items()
                ]
            else:
                shown[key] = self.numbers.integer(int(value))
        return {"kind": note["kind"], "text": note["text"], **shown}

    def uncertainty(self, record: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if not record:
            return None
        totals = {}
        for name, total in record["totals"].items():
            digits = 0
            totals[name] = {
                "expected": self.fixed(total["expected"], digits),
                "low": None if total["low"] is None else self.fixed(total["low"], digits),
                "high": None if total["high"] is None else self.fixed(total["high"], digits),
            }
        months = [
            {
                "month": period_name(str(m["month"]), self.lang),
                "days": self.numbers.integer(int(m["days"])),
                "volume": self.fixed(m["volume"], 0),
                "invitations": self.fixed(m["invitations"], 0),
                "completes": self.fixed(m["completes"], 0),
                "cost": self.fixed(m["cost"], 0),
            }
            for m in record["months"]
        ]
        count = len(months)
        return {
            "totals": totals,
            "months": months,
            "count": self.numbers.integer(count),
            "degrees": self.numbers.integer(max(count - 1, 0)),
            "level": self.share(float(record["level"])),
            "has_interval": any(t["low"] is not None for t in totals.values()),
        }

    def proposal(self, records: Mapping[str, Any]) -> dict[str, Any]:
        target = records["target"]
        cv = target["cv"] is not None
        key = "cv" if cv else "margin"
        rows = [
            {
                "dimension": d["dimension"],
                "domain": d["domain"],
                "name": self.domain(str(d["dimension"]), str(d["domain"])),
                "volume": self.fixed(d["volume"], 0),
                "invitations": self.fixed(d["invitations"], 0),
                "completes": self.fixed(d["completes"], 0),
                "expected": self.measure(d[key], cv),
                "assured": self.measure(d[f"assured_{key}"], cv),
                "target": self.measure(d["target"], cv) if d["target"] is not None else "",
                "p_meet": self.share(d["p_meet"]) if d["p_meet"] is not None else "",
                "status": _status(str(d["note"])),
                "min_completes": self.fixed(target["min_completes"], 0),
                "publishable": bool(d["publishable"]),
            }
            for d in records["domains"]
        ]
        totals = records["totals"]
        strata = [
            {
                "stratum": s["stratum"],
                "name": self.names.stratum(str(s["stratum"]), self.lang),
                "rate": self._digits(f"{s['rate']:.4g}"),
                "invitations": self.fixed(s["invitations"], 1),
                "completes": self.fixed(s["completes"], 1),
                "capped": bool(s["capped"]),
                "sms_parts": self.fixed(s["sms_parts"], 0),
                "cost": self.fixed(s["cost"]),
            }
            for s in records["strata"]
        ]
        return {
            "cv": cv,
            "target": {
                "by": target["by"],
                "value": self.measure(target["cv"] if cv else target["margin"], cv),
                "measure": target["measure"],
                "assurance": self.share(target["assurance"]),
                "min_completes": self.fixed(target["min_completes"], 0),
            },
            "method": records["method"],
            "rows": rows,
            "publishable": self.numbers.integer(sum(r["publishable"] for r in rows)),
            "totals": {k: self.fixed(v, 2 if k == "cost" else 0) for k, v in totals.items()},
            "strata": strata,
            "capped": self.numbers.integer(sum(s["capped"] for s in strata)),
            "strata_count": self.numbers.integer(len(strata)),
            "summary_text": records["summary_text"],
            "notes": [self.note(n) for n in records.get("history_notes") or []],
            "uncertainty": self.uncertainty(records.get("uncertainty")),
        }

    def simulation(self, records: Mapping[str, Any]) -> dict[str, Any]:
        cv = records["measure"] == "cv"
        key = "cv" if cv else "margin"
        return {
            "periods": self.numbers.integer(records["periods"]),
            "seed": self._digits(str(records["seed"])),
            "rows": [
                {
                    "dimension": d["dimension"],
                    "domain": d["domain"],
                    "name": self.domain(str(d["dimension"]), str(d["domain"])),
                    "publishable": bool(d["publishable"]),
                    "target": self.measure(d["target"], cv) if d["target"] is not None else "",
                    "expected": self.measure(d[key], cv),
                    "median": self.measure(d[f"{key}_median"], cv),
                    "p90": self.measure(d[f"{key}_p90"], cv),
                    "met": self.share(d["share_met"]) if d["share_met"] is not None else "",
                    "coverage": self.share(d["coverage"]),
                    "respondents": self.fixed(d["respondents_mean"], 1),
                }
                for d in records["domains"]
            ],
            "summary_text": records["summary_text"],
        }


def _form_values(form: Any) -> dict[str, Any]:
    """The proposal form's fields, blanks left out (the request parser applies defaults)."""
    values: dict[str, Any] = {
        key: str(form.get(key)).strip() for key in FORM_FIELDS if str(form.get(key) or "").strip()
    }
    by = [str(v) for v in form.getall("by", [])]
    if by:
        values["by"] = by
    return values


class PlanPageController(Controller):
    path = BASE
    include_in_schema = False
    guards = (staff("admin", "statistician"),)

    def _render(
        self,
        request: Request[Any, Any, Any],
        context: AppContext,
        principal: Principal,
        *,
        status: int = 200,
        form: Mapping[str, Any] | None = None,
        problems: list[Problem] | None = None,
        error: str | None = None,
        proposal: Mapping[str, Any] | None = None,
        simulation: Mapping[str, Any] | None = None,
        edit: Mapping[str, Any] | None = None,
        applied: str | None = None,
    ) -> Template:
        lang = _lang(request)
        nonce = request.cookies.get(COOKIE) or CsrfSigner.new_nonce()
        signer = CsrfSigner(context.settings.secret_key)
        today = plans.today_in(context.clock(), context.settings.timezone)
        with context.read_sessions() as session:
            versions = plans.list_plans(session, today=today)
            view = _View(lang, code_names(session))
        model: dict[str, Any] = {
            **staff_frame(request, principal, "plans", path=BASE),
            "base": BASE,
            "csrf_field": FIELD,
            "csrf": _session_csrf(request) or signer.field_for(nonce, _binding(principal)),
            "today": view.numbers.day(today),
            "form": {**DEFAULTS, **(form or {})},
            "error": error,
            "problems": problems or [],
            "applied": applied,
            "versions": [
                {
                    "version": view.numbers.integer(p.version),
                    "name": p.name,
                    "starts": view.numbers.day(p.starts),
                    "in_force": p.in_force,
                    "created_by": p.created_by,
                }
                for p in versions[:10]
            ],
            "problem_fields": [
                {
                    "field": p.field,
                    "row": view.numbers.integer(p.row) if p.row else None,
                    "message": p.message,
                }
                for p in problems or []
            ],
            "proposal": None,
            "simulation": None,
            "edit": edit,
        }
        if proposal is not None:
            shaped = view.proposal(proposal)
            if "period" in proposal:
                shaped["period"] = proposal["period"]["label"]
                shaped["period_name"] = period_name(proposal["period"]["label"], lang)
                shaped["period_days"] = view.days(proposal["period"])
                history = proposal.get("history")
                shaped["history_days"] = view.days(history) if history else None
                shaped["sources"] = {
                    what: [(k, view.numbers.integer(v)) for k, v in counts.items()]
                    for what, counts in proposal.get("sources", {}).items()
                }
                shaped["notes"] = [view.note(n) for n in proposal.get("history_notes") or []]
            model["proposal"] = shaped
        if simulation is not None:
            model["simulation"] = view.simulation(simulation)
        cookie = Cookie(
            key=COOKIE,
            value=nonce,
            path=BASE,
            httponly=True,
            samesite="strict",
            secure=context.settings.https,
        )
        return Template(
            template_name="results/plan_workspace.html.j2",
            context=model,
            status_code=status,
            headers={**SECURITY_HEADERS, "Content-Language": lang},
            cookies=[cookie],
            media_type=MediaType.HTML,
        )

    async def _checked_form(
        self, request: Request[Any, Any, Any], context: AppContext, principal: Principal
    ) -> Any:
        """The posted form, or None when its CSRF field matches neither the session's token
        nor this page's signed double-submit cookie."""
        form = await request.form()
        given = form.get(FIELD)
        session = _session_csrf(request)
        if session is not None and given is not None and hmac.compare_digest(str(given), session):
            return form
        signer = CsrfSigner(context.settings.secret_key)
        ok = signer.verify(request.cookies.get(COOKIE), _binding(principal), given)
        return form if ok else None

    def _expired(
        self, request: Request[Any, Any, Any], context: AppContext, principal: Principal
    ) -> Template:
        return self._render(request, context, principal, status=403, error="form_expired")

    @get("/", sync_to_thread=True)
    def workspace(
        self, request: Request[Any, Any, Any], context: Context, principal: Caller
    ) -> Template:
        """The proposal form and the latest plan versions."""
        applied = request.query_params.get("applied")
        shown = applied if applied and applied.isdigit() else None
        return self._render(request, context, principal, applied=shown)

    @post("/propose", status_code=200)
    async def propose(
        self, request: Request[Any, Any, Any], context: Context, principal: Caller
    ) -> Template:
        form = await self._checked_form(request, context, principal)
        if form is None:
            return self._expired(request, context, principal)
        values = _form_values(form)
        try:
            wanted = parse_request(values)
            records = await anyio.to_thread.run_sync(
                plan_proposals.run_proposal, context, principal, wanted
            )
        except (InvalidInput, NotFound) as exc:
            problems = getattr(exc, "problems", None) or [Problem(exc.message)]
            status = 404 if isinstance(exc, NotFound) else 422
            return self._render(
                request,
                context,
                principal,
                status=status,
                form=values,
                error=exc.message,
                problems=problems,
            )
        edit = {
            "plan_yaml": records["plan_yaml"],
            "design_yaml": records["design_yaml"],
            "periods": "200",
            "seed": "1",
        }
        return self._render(request, context, principal, form=values, proposal=records, edit=edit)

    @post("/simulate", status_code=200)
    async def simulate(
        self, request: Request[Any, Any, Any], context: Context, principal: Caller
    ) -> Template:
        form = await self._checked_form(request, context, principal)
        if form is None:
            return self._expired(request, context, principal)
        edit = {
            key: str(form.get(key) or "")
            for key in ("plan_yaml", "design_yaml", "periods", "seed", "starts")
        }
        problems: list[Problem] = []
        periods = _integer(edit["periods"] or "200", "periods", problems)
        seed = _integer(edit["seed"] or "1", "seed", problems)
        try:
            if problems:
                raise InvalidInput("the simulation cannot run", problems)
            records = await anyio.to_thread.run_sync(
                plan_proposals.run_simulation, edit["plan_yaml"], edit["design_yaml"], periods, seed
            )
        except InvalidInput as exc:
            return self._render(
                request,
                context,
                principal,
                status=422,
                error=exc.message,
                problems=exc.problems,
                edit=edit,
            )
        return self._render(
            request,
            context,
            principal,
            proposal=records["proposal"],
            simulation=records["simulation"],
            edit=edit,
        )

    @post("/apply", status_code=303)
    async def apply(
        self, request: Request[Any, Any, Any], context: Context, principal: Caller
    ) -> Template | Redirect:
        form = await self._checked_form(request, context, principal)
        if form is None:
            return self._expired(request, context, principal)
        edit = {
            key: str(form.get(key) or "")
            for key in ("plan_yaml", "design_yaml", "periods", "seed", "starts")
        }
        try:
            version = await anyio.to_thread.run_sync(
                plan_proposals.apply_edited_plan,
                context,
                principal,
                edit["plan_yaml"],
                edit["starts"],
            )
        except InvalidInput as exc:
            return self._render(
                request,
                context,
                principal,
                status=422,
                error=exc.message,
                problems=exc.problems,
                edit=edit,
            )
        lang = _lang(request)
        return Redirect(
            f"{BASE}?lang={lang}&applied={version}", status_code=303, headers=SECURITY_HEADERS
        )


def _integer(text: str, field: str, problems: list[Problem]) -> int:
    try:
        return int(fold_digits(text.strip()))
    except ValueError:
        problems.append(Problem(f"expected a whole number, got {text!r}", field))
        return 0
