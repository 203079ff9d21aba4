"""Retention: phones of finished invitations are erased after SURVEY_PHONE_RETENTION_DAYS; the
contact rule keeps working until its window passes; open invitations keep their phones."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient
from sqlmodel import col

from survey.cli import main
from survey.config import Settings
from survey.context import AppContext
from survey.models import Contact, Invitation, OptOut, SampledUnit
from survey.outreach.dispatcher import Dispatcher, DispatchOptions
from survey.outreach.gateways.memory import MemoryGateway
from survey.outreach.retention import RetentionWorker, purge_phones
from tests.survey.builders import add_agency, add_plan, transaction_record
from tests.survey.sms_builders import SmsWorld


def _units(context: AppContext) -> dict[int, tuple[bool, str]]:
    """Unit id -> (phone still stored, phone hash)."""
    with context.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                col(SampledUnit.id), col(SampledUnit.phone_ciphertext), col(SampledUnit.phone_hash)
            ).order_by(col(SampledUnit.id))
        ).all()
    return {row.id: (row.phone_ciphertext is not None, row.phone_hash) for row in rows}


def _finish(context: AppContext, invitation_id: int | None, status: str, at) -> None:
    column = {
        "completed": "completed_at",
        "expired": "expired_at",
        "opted_out": "opted_out_at",
        "failed": "failed_at",
    }[status]
    with context.engine.begin() as conn:
        conn.execute(
            sa.update(Invitation)
            .where(col(Invitation.id) == invitation_id)
            .values(status=status, **{column: at})
        )


@pytest.fixture
def world(context: AppContext) -> SmsWorld:
    return SmsWorld(context)


def _invite(context: AppContext, world: SmsWorld, count: int) -> list[int | None]:
    units = [world.unit(f"+98912000{n:04d}") for n in range(count)]
    Dispatcher(
        context, MemoryGateway(), options=DispatchOptions(rate_per_second=1e6), worker_id="w"
    ).run_once()
    with context.engine.connect() as conn:
        by_unit = dict(
            conn.execute(sa.select(col(Invitation.sampled_unit_id), col(Invitation.id))).all()
        )
    return [by_unit[u] for u in units]


def test_only_finished_invitations_past_retention_lose_their_phone(
    context: AppContext,
    world: SmsWorld,
    clock,
) -> None:
    start = clock.now
    invitations = _invite(context, world, 6)
    clock.now = start + timedelta(days=40)
    _finish(context, invitations[0], "completed", start + timedelta(days=1))
    _finish(context, invitations[1], "expired", start + timedelta(days=7))
    _finish(context, invitations[2], "opted_out", start + timedelta(days=2))
    _finish(context, invitations[3], "failed", start + timedelta(days=3))
    _finish(context, invitations[4], "completed", start + timedelta(days=20))  # 20 days ago
    # invitations[5] stays open (sent)
    report = purge_phones(context, dry_run=True)
    assert report.phones_erased == 4 and all(stored for stored, _ in _units(context).values())
    report = purge_phones(context)
    assert report.phones_erased == 4 and report.retention_days == 30
    units = _units(context)
    assert [units[u][0] for u in sorted(units)] == [False, False, False, False, True, True]
    assert all(phone_hash for _, phone_hash in units.values())  # the contact rule still needs them
    assert purge_phones(context).phones_erased == 0  # idempotent
    assert purge_phones(context, retention_days=10).phones_erased == 1


def test_the_contact_rule_outlives_the_phone_until_its_window_passes(
    context: AppContext,
    client: TestClient,
    world: SmsWorld,
    clock,
) -> None:
    tax = add_agency(context, "TAX", ("TAX-01",))
    add_plan(context, version=2, default_rate=1.0, rates=[], contact_rule_days=90)
    headers = {"Authorization": f"Bearer {tax.key}"}

    def ingest(ext: str) -> str:
        record = transaction_record(1, external_id=ext, completed_at=clock.now.isoformat())
        assert client.post("/api/v1/transactions", json=record, headers=headers).status_code == 200
        with context.engine.connect() as conn:
            return str(
                conn.exec_driver_sql(
                    f"SELECT outcome FROM service_transaction WHERE external_id = '{ext}'"
                ).scalar_one()
            )

    start = clock.now
    assert ingest("t-1") == "sampled"
    Dispatcher(
        context, MemoryGateway(), options=DispatchOptions(rate_per_second=1e6), worker_id="w"
    ).run_once()
    with context.engine.connect() as conn:
        invitation_id = conn.execute(sa.select(col(Invitation.id))).scalar_one()
    _finish(context, invitation_id, "completed", start + timedelta(hours=2))
    with context.engine.begin() as conn:  # a citizen's standing opt-out is never purged
        conn.execute(sa.insert(OptOut).values(phone_hash="f" * 64, active=True, changed_at=start))

    clock.now = start + timedelta(days=31)
    report = purge_phones(context)
    assert (report.phones_erased, report.contacts_deleted, report.hashes_blanked) == (1, 0, 0)
    assert ingest("t-2") == "ineligible"  # contacted 31 days ago: the rule still holds

    clock.now = start + timedelta(days=91)
    report = purge_phones(context)
    assert (report.contacts_deleted, report.hashes_blanked) == (1, 1)
    assert report.contact_window_days == 90
    with context.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Contact)).scalar_one() == 0
        assert conn.execute(sa.select(col(OptOut.phone_hash))).scalars().all() == ["f" * 64]
    assert [h for _, h in _units(context).values()] == [""]
    assert ingest("t-3") == "sampled"  # the window has passed: the phone may be asked again


def test_purge_phones_command(
    context: AppContext,
    world: SmsWorld,
    clock,
    migrated_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    invitations = _invite(context, world, 2)
    long_ago = datetime.now(UTC) - timedelta(days=45)  # the command runs on the real clock
    _finish(context, invitations[0], "completed", long_ago)
    monkeypatch.setenv("SURVEY_DATABASE_URL", migrated_settings.database_url)
    monkeypatch.setenv("SURVEY_SECRET_KEY", migrated_settings.secret_key.hex())
    monkeypatch.setenv("SURVEY_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SURVEY_PHONE_RETENTION_DAYS", "60")
    assert main(["maintenance", "purge-phones"]) == 0
    assert "phones erased: 0 (finished more than 60 days ago)" in capsys.readouterr().out
    assert main(["maintenance", "purge-phones", "--days", "30", "--dry-run"]) == 0
    assert "would erase (dry run): phones erased: 1" in capsys.readouterr().out
    assert all(stored for stored, _ in _units(context).values())
    assert main(["maintenance", "purge-phones", "--days", "30"]) == 0
    assert [stored for stored, _ in _units(context).values()] == [False, True]
    assert main(["maintenance", "purge-phones", "--days", "-1"]) == 2
    with context.engine.connect() as conn:
        actions = conn.exec_driver_sql("SELECT action FROM audit_log").scalars().all()
    assert actions.count("maintenance.purge_phones") == 2


def test_the_background_worker_purges_periodically(
    context: AppContext,
    world: SmsWorld,
    clock,
) -> None:
    invitations = _invite(context, world, 1)
    _finish(context, invitations[0], "expired", clock.now - timedelta(days=31))
    worker = RetentionWorker(context, interval=0.05)
    worker.start()
    deadline = time.monotonic() + 10
    while worker.passes < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.stop()
    assert worker.passes >= 2 and not worker.thread.is_alive()
    assert [stored for stored, _ in _units(context).values()] == [False]
