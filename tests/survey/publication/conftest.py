"""The demo's releases as officials see them: `survey demo`'s default world (14 agencies, 31
provinces, two finished months published) built once per test process on its own SQLite file,
on a clock fixed at 4 Azar 1405 so that every run publishes the same months."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from survey.config import Settings
from survey.context import AppContext
from survey.demo.seed import run_demo
from survey.kernel.principal import CLI_PRINCIPAL
from survey.publication.releases import StoredRelease, latest_published, published_releases
from tests.conftest import TEST_SECRET

DEMO_CLOCK = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)  # 4 Azar 1405


@dataclass(frozen=True)
class DemoWorld:
    settings: Settings
    context: AppContext
    releases: list[StoredRelease]  # published, oldest first
    latest: StoredRelease

    @property
    def agencies(self) -> list[str]:
        return sorted(self.latest.agencies)


@pytest.fixture(scope="session")
def demo_world(
    tmp_path_factory: pytest.TempPathFactory, migrated_sqlite_template: Path
) -> Iterator[DemoWorld]:
    folder = tmp_path_factory.mktemp("demo-site")
    shutil.copyfile(migrated_sqlite_template, folder / "survey.db")
    settings = Settings(
        database_url=f"sqlite:///{(folder / 'survey.db').as_posix()}",
        secret_key=TEST_SECRET,
        env="test",
        sms_gateway=f"file:{(folder / 'sms.jsonl').as_posix()}",
        sms_webhook_secret=b"webhook-secret-for-tests-0123456789",
        var_dir=folder / "var",
        clock_start=DEMO_CLOCK,
    )
    context = AppContext.build(settings)
    run_demo(context, CLI_PRINCIPAL)
    with context.read_sessions() as session:
        published = published_releases(session)
        latest = latest_published(session)
    assert latest is not None and published, "the demo published no release"
    try:
        yield DemoWorld(settings, context, sorted(published, key=lambda r: r.id), latest)
    finally:
        context.close()
