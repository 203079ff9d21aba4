"""Staff HTTP API for the registry: agencies, their keys and services (thin: parse, call, map).

Writes need an admin or statistician token; reads are open to every staff role, and a user with
role `agency` sees only their own agency. Keys appear in a response once, when issued. Staff
users are in survey.access.api.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar

import anyio.to_thread
import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, FromQuery

from survey.context import AppContext
from survey.errors import InvalidInput
from survey.http.bodies import parse_body
from survey.http.guards import principal_of, staff
from survey.kernel.credentials import ONCE
from survey.kernel.db import transaction
from survey.registry import agencies as registry
from survey.registry.agencies import ImportReport

WRITERS = ("admin", "statistician")
READERS = ("admin", "statistician", "viewer", "agency")


class AgencyIn(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    name_fa: str
    name_en: str
    parent: str | None = None
    province: str | None = None


class ServiceIn(msgspec.Struct, forbid_unknown_fields=True):
    agency: str
    code: str
    name_fa: str
    name_en: str








def csv_text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the CSV body is not UTF-8 text (byte {exc.start})") from None


def report_body(report: ImportReport) -> dict[str, Any]:
    return {
        "summary": report.summary(),
        "added": report.count("added"),
        "unchanged": report.count("unchanged"),
        "failed": report.failed,
        "rows": [
            {
                "row": row.row,
                "code": row.code,
                "status": row.status,
                "problems": [p.as_dict() for p in row.problems],
            }
            for row in report.rows
        ],
    }


class RegistryController(Controller):
    path = "/api/v1"
    tags: ClassVar[list[str]] = ["registry"]

    @get("/agencies", guards=[staff(*READERS)], sync_to_thread=True)
    def list_agencies(self, request: Request) -> dict[str, Any]:
        context: AppContext = request.app.state.context
        with context.read_sessions() as session:
            agencies = registry.list_agencies(session, principal_of(request))
        return {"agencies": [asdict(a) for a in agencies]}

    @post("/agencies", guards=[staff(*WRITERS)], status_code=201)
    async def add_agency(self, request: Request) -> dict[str, Any]:
        """Register an agency; the response holds its API key, once."""
        data: AgencyIn = parse_body(await request.body(), AgencyIn)
        context: AppContext = request.app.state.context
        principal = principal_of(request)

        def work() -> tuple[registry.AgencyView, registry.IssuedKey]:
            with transaction(context.sessions) as session:
                return registry.add_agency(session, principal, **msgspec.structs.asdict(data))

        agency, issued = await anyio.to_thread.run_sync(work)
        return {"agency": asdict(agency), "api_key": issued.key, "note": f"the key is {ONCE}"}

    @post("/agencies/import", guards=[staff(*WRITERS)], status_code=200)
    async def import_agencies(self, request: Request) -> dict[str, Any]:
        """CSV body (code,name_fa,name_en,parent,province); per-row results."""
        text = csv_text(await request.body())
        context: AppContext = request.app.state.context
        principal = principal_of(request)

        def work() -> ImportReport:
            with transaction(context.sessions) as session:
                return registry.import_agencies(session, principal, text)

        return report_body(await anyio.to_thread.run_sync(work))

    @post(
        "/agencies/{code:str}/keys", guards=[staff(*WRITERS)], status_code=201, sync_to_thread=True
    )
    def rotate_key(self, request: Request, code: FromPath[str]) -> dict[str, Any]:
        """Revoke the agency's keys and issue a new one (in the response, once)."""
        context: AppContext = request.app.state.context
        with transaction(context.sessions) as session:
            issued = registry.rotate_agency_key(session, principal_of(request), code)
        context.keys.forget()
        return {"agency": code, "api_key": issued.key, "note": f"the key is {ONCE}"}

    @delete(
        "/agencies/{code:str}/keys", guards=[staff(*WRITERS)], status_code=200, sync_to_thread=True
    )
    def revoke_keys(self, request: Request, code: FromPath[str]) -> dict[str, Any]:
        context: AppContext = request.app.state.context
        with transaction(context.sessions) as session:
            revoked = registry.revoke_agency_keys(session, principal_of(request), code)
        context.keys.forget()
        return {"agency": code, "revoked": revoked}

    @get("/services", guards=[staff(*READERS)], sync_to_thread=True)
    def list_services(
        self, request: Request, agency: FromQuery[str | None] = None
    ) -> dict[str, Any]:
        context: AppContext = request.app.state.context
        with context.read_sessions() as session:
            services = registry.list_services(session, principal_of(request), agency=agency)
        return {"services": [asdict(s) for s in services]}

    @post("/services", guards=[staff(*WRITERS)], status_code=201)
    async def add_service(self, request: Request) -> dict[str, Any]:
        data: ServiceIn = parse_body(await request.body(), ServiceIn)
        context: AppContext = request.app.state.context
        principal = principal_of(request)

        def work() -> registry.ServiceView:
            with transaction(context.sessions) as session:
                return registry.add_service(session, principal, **msgspec.structs.asdict(data))

        service = await anyio.to_thread.run_sync(work)
        return {"service": asdict(service)}

    @post("/services/import", guards=[staff(*WRITERS)], status_code=200)
    async def import_services(self, request: Request) -> dict[str, Any]:
        """CSV body (agency,code,name_fa,name_en); per-row results."""
        text = csv_text(await request.body())
        context: AppContext = request.app.state.context
        principal = principal_of(request)

        def work() -> ImportReport:
            with transaction(context.sessions) as session:
                return registry.import_services(session, principal, text)

        return report_body(await anyio.to_thread.run_sync(work))


