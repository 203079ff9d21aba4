"""Fixtures shared by all test packages: each test gets its own freshly migrated database.

By default a SQLite file in the test's temp folder. When `SURVEY_DATABASE_URL` names a
PostgreSQL database (as `.ci/run` does for its second pass), each test gets its own schema in
it, dropped afterwards, so tests never share state.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from survey.config import Settings
from survey.kernel import db

TEST_SECRET = bytes(range(32))
# Argon2's cheapest profile for the suite's passwords, also in the servers tests start.
os.environ.setdefault("SURVEY_PASSWORD_HASHING", "cheapest-for-tests")
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


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head per test process; tests start from a copy of it."""
    folder = tmp_path_factory.mktemp("template")
    path = folder / "survey.db"
    db.upgrade(
        Settings(
            database_url=f"sqlite:///{path.as_posix()}",
            secret_key=TEST_SECRET,
            env="test",
            var_dir=folder / "var",
        )
    )
    return path


@pytest.fixture(scope="session")
def postgres_head_script() -> str:
    """The migrations to head as one SQL script (Alembic's offline mode), run in each test's
    schema. `survey db upgrade` itself still runs online in the tests that call it."""
    base = _postgres_url()
    assert base is not None
    config = db.alembic_config(Settings(database_url=base, secret_key=TEST_SECRET, env="test"))
    buffer = io.StringIO()
    config.output_buffer = buffer
    command.upgrade(config, "head", sql=True)
    # The script escapes % for a driver's parameters; it runs here without any.
    return buffer.getvalue().replace("%%", "%")


@pytest.fixture
def migrated_settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The test's database at head, without running the migrations anew for every test (that
    was a third of the suite's time): a copy of a migrated file on SQLite, the migrations' SQL
    script on PostgreSQL."""
    target = _sqlite_path(settings.database_url)
    if target is not None and not target.exists():
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_template"), target)
    elif target is None and db.current_revision(settings) is None:
        _run_script(settings.database_url, request.getfixturevalue("postgres_head_script"))
    db.upgrade(settings)  # a no-op: the database is at head already
    return settings


def _sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(url[len(prefix) :]) if url.startswith(prefix) else None


def _run_script(url: str, script: str) -> None:
    engine = sa.create_engine(db.normalise_url(url), poolclass=sa.pool.NullPool)
    try:
        raw = engine.raw_connection()
        try:
            raw.cursor().execute(script)  # several statements: no parameters, so allowed
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()


class FixedClock:
    """A clock that tests move by hand, so times in assertions are exact."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 10, 9, 30, tzinfo=UTC))
