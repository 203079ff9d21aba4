"""`GET /api/v1/rates?period=1405-01&by=agency|channel|mode|province`: AAPOR rates for staff.

Agency staff see only their own agency's invitations; statisticians, admins and viewers see all.
"""

from __future__ import annotations

from typing import Any, ClassVar

from litestar import Controller, Request, get
from litestar.params import FromQuery

from survey.context import AppContext
from survey.http.guards import agency_scope, principal_of, staff
from survey.kernel.periods import parse_period
from survey.kernel.principal import Principal
from survey.results.rates import response_rates


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
        self, request: Request[Any, Any, Any], period: FromQuery[str], by: FromQuery[str] = "agency"
    ) -> dict[str, Any]:
        context: AppContext = request.app.state.context
        principal: Principal = principal_of(request)
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
