"""Staff HTTP API for the registry: agencies, their keys and services (thin: parse, call, map).

Writes need an admin or statistician token; reads are open to every staff role, and a user with
role `agency` sees only their own agency. Keys appear in a response once, when issued. Staff
users are in survey.access.api.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery

from survey.http.bodies import parse_body
from survey.http.dependencies import Caller, Context
from survey.http.guards import staff
from survey.http.openapi import documented_body, json_example
from survey.registry import agencies as registry
from survey.registry import questionnaires

WRITERS = ("admin", "statistician")
READERS = ("admin", "statistician", "viewer", "agency")
AGENCIES_CSV = (
    "code,name_fa,name_en,parent,province\n"
    "TAX,سازمان امور مالیاتی,National Tax Administration,,\n"
    "TAX-FARS,اداره کل امور مالیاتی فارس,Fars Tax Administration,TAX,fars\n"
)
SERVICES_CSV = "agency,code,name_fa,name_en\nTAX,TAX-03,ثبت‌نام مودیان,Taxpayer registration\n"


class AgencyIn(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    name_fa: str
    name_en: str
    parent: str | None = None
    province: str | None = None
    sms_name_fa: str | None = None
    sms_name_en: str | None = None


class AgencyChange(msgspec.Struct, forbid_unknown_fields=True):
    """The agency's short SMS names (at most 20 characters; English in GSM-7 characters); a
    name left out stays, null or "" goes back to the full name."""

    sms_name_fa: str | msgspec.UnsetType | None = msgspec.UNSET
    sms_name_en: str | msgspec.UnsetType | None = msgspec.UNSET


class ServiceIn(msgspec.Struct, forbid_unknown_fields=True):
    agency: str
    code: str
    name_fa: str
    name_en: str


class RegistryController(Controller):
    path = "/api/v1"
    tags = ("registry",)

    @get(
        "/questionnaires",
        guards=[staff("admin", "statistician", "viewer")],
        sync_to_thread=True,
        tags=["plans"],
    )
    def list_questionnaires(self, context: Context) -> questionnaires.QuestionnaireList:
        """Registered questionnaire versions (the ones plans may name)."""
        return questionnaires.questionnaire_list(context)

    @get("/agencies", guards=[staff(*READERS)], sync_to_thread=True)
    def list_agencies(self, context: Context, principal: Caller) -> registry.AgencyList:
        return registry.agencies_for(context, principal)

    @post(
        "/agencies",
        guards=[staff(*WRITERS)],
        status_code=201,
        dependencies=documented_body(
            AgencyIn,
            examples=[
                json_example(
                    "A provincial office",
                    {
                        "code": "TAX-FARS",
                        "name_fa": "اداره کل امور مالیاتی فارس",
                        "name_en": "Fars Tax Administration",
                        "parent": "TAX",
                        "province": "fars",
                    },
                )
            ],
        ),
    )
    async def add_agency(
        self, request: Request[Any, Any, Any], context: Context, principal: Caller
    ) -> registry.AgencyAdded:
        """Register an agency; the response holds its API key, once."""
        data: AgencyIn = parse_body(await request.body(), AgencyIn)
        return await anyio.to_thread.run_sync(
            lambda: registry.register_agency(
                context,
                principal,
                code=data.code,
                name_fa=data.name_fa,
                name_en=data.name_en,
                parent=data.parent,
                province=data.province,
                sms_name_fa=data.sms_name_fa,
                sms_name_en=data.sms_name_en,
            )
        )

    @patch(
        "/agencies/{code:str}",
        guards=[staff(*WRITERS)],
        status_code=200,
        dependencies=documented_body(
            AgencyChange,
            examples=[
                json_example("Short SMS names", {"sms_name_fa": "مالیات", "sms_name_en": "Tax"})
            ],
        ),
    )
    async def change_agency(
        self,
        request: Request[Any, Any, Any],
        context: Context,
        principal: Caller,
        code: FromPath[str],
    ) -> registry.AgencyView:
        """Set the agency's short SMS names, which every invitation starts with."""
        data: AgencyChange = parse_body(await request.body(), AgencyChange)
        names = {
            lang: value
            for lang, value in (("fa", data.sms_name_fa), ("en", data.sms_name_en))
            if value is not msgspec.UNSET
        }
        return await anyio.to_thread.run_sync(
            registry.update_sms_names, context, principal, code, names
        )

    @post(
        "/agencies/import",
        guards=[staff(*WRITERS)],
        status_code=200,
        dependencies=documented_body(
            str,
            media_type="text/csv",
            description="A CSV file (UTF-8) with a header row",
            examples=[json_example("Two agencies", AGENCIES_CSV)],
        ),
    )
    async def import_agencies(
        self, request: Request[Any, Any, Any], context: Context, principal: Caller
    ) -> registry.ImportSummary:
        """CSV body (code,name_fa,name_en,parent,province[,sms_name_fa,sms_name_en]); per-row
        results."""
        text = registry.decode_csv(await request.body())
        return await anyio.to_thread.run_sync(
            registry.import_agencies_csv, context, principal, text
        )

    @post(
        "/agencies/{code:str}/keys", guards=[staff(*WRITERS)], status_code=201, sync_to_thread=True
    )
    def rotate_key(
        self, context: Context, principal: Caller, code: FromPath[str]
    ) -> registry.AgencyKey:
        """Revoke the agency's keys and issue a new one (in the response, once)."""
        return registry.issue_new_agency_key(context, principal, code)

    @delete(
        "/agencies/{code:str}/keys", guards=[staff(*WRITERS)], status_code=200, sync_to_thread=True
    )
    def revoke_keys(
        self, context: Context, principal: Caller, code: FromPath[str]
    ) -> registry.KeysRevoked:
        return registry.revoke_all_agency_keys(context, principal, code)

    @get("/services", guards=[staff(*READERS)], sync_to_thread=True)
    def list_services(
        self, context: Context, principal: Caller, agency: FromQuery[str | None] = None
    ) -> registry.ServiceList:
        return registry.services_for(context, principal, agency=agency)

    @post(
        "/services",
        guards=[staff(*WRITERS)],
        status_code=201,
        dependencies=documented_body(
            ServiceIn,
            examples=[
                json_example(
                    "A service",
                    {
                        "agency": "TAX",
                        "code": "TAX-03",
                        "name_fa": "ثبت‌نام مودیان",
                        "name_en": "Taxpayer registration",
                    },
                )
            ],
        ),
    )
    async def add_service(
        self, request: Request[Any, Any, Any], context: Context, principal: Caller
    ) -> registry.ServiceAdded:
        data: ServiceIn = parse_body(await request.body(), ServiceIn)
        return await anyio.to_thread.run_sync(
            lambda: registry.register_service(
                context,
                principal,
                agency=data.agency,
                code=data.code,
                name_fa=data.name_fa,
                name_en=data.name_en,
            )
        )

    @post(
        "/services/import",
        guards=[staff(*WRITERS)],
        status_code=200,
        dependencies=documented_body(
            str,
            media_type="text/csv",
            description="A CSV file (UTF-8) with a header row",
            examples=[json_example("One service", SERVICES_CSV)],
        ),
    )
    async def import_services(
        self, request: Request[Any, Any, Any], context: Context, principal: Caller
    ) -> registry.ImportSummary:
        """CSV body (agency,code,name_fa,name_en); per-row results."""
        text = registry.decode_csv(await request.body())
        return await anyio.to_thread.run_sync(
            registry.import_services_csv, context, principal, text
        )
