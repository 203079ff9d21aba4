"""Service fixtures: a real app on a real, migrated database, and a real HTTP test client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from survey.app import create_app
from survey.config import Settings
from survey.context import AppContext


@pytest.fixture
def context(migrated_settings: Settings, clock) -> Iterator[AppContext]:  # type: ignore[no-untyped-def]
    ctx = AppContext.build(migrated_settings, clock=clock)
    yield ctx
    ctx.close()


@pytest.fixture
def app(migrated_settings: Settings, context: AppContext) -> Litestar:
    return create_app(migrated_settings, context=context)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient]:
    """On https, as the test settings' public base URL says: cookies are Secure there."""
    with TestClient(app, base_url="https://testserver.local") as test_client:
        yield test_client
