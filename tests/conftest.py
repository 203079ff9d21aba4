"""Fixtures shared by all test packages: each test gets its own freshly migrated database.

By default a SQLite file in the test's temp folder. When `SURVEY_DATABASE_URL` names a
PostgreSQL database (as `.ci/run` does for its second pass), each test gets its own schema in
it, dropped afterwards, so tests never share state.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from survey import db
from survey.config import Settings

TEST_SECRET = bytes(range(32))
DATA_DIR = Path(__file__).parent / "data"


def _postgres_url() -> str | None:
    url = os.environ.get("SURVEY_DATABASE_URL", "")
    return url if url.startswith(("postgresql", "postgres")) else None


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    base = _postgres_url()
    if base is None:
        yield f"sqlite:///{(tmp_path / 'survey.db').as_posix()}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(db.normalise_url(base), poolclass=sa.pool.NullPool)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        env="test",
        public_base_url="https://survey.example.ir",
        sms_gateway=f"file:{(tmp_path / 'sms.jsonl').as_posix()}",
        sms_webhook_secret=b"webhook-secret-for-tests-0123456789",
        var_dir=tmp_path / "var",
    )


@pytest.fixture
def migrated_settings(settings: Settings) -> Settings:
    db.upgrade(settings)
    return settings


class FixedClock:
    """A clock that tests move by hand, so times in assertions are exact."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 10, 9, 30, tzinfo=UTC))
