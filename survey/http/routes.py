"""Every route handler of the service, in one list (each domain adds its controllers here)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler


def route_handlers() -> list[ControllerRouterHandler]:
    from survey.access.api import UserChangeController
    from survey.access.audit_views import AuditController
    from survey.access.pages import LoginController
    from survey.answering.api import SmsWebhookController
    from survey.answering.pages import AnsweringController
    from survey.ingestion.api import TransactionController
    from survey.ingestion.pages import PageController
    from survey.publication.api import ReleaseController
    from survey.publication.pages import PublicationController
    from survey.registry.api import RegistryController, UserController
    from survey.results.analyses_api import AnalysisController
    from survey.results.api import ExportController
    from survey.results.rates_api import RatesController
    from survey.sampling.api import PlanController
    from survey.sampling.pages import PlanPageController

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
