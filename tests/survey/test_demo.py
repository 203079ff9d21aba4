"""`survey demo`: seeds the registry, plan and users, ingests a stream, and repeats safely."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from survey.config import Settings
from survey.context import AppContext
from survey.demo import load_demo_data, synthetic_stream
from survey.frames import frame_counts
from survey.models import Agency, AppUser, QuestionnaireVersion, SamplingPlan, Service
from survey.phones import normalise_mobile
from tests.survey.admin_builders import run, use_test_database


def test_demo_seeds_ingests_and_repeats(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    migrated_settings: Settings,
    context: AppContext,
) -> None:
    use_test_database(monkeypatch, migrated_settings)
    code, out, err = run(capsys, "demo", "--no-serve", "--transactions", "2000")
    assert code == 0, err
    lines = out.rstrip("\n").split("\n")
    assert lines[0] == "registry: 14 agencies and 36 services added (existing ones kept)"
    assert "plan version 1 applied" in out
    assert "2,040 records posted" in out  # 2,000 and 2% resent
    token = lines[-1]
    assert token.startswith("stk_")
    principal = context.keys.resolve(f"Bearer {token}")
    assert (principal.name, principal.role) == ("demo-admin", "admin")

    with context.sessions() as session:
        agencies = session.scalar(sa.select(sa.func.count()).select_from(Agency))
        services = session.scalar(sa.select(sa.func.count()).select_from(Service))
        provinces = set(session.scalars(sa.select(Agency.province_code)))
        plan = session.scalars(sa.select(SamplingPlan)).one()
        users = set(session.scalars(sa.select(AppUser.username)))
        questionnaires = set(session.scalars(sa.select(QuestionnaireVersion.qid)))
        totals = frame_counts(session, by=["plan"])
    assert (agencies, services) == (14, 36)
    assert len(provinces) >= 5
    assert plan.name == "demo-1405" and plan.quiet_hours == ["21:00", "08:00"]
    assert {"demo-admin", "demo-viewer", "tax-operator"} <= users
    assert questionnaires == {"core-transaction", "service-desk", "sms-short"}
    [first] = totals
    assert 1_950 <= first.reported <= 1_990  # ~1% invalid records were rejected
    assert 30 <= first.duplicates <= 40
    assert 0 < first.sampled < first.eligible <= first.reported

    code, out, _ = run(capsys, "demo", "--no-serve", "--transactions", "2000")
    assert code == 0
    assert "registry: 0 agencies and 0 services added" in out
    assert "plan version 1 kept (unchanged)" in out
    new_token = out.rstrip().split("\n")[-1]
    assert new_token.startswith("stk_") and new_token != token
    with context.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(SamplingPlan)) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(Agency)) == 14
        [second] = frame_counts(session, by=["plan"])
    assert second.reported >= first.reported + 1_900  # new external ids: appended


def test_the_stream_is_reproducible_and_realistic() -> None:
    data = load_demo_data()
    now = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
    one = synthetic_stream(data, transactions=3000, days=30, now=now, seed=7, run=0)
    two = synthetic_stream(data, transactions=3000, days=30, now=now, seed=7, run=0)
    other = synthetic_stream(data, transactions=3000, days=30, now=now, seed=7, run=1)
    assert one.by_agency == two.by_agency
    assert one.by_agency != other.by_agency
    records = [r for rs in one.by_agency.values() for r in rs]
    assert len(records) == 3000 + 60
    assert len({r["external_id"] for r in records}) == 3000
    assert {r["channel"] for r in records} >= {"in_person", "online", "phone", "kiosk"}
    stamps = [
        datetime.fromisoformat(r["completed_at"]) for r in records if len(r["completed_at"]) > 19
    ]
    assert all(s <= now for s in stamps) and min(stamps).date().toordinal() >= now.toordinal() - 31
    assert sum(s.weekday() == 4 for s in stamps) < len(stamps) / 20  # Fridays are quiet
    valid_phones = 0
    for record in records:
        try:
            normalise_mobile(record["phone"])
            valid_phones += 1
        except ValueError:
            pass
    assert 0.99 * len(records) <= valid_phones < len(records)
    assert any(ord(c) >= 0x06F0 for r in records for c in r["phone"])  # Persian digits too
