"""The skeleton: settings, migrations on the configured database, the app factory."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from survey.config import Settings
from survey.context import AppContext
from survey.errors import ConfigurationError
from survey.kernel import db


def test_migrations_create_every_table_and_seed_reference_data(migrated_settings: Settings) -> None:
    engine = db.create_db_engine(migrated_settings)
    try:
        names = set(sa.inspect(engine).get_table_names())
        with engine.connect() as connection:
            channels = connection.exec_driver_sql("SELECT code FROM channel ORDER BY code").all()
            provinces = connection.exec_driver_sql("SELECT count(*) FROM province").scalar()
    finally:
        engine.dispose()
    assert {
        "agency",
        "service",
        "sampling_plan",
        "frame_count",
        "sampled_unit",
        "contact",
        "opt_out",
        "api_key",
        "app_user",
        "audit_log",
        "questionnaire_version",
        "service_transaction",
        "channel",
        "province",
        "invitation",
        "outbox_message",
        "response",
    } <= names
    assert [c for (c,) in channels] == ["in_person", "kiosk", "online", "phone"]
    assert provinces == 31


def test_upgrade_is_idempotent(migrated_settings: Settings) -> None:
    from alembic.script import ScriptDirectory

    db.upgrade(migrated_settings)
    head = ScriptDirectory.from_config(db.alembic_config(migrated_settings)).get_current_head()
    assert db.current_revision(migrated_settings) == head


def test_health_endpoint(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_settings_defaults_generate_a_secret_once(tmp_path: Path) -> None:
    env = {"SURVEY_VAR_DIR": str(tmp_path / "var")}
    first = Settings.from_env(env)
    second = Settings.from_env(env)
    assert first.secret_key == second.secret_key
    assert len(first.secret_key) == 32
    assert first.database_url == f"sqlite:///{(tmp_path / 'var' / 'survey.db').as_posix()}"
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o077 == 0


def test_production_requires_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="SURVEY_DATABASE_URL is required"):
        Settings.from_env({"SURVEY_ENV": "production", "SURVEY_VAR_DIR": str(tmp_path)})
    with pytest.raises(ConfigurationError, match="SURVEY_SECRET_KEY is required"):
        Settings.from_env({"SURVEY_ENV": "production", "SURVEY_DATABASE_URL": "sqlite:///x.db"})


def test_production_refuses_the_test_suites_cheap_password_hashing() -> None:
    production = {
        "SURVEY_ENV": "production",
        "SURVEY_DATABASE_URL": "sqlite:///x.db",
        "SURVEY_SECRET_KEY": "ab" * 32,
        "SURVEY_SMS_WEBHOOK_SECRET": "webhook-secret-0123456789-0123456789",
        "SURVEY_PUBLIC_BASE_URL": "https://survey.example.ir",
    }
    assert Settings.from_env(production).env == "production"
    with pytest.raises(ConfigurationError, match="SURVEY_PASSWORD_HASHING is for the test"):
        Settings.from_env({**production, "SURVEY_PASSWORD_HASHING": "cheapest-for-tests"})


def test_production_refuses_a_short_webhook_secret_and_a_plain_http_address() -> None:
    production = {
        "SURVEY_ENV": "production",
        "SURVEY_DATABASE_URL": "sqlite:///x.db",
        "SURVEY_SECRET_KEY": "ab" * 32,
        "SURVEY_SMS_WEBHOOK_SECRET": "w" * 32,
        "SURVEY_PUBLIC_BASE_URL": "https://survey.example.ir",
    }
    assert Settings.from_env(production).https
    with pytest.raises(ConfigurationError, match=r"at least 32 bytes .* got 31"):
        Settings.from_env({**production, "SURVEY_SMS_WEBHOOK_SECRET": "w" * 31})
    plain = {**production, "SURVEY_PUBLIC_BASE_URL": "http://survey.example.ir"}
    with pytest.raises(ConfigurationError, match="must be an https:// address"):
        Settings.from_env(plain)
    closed = Settings.from_env({**plain, "SURVEY_ALLOW_HTTP": "1"})  # a closed network
    assert not closed.https and closed.public_base_url == "http://survey.example.ir"
    assert Settings.from_env({**plain, "SURVEY_ENV": "development"}).env == "development"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SURVEY_ENV": "staging"}, "SURVEY_ENV must be one of"),
        ({"SURVEY_SECRET_KEY": "short"}, "at least 32 bytes"),
        ({"SURVEY_MAX_BATCH_SIZE": "lots"}, "must be a whole number"),
        ({"SURVEY_MAX_BATCH_SIZE": "0"}, "must be positive"),
        ({"SURVEY_CLOCK_START": "2026-12-04T12:00:00"}, "SURVEY_CLOCK_START .* UTC offset"),
        ({"SURVEY_CLOCK_START": "1405-09-13T12:00:00+03:30"}, "looks like a Solar Hijri"),
        ({"SURVEY_CLOCK_START": "yesterday"}, "SURVEY_CLOCK_START must be an ISO 8601"),
    ],
)
def test_bad_settings_name_the_variable(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({"SURVEY_VAR_DIR": str(tmp_path), **env})


def test_migrations_match_the_models(migrated_settings: Settings) -> None:
    """Alembic's autogenerate finds nothing to add: every model change has its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    import survey.models  # noqa: F401

    engine = db.create_db_engine(migrated_settings)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert differences == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"SURVEY_SMS_WEBHOOK_SECRET": "ab" * 32}, "must differ from SURVEY_SECRET_KEY"),
        ({"SURVEY_SMS_WEBHOOK_SECRET": "AB" * 32}, "must differ from SURVEY_SECRET_KEY"),
        ({"SURVEY_SMS_WEBHOOK_SECRET": "abab " * 16}, "must differ from SURVEY_SECRET_KEY"),
        (
            {"SURVEY_SMS_WEBHOOK_SECRET": "cd" * 32, "SURVEY_PREVIOUS_SECRET_KEYS": "cd" * 32},
            "must differ from SURVEY_SECRET_KEY",
        ),
        ({"SURVEY_METRICS_TOKEN": "x"}, "SURVEY_METRICS_TOKEN must be at least 32"),
        ({"SURVEY_TRUSTED_PROXIES": "0.0.0.0/0"}, "would trust nearly every address"),
        ({"SURVEY_PUBLIC_BASE_URL": "https://evil@survey.example.ir"}, "no user"),
        ({"SURVEY_PUBLIC_BASE_URL": "https:// evil"}, "must look like"),
        ({"SURVEY_PUBLIC_BASE_URL": "javascript:alert(1)"}, "must look like"),
    ],
)
def test_production_refuses_settings_that_hand_out_more_than_they_should(
    change: dict[str, str], message: str
) -> None:
    production = {
        "SURVEY_ENV": "production",
        "SURVEY_DATABASE_URL": "sqlite:///x.db",
        "SURVEY_SECRET_KEY": "ab" * 32,
        "SURVEY_SMS_WEBHOOK_SECRET": "w" * 32,
        "SURVEY_PUBLIC_BASE_URL": "https://survey.example.ir",
    }
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({**production, **change})


def test_a_clock_start_runs_on_from_its_instant_and_never_in_production(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"SURVEY_VAR_DIR": str(tmp_path), "SURVEY_CLOCK_START": "2026-12-04T12:00:00+03:30"}
    )
    clock = AppContext.build(settings).clock
    first, second = clock(), clock()
    assert first.isoformat().startswith("2026-12-04T08:30:00")
    assert first <= second < first + timedelta(seconds=5)
    production = {
        "SURVEY_ENV": "production",
        "SURVEY_DATABASE_URL": "sqlite:///x.db",
        "SURVEY_SECRET_KEY": "ab" * 32,
        "SURVEY_SMS_WEBHOOK_SECRET": "w" * 32,
        "SURVEY_PUBLIC_BASE_URL": "https://survey.example.ir",
        "SURVEY_CLOCK_START": "2026-12-04T12:00:00+03:30",
    }
    with pytest.raises(ConfigurationError, match="for demos and tests; unset it in production"):
        Settings.from_env(production)
