"""The statisticians' sample-design page at `/staff/plans`: propose, simulate, apply.

Server-rendered, Persian and right-to-left by default (`?lang=en` for English), no scripts.
It is the `survey plans propose|simulate|apply` workflow (docs/sample-design.md) in a browser:

- `GET  /staff/plans`           the proposal form and the plan versions;
- `POST /staff/plans/propose`   a proposal: its summary table (expected margins of error per
                                domain, invitations, SMS parts, cost, publishable or not) and
                                its plan file in an editable box;
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
from litestar import Controller, MediaType, Request, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template
from markupsafe import Markup

from survey.context import AppContext
from survey.errors import InvalidInput, NotFound, Problem
from survey.http.dependencies import Caller, Context
from survey.http.guards import csrf_token, staff
from survey.kernel.csrf import CsrfSigner
from survey.kernel.locale import Numbers, fold_digits, language_or_default, localise
from survey.kernel.principal import Principal
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


class _View:
    """Formats proposal and simulation records for one language."""

    def __init__(self, lang: str) -> None:
        self.numbers = Numbers(lang)
        self.lang = lang

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

    def proposal(self, records: Mapping[str, Any]) -> dict[str, Any]:
        target = records["target"]
        cv = target["cv"] is not None
        key = "cv" if cv else "margin"
        rows = [
            {
                "dimension": d["dimension"],
                "domain": d["domain"],
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
        }

    def simulation(self, records: Mapping[str, Any]) -> dict[str, Any]:
        cv = records["measure"] == "cv"
        key = "cv" if cv else "margin"
        return {
            "periods": self.numbers.integer(records["periods"]),
            "seed": records["seed"],
            "rows": [
                {
                    "dimension": d["dimension"],
                    "domain": d["domain"],
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
        view = _View(lang)
        nonce = request.cookies.get(COOKIE) or CsrfSigner.new_nonce()
        signer = CsrfSigner(context.settings.secret_key)
        today = plans.today_in(context.clock(), context.settings.timezone)
        with context.read_sessions() as session:
            versions = plans.list_plans(session, today=today)
        model: dict[str, Any] = {
            "lang": lang,
            "dir": "rtl" if lang == "fa" else "ltr",
            "other_lang": "en" if lang == "fa" else "fa",
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
            "proposal": None,
            "simulation": None,
            "edit": edit,
        }
        if proposal is not None:
            shaped = view.proposal(proposal)
            if "period" in proposal:
                shaped["period"] = proposal["period"]["label"]
                shaped["period_days"] = view.days(proposal["period"])
                history = proposal.get("history")
                shaped["history_days"] = view.days(history) if history else None
                shaped["sources"] = {
                    what: [(k, view.numbers.integer(v)) for k, v in counts.items()]
                    for what, counts in proposal.get("sources", {}).items()
                }
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
