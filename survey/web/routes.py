"""Every route handler of the service, in one list (each domain adds its controllers here)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler


def route_handlers() -> list[ControllerRouterHandler]:
    from survey.web.analysis_api import AnalysisController
    from survey.web.answering import AnsweringController
    from survey.web.audit import AuditController
    from survey.web.export import ExportController
    from survey.web.login import LoginController
    from survey.web.pages import PageController
    from survey.web.plan_pages import PlanPageController
    from survey.web.plans import PlanController
    from survey.web.publication import PublicationController
    from survey.web.rates import RatesController
    from survey.web.registry import RegistryController, UserController
    from survey.web.releases import ReleaseController
    from survey.web.sms import SmsWebhookController
    from survey.web.transactions import TransactionController
    from survey.web.users import UserChangeController

    return [
        AnalysisController,
        AnsweringController,
        ExportController,
        RatesController,
        TransactionController,
        PageController,
        PlanController,
        PlanPageController,
        RegistryController,
        UserController,
        SmsWebhookController,
        ReleaseController,
        PublicationController,
        LoginController,
        AuditController,
        UserChangeController,
    ]
