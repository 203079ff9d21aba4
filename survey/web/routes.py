"""Every route handler of the service, in one list (each domain adds its controllers here)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler


def route_handlers() -> list[ControllerRouterHandler]:
    from survey.web.answering import AnsweringController
    from survey.web.transactions import TransactionController

    return [AnsweringController, TransactionController]
