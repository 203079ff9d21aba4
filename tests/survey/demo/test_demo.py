"""`survey demo`: seeds the registry, plan and users, ingests a stream, invites the sampled
citizens by SMS (file gateway), simulates their answers, prints the rates, and repeats safely."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from survey.app import create_app
from survey.config import Settings
from survey.context import AppContext
from survey.demo.seed import load_demo_data, seed, synthetic_stream
from survey.demo.survey_round import demo_sms_file, survey_moment
from survey.ingestion.frames import frame_counts
from survey.kernel.console import cli_principal
from survey.kernel.phones import normalise_mobile
from survey.models import (
    Agency,
    AppUser,
    Invitation,
    OptOut,
    QuestionnaireVersion,
    Response,
    SampledUnit,
    SamplingPlan,
    Service,
)
from tests.survey.access_builders import https_client, sign_in
from tests.survey.admin_builders import run, use_test_database


def _sms_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def _survey_state(context: AppContext) -> dict[str, Any]:
    with context.read_sessions() as session:
        invitations = dict(
            session.execute(
                sa.select(Invitation.status, sa.func.count()).group_by(Invitation.status)
            ).all()
        )
        responses = Counter(
            (channel, status)
            for channel, status in session.execute(sa.select(Response.channel, Response.status))
        )
        units = session.scalar(sa.select(sa.func.count()).select_from(SampledUnit))
        opt_outs = session.scalar(sa.select(sa.func.count()).select_from(OptOut))
    return {
        "invitations": invitations,
        "responses": responses,
        "units": units,
        "opt_outs": opt_outs,
    }


def test_demo_seeds_ingests_surveys_and_repeats(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    migrated_settings: Settings,
    context: AppContext,
) -> None:
    use_test_database(monkeypatch, migrated_settings)
    monkeypatch.delenv("SURVEY_SMS_GATEWAY", raising=False)
    code, out, err = run(capsys, "demo", "--no-serve", "--transactions", "3000")
    assert code == 0, err
    lines = out.rstrip("\n").split("\n")
    assert lines[0] == "registry: 14 agencies and 36 services added (existing ones kept)"
    assert "plan version 1 applied" in out
    assert "3,060 records posted" in out  # 3,000 and 2% resent
    token = lines[-1]
    assert token.startswith("stk_")
    principal = context.keys.resolve(f"Bearer {token}")
    assert (principal.name, principal.role) == ("demo-admin", "admin")
    password = re.search(r"as demo-admin with password (\S+) \(new each run\)", out)
    assert password is not None, out
    with https_client(create_app(migrated_settings, context=context)) as client:
        signed_in = sign_in(client, "demo-admin", password[1], next_path="/ingestion")
        assert signed_in.status_code == 303, signed_in.text
        assert client.get("/ingestion").status_code == 200

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
    assert 2_930 <= first.reported <= 2_985  # ~1% invalid records were rejected
    assert 45 <= first.duplicates <= 65
    assert 0 < first.sampled < first.eligible <= first.reported

    # Every sampled unit was invited through the file gateway, once.
    sms_file = migrated_settings.var_dir / "demo-sms.jsonl"
    sent = _sms_lines(sms_file)
    state = _survey_state(context)
    invites = [m for m in sent if m["kind"] == "invite"]
    assert len(invites) == sum(state["invitations"].values()) == state["units"] == first.sampled
    assert len({m["local_id"] for m in sent}) == len(sent)
    assert all(re.fullmatch(r"\+989\d{9}", m["to"]) for m in sent)
    links = [m for m in invites if "/s/" in m["text"]]
    assert links and all(m["text"].rstrip().endswith(("لغو۱۱", "STOP: 11")) for m in invites)
    assert f"SMS: {len(invites):,} invitations" in out
    # Citizens answered on the web and by SMS (the dialogue's questions and thanks went out
    # through the dispatcher), many did nothing: the statuses say so.
    responses = state["responses"]
    assert responses[("web", "completed")] > 0
    assert responses[("sms", "completed")] + responses[("sms", "partial")] > 0
    assert {"question", "thanks"} <= {m["kind"] for m in sent}
    assert sum(1 for m in sent if m["kind"] == "thanks") == responses[("sms", "completed")]
    statuses = state["invitations"]
    assert (
        statuses["completed"] == responses[("web", "completed")] + responses[("sms", "completed")]
    )
    assert statuses.get("sent", 0) + statuses.get("delivered", 0) > statuses["completed"]
    assert state["opt_outs"] == statuses.get("opted_out", 0)
    # The printed rates are the service's, for the stream's days, and say where to see them.
    [citizens_line] = [line for line in lines if line.startswith("citizens: ")]
    assert f"web: {responses[('web', 'completed')]} completed" in citizens_line
    assert f"{responses[('web', 'partial')]} saved part" in citizens_line
    assert f"{statuses.get('failed', 0)} undelivered" in citizens_line  # delivery reports
    [all_row] = [line.split() for line in lines if line.startswith("  all ")]
    assert all_row[1] == str(statuses["completed"])  # I
    assert int(all_row[8]) == state["units"]  # every sampled unit counts
    assert 0.1 < float(all_row[9]) < 0.6  # RR1
    assert re.search(r"survey rates --period 14\d\d-\d\d --by agency", out)
    assert re.search(r"http://127\.0\.0\.1:8000/api/v1/rates\?period=14\d\d-\d\d&by=agency", out)
    assert not re.search(r"(\+98|\b0)9\d{9}", out)  # no phone number on the console

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
    again = _survey_state(context)
    resent = _sms_lines(sms_file)
    assert resent[: len(sent)] == sent  # the first run's messages are kept, none sent again
    assert len({m["local_id"] for m in resent}) == len(resent)
    new_invites = [m for m in resent[len(sent) :] if m["kind"] == "invite"]
    assert new_invites and min(m["invitation_id"] for m in new_invites) > max(
        m["invitation_id"] for m in invites
    )
    assert sum(again["invitations"].values()) == again["units"] == second.sampled
    for key, count in responses.items():  # earlier answers stay
        assert again["responses"][key] >= count
    assert sum(again["responses"].values()) > sum(responses.values())


def test_the_round_waits_for_the_end_of_quiet_hours(context: AppContext, clock: Any) -> None:
    data = load_demo_data()
    seed(context, cli_principal(), data)
    tehran = ZoneInfo("Asia/Tehran")
    clock.now = datetime(2026, 3, 10, 23, 30, tzinfo=tehran)
    assert survey_moment(context, clock.now) == datetime(2026, 3, 11, 8, 0, tzinfo=tehran)
    day = datetime(2026, 3, 10, 10, 15, tzinfo=tehran)
    assert survey_moment(context, day) == day


def test_the_demo_never_sends_through_a_real_provider(settings: Settings, tmp_path: Path) -> None:
    assert demo_sms_file(settings) == Path(settings.sms_gateway.removeprefix("file:"))
    for spec in ("console", "http:https://sms.example.ir/v1", "memory"):
        other = settings.with_overrides(sms_gateway=spec, var_dir=tmp_path)
        assert demo_sms_file(other) == tmp_path / "demo-sms.jsonl"


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


def test_the_demo_links_point_at_the_port_it_serves_on(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    migrated_settings: Settings,
) -> None:
    use_test_database(monkeypatch, migrated_settings)
    monkeypatch.delenv("SURVEY_SMS_GATEWAY", raising=False)
    monkeypatch.delenv("SURVEY_PUBLIC_BASE_URL", raising=False)
    code, out, err = run(
        capsys, "demo", "--no-serve", "--port", "8100", "--transactions", "600", "--days", "5"
    )
    assert code == 0, err
    texts = [m["text"] for m in _sms_lines(migrated_settings.var_dir / "demo-sms.jsonl")]
    links = [t for t in texts if "/s/" in t]
    assert links, texts[:3]
    assert all("http://127.0.0.1:8100/s/" in t for t in links), links[:3]
    assert "http://127.0.0.1:8100/api/v1/rates" in out
