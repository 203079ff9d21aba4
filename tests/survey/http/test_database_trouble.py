"""Database trouble is a quick 503 with Retry-After, never a hang or a 500, /readyz says so,
and nothing acknowledged is lost: the refused batch is stored once when sent again.

Runs on SQLite (another connection holds the write lock) and on PostgreSQL (another
connection holds an ACCESS EXCLUSIVE lock on the transactions table) with a short lock timeout.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from survey.app import create_app
from survey.config import Settings
from survey.context import AppContext
from survey.kernel import db
from tests.survey.builders import AgencyFixture, add_agency, add_plan, add_staff, transaction_record

URL = "/api/v1/transactions"


@pytest.fixture
def impatient(migrated_settings: Settings, clock) -> Iterator[AppContext]:  # type: ignore[no-untyped-def]
    settings = migrated_settings.with_overrides(
        db_lock_timeout=0.5, db_pool_size=1, db_pool_timeout=0.5
    )
    context = AppContext.build(settings, clock=clock)
    yield context
    context.close()


@pytest.fixture
def tax(impatient: AppContext) -> AgencyFixture:
    agency = add_agency(impatient, "TAX", ("TAX-01",))
    add_plan(impatient)
    return agency


@contextmanager
def write_lock_held(settings: Settings) -> Iterator[None]:
    """Another client holding the lock writers need, as a stuck transaction or a maintenance
    job would."""
    url = db.normalise_url(settings.database_url)
    if url.startswith("sqlite"):
        other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as other:
        transaction = other.begin()
        other.exec_driver_sql("LOCK TABLE service_transaction IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            transaction.rollback()
    engine.dispose()


def _stored(context: AppContext) -> int:
    with context.engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT count(*) FROM service_transaction").scalar())


def test_a_locked_table_is_a_quick_503_and_the_batch_is_kept_when_sent_again(
    impatient: AppContext, tax: AgencyFixture
) -> None:
    batch = [transaction_record(n) for n in range(20)]
    headers = {"Authorization": f"Bearer {tax.key}"}
    with TestClient(create_app(impatient.settings, context=impatient)) as client:
        first = client.post(URL, json=batch[:10], headers=headers)
        assert first.status_code == 200 and first.json()["accepted"] == 10
        assert client.get("/readyz").status_code == 200
        with write_lock_held(impatient.settings):
            started = time.monotonic()
            refused = client.post(URL, json=batch, headers=headers)
            waited = time.monotonic() - started
            ready = client.get("/readyz")
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "5"
        assert "send it again" in refused.json()["error"]
        assert waited < 5.0  # the lock timeout, not a hang
        assert ready.status_code == 503 and "busy" in ready.json()["problems"][0]
        assert _stored(impatient) == 10  # nothing of the refused batch, nothing lost before
        again = client.post(URL, json=batch, headers=headers)
        assert again.status_code == 200
        assert (again.json()["accepted"], again.json()["duplicates"]) == (10, 10)
        assert client.get("/readyz").status_code == 200
    assert _stored(impatient) == 20


def test_no_free_connection_is_a_503_not_a_500(impatient: AppContext) -> None:
    token = add_staff(impatient, "ops", "admin")
    with TestClient(create_app(impatient.settings, context=impatient)) as client:
        # The pool holds one connection and may open one more: take both.
        with impatient.engine.connect() as one, impatient.engine.connect() as two:
            assert one is not two
            response = client.get("/api/v1/agencies", headers={"Authorization": f"Bearer {token}"})
            page = client.get("/", headers={"Accept": "text/html"})  # a citizen's browser
        assert response.status_code == 503, response.text
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert "Nothing you saved is lost" in page.text and page.headers["Retry-After"] == "5"
        assert response.headers["Retry-After"] == "5"
        fine = client.get("/api/v1/agencies", headers={"Authorization": f"Bearer {token}"})
        assert fine.status_code == 200


def test_database_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "SURVEY_DATABASE_URL": "sqlite:///x.db",
            "SURVEY_SECRET_KEY": "ab" * 32,
            "SURVEY_DB_LOCK_TIMEOUT": "2.5",
            "SURVEY_DB_STATEMENT_TIMEOUT": "20",
            "SURVEY_DB_POOL_TIMEOUT": "3",
            "SURVEY_DB_POOL_SIZE": "4",
        }
    )
    assert (settings.db_lock_timeout, settings.db_statement_timeout) == (2.5, 20.0)
    assert (settings.db_pool_timeout, settings.db_pool_size) == (3.0, 4)
    with pytest.raises(Exception, match="SURVEY_DB_LOCK_TIMEOUT must be a number of seconds"):
        Settings.from_env({"SURVEY_DB_LOCK_TIMEOUT": "soon", "SURVEY_SECRET_KEY": "ab" * 32})
