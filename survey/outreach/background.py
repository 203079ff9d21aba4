"""The dispatcher as a background thread of `survey serve`.

`dispatcher_lifespan(app)` is an async context manager for the app's `lifespan` list: it starts
one dispatcher thread on the app's context when the settings ask for it and stops it (then
waits for the pass in progress) before the context is closed. `survey.app.create_app` lists it,
so `survey serve` (and `survey demo`) run it. Whether it runs: `settings.dispatch_in_serve`
(`SURVEY_DISPATCH_IN_SERVE=1|0`) when set, else on everywhere except the `test` environment
(tests drive the dispatcher themselves). With several worker processes each runs its own
dispatcher; the outbox protocol keeps every message single (see survey.outreach.outbox).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread

from survey.context import AppContext
from survey.outreach.dispatcher import Dispatcher, DispatchOptions
from survey.outreach.gateways import gateway_from_spec

__all__ = ["BackgroundDispatcher", "dispatcher_lifespan", "wanted_in_serve"]

log = logging.getLogger("survey.dispatch")


def wanted_in_serve(settings: Any) -> bool:
    """An explicit `dispatch_in_serve` wins; otherwise every environment but `test`."""
    explicit = getattr(settings, "dispatch_in_serve", None)
    return bool(explicit) if explicit is not None else settings.env != "test"


class BackgroundDispatcher:
    """One dispatcher thread: `start()`, then `stop()` (idempotent)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=dispatcher.run_forever,
            args=(self.stop_event,),
            name="sms-dispatcher",
            daemon=True,
        )

    @classmethod
    def for_context(cls, context: AppContext) -> BackgroundDispatcher:
        settings = context.settings
        gateway = gateway_from_spec(settings.sms_gateway, settings=settings)
        return cls(Dispatcher(context, gateway, options=DispatchOptions.from_settings(settings)))

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.dispatcher.gateway.close()


@asynccontextmanager
async def dispatcher_lifespan(context: AppContext) -> AsyncIterator[None]:
    """For `Litestar(lifespan=[dispatcher_lifespan(context)])`: the app's context is given
    explicitly."""
    if not wanted_in_serve(context.settings):
        yield
        return
    background = BackgroundDispatcher.for_context(context)
    background.start()
    log.info(
        "SMS dispatcher running inside the server (gateway %s)", background.dispatcher.gateway.name
    )
    try:
        yield
    finally:
        await anyio.to_thread.run_sync(background.stop)
