"""The audit log: each consequential act writes who, what, when, before and after; admins read
it through the API (with filters) and a page; the database refuses to change or delete it."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from itertools import count
from typing import Any

import pytest
import sqlalchemy as sa
from litestar import Litestar
from litestar.testing import TestClient

from survey.answering.api import signature_for
from survey.context import AppContext
from survey.models import AuditLog, utcnow
from survey.outreach.dispatcher import Dispatcher, DispatchOptions
from survey.outreach.gateways.memory import MemoryGateway
from tests.survey.access_builders import add_staff, https_client
from tests.survey.admin_builders import EXAMPLE_PLAN, add_tax_agency, run, use_test_database
from tests.survey.answer_builders import AnswerWorld
from tests.survey.sms_builders import SmsWorld

_ids = count(1)


def _entries(context: AppContext, **where: str) -> list[AuditLog]:
    with context.sessions() as session:
        query = sa.select(AuditLog).order_by(AuditLog.id)
        for name, value in where.items():
            query = query.where(getattr(AuditLog, name) == value)
        return list(session.scalars(query))


def _one(context: AppContext, action: str, **where: str) -> AuditLog:
    rows = _entries(context, action=action, **where)
    assert len(rows) == 1, (action, [r.action for r in _entries(context)])
    return rows[0]


def test_registry_changes_and_keys_are_recorded_without_the_keys(
    client: TestClient, context: AppContext, clock
) -> None:  # type: ignore[no-untyped-def]
    add_tax_agency(context)
    admin = add_staff(context, "sara", "admin")
    agency = {"code": "SSO", "name_fa": "تأمین اجتماعی", "name_en": "SSO", "province": "tehran"}
    created = client.post("/api/v1/agencies", json=agency, headers=admin)
    assert created.status_code == 201
    rotated = client.post("/api/v1/agencies/SSO/keys", headers=admin).json()["api_key"]
    assert client.delete("/api/v1/agencies/SSO/keys", headers=admin).json()["revoked"] == 1
    service = {"agency": "SSO", "code": "SSO-01", "name_fa": "مستمری", "name_en": "Pension"}
    assert client.post("/api/v1/services", json=service, headers=admin).status_code == 201

    added = _one(context, "agency.add", entity_id="SSO")
    assert (added.actor, added.entity, added.entity_id) == ("staff:sara", "agency", "SSO")
    assert abs(added.at - utcnow()) < timedelta(minutes=5)
    assert added.before is None and added.after is not None
    assert added.after["name_en"] == "SSO"
    rotate = _one(context, "agency.key.rotate")
    assert rotate.after is not None and rotated.startswith(str(rotate.after["prefix"]))
    assert _one(context, "agency.key.revoke").entity_id == "SSO"
    assert _one(context, "service.add", entity_id="SSO-01").after["agency"] == "SSO"  # type: ignore[index]
    everything = json.dumps([[r.before, r.after] for r in _entries(context)])
    assert rotated not in everything and created.json()["api_key"] not in everything
    assert admin["Authorization"].split()[1] not in everything


def test_user_changes_are_recorded_with_before_and_after(
    client: TestClient, context: AppContext
) -> None:
    admin = add_staff(context, "sara", "admin")
    response = client.post(
        "/api/v1/users", json={"username": "mina", "role": "viewer"}, headers=admin
    )
    token = response.json()["token"]
    client.post("/api/v1/users/mina/tokens", headers=admin)
    client.post("/api/v1/users/mina/password", json={"password": "x" * 20}, headers=admin)
    client.post("/api/v1/users/mina/deactivate", headers=admin)
    client.post("/api/v1/users/mina/activate", headers=admin)
    client.post("/api/v1/users/mina/unlock", headers=admin)
    rows = [r for r in _entries(context, entity_id="mina")]
    assert [(r.actor, r.action) for r in rows] == [
        ("staff:sara", "user.add"),
        ("staff:sara", "user.token.issue"),
        ("staff:sara", "user.token.issue"),
        ("staff:sara", "user.password.set"),
        ("staff:sara", "user.deactivate"),
        ("staff:sara", "user.activate"),
        ("staff:sara", "user.unlock"),
    ]
    assert rows[0].after == {
        "username": "mina",
        "role": "viewer",
        "agency": None,
        "name": "",
        "password": False,
    }
    assert (rows[3].before, rows[3].after) == (
        {"password": False},
        {"password": True, "sessions_ended": 0},
    )
    assert (rows[4].before, rows[4].after) == (
        {"active": True},
        {"active": False, "sessions_ended": 0},
    )
    text = json.dumps([[r.before, r.after] for r in rows])
    assert token not in text and "x" * 20 not in text and "argon2" not in text


def test_plan_and_questionnaire_changes_are_recorded(
    client: TestClient,
    context: AppContext,
    settings,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    add_tax_agency(context)
    statistician = add_staff(context, "reza", "statistician")
    applied = client.post(
        "/api/v1/plans",
        content=EXAMPLE_PLAN.encode(),
        headers={**statistician, "Content-Type": "application/yaml"},
    )
    assert applied.status_code == 201
    plan = _one(context, "plan.apply")
    assert (plan.actor, plan.entity_id) == ("staff:reza", "1")
    assert plan.after is not None and plan.after["name"] == "example"

    use_test_database(monkeypatch, settings)
    form = tmp_path / "my-form.yaml"
    from questionnaires.loading import load_library

    source = load_library()["sms-short"].to_dict()
    source["id"] = "my-form"
    form.write_text(json.dumps(source, ensure_ascii=False), "utf-8")
    code, out, err = run(capsys, "questionnaires", "load", str(form))
    assert code == 0, out + err
    added = [r for r in _entries(context) if r.action == "questionnaire.add"]
    assert [r.entity_id for r in added if "my-form" in r.entity_id], added
    assert added[-1].actor.startswith("cli:")


def test_exports_are_recorded(client: TestClient, context: AppContext) -> None:
    statistician = add_staff(context, "reza", "statistician")
    query = "?from=2026-03-01&to=2026-03-09"
    responses = client.get(f"/api/v1/export/responses{query}", headers=statistician)
    frames = client.get(f"/api/v1/export/frame-counts{query}", headers=statistician)
    assert responses.status_code == 200 and frames.status_code == 200
    exported = _one(context, "export.responses")
    assert (exported.actor, exported.entity_id) == ("staff:reza", "2026-03-01..2026-03-09")
    assert exported.after == {"rows": 0, "include_partial": False, "target": "api"}
    counts = _one(context, "export.frame_counts")
    assert counts.actor == "staff:reza" and counts.after["target"] == "api"  # type: ignore[index]


def test_opt_outs_on_the_web_are_recorded_without_the_phone_or_token(
    client: TestClient, context: AppContext
) -> None:
    world = AnswerWorld(context)
    invited = world.invite()
    page = client.get(f"/s/{invited.token}/opt-out")
    field = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert field is not None
    done = client.post(f"/s/{invited.token}/opt-out", data={"_csrf_token": field[1]})
    assert done.status_code == 200
    web = _one(context, "optout.add")
    assert (web.actor, web.entity, web.entity_id) == (
        "citizen:web",
        "invitation",
        str(invited.invitation_id),
    )
    assert web.after == {"status": "opted_out", "opt_out": True, "source": "web"}
    assert invited.token not in json.dumps([web.entity_id, web.before, web.after])
    assert re.sub(r"\D", "", invited.phone)[-10:] not in json.dumps([web.before, web.after])


def test_opt_outs_and_opt_ins_by_sms_are_recorded_without_the_phone(
    client: TestClient, context: AppContext
) -> None:
    phone = "+989121112233"
    sms = SmsWorld(context)
    sms.unit(phone)
    Dispatcher(
        context, MemoryGateway(), options=DispatchOptions(rate_per_second=1e6), worker_id="w"
    ).run_once()

    def reply(text: str) -> str:
        body = json.dumps(
            {"from": "0" + phone[3:], "to": "3000", "text": text, "message_id": f"a{next(_ids)}"}
        ).encode()
        secret = context.settings.sms_webhook_secret
        answer = client.post(
            "/api/v1/sms/inbound",
            content=body,
            headers={"X-Survey-Signature": signature_for(secret, body)},
        )
        return str(answer.json()["outcome"])

    assert reply("لغو") == "opted_out"
    assert reply("12") == "opted_in"
    rows = [r for r in _entries(context) if r.actor == "citizen:sms"]
    assert [(r.action, r.before, r.after) for r in rows] == [
        (
            "optout.add",
            {"opt_out": False},
            {"opt_out": True, "source": "sms", "invitations_closed": 1},
        ),
        ("optout.remove", {"opt_out": True}, {"opt_out": False, "source": "sms"}),
    ]
    text = json.dumps([[r.entity_id, r.before, r.after] for r in _entries(context)])
    assert "9121112233" not in text


def test_admins_read_the_log_with_filters(client: TestClient, context: AppContext, clock) -> None:  # type: ignore[no-untyped-def]
    add_tax_agency(context)  # cli actions: agency.add, service.add x2
    admin = add_staff(context, "sara", "admin")
    client.post("/api/v1/users", json={"username": "mina", "role": "viewer"}, headers=admin)

    def entries(query: str) -> list[dict[str, Any]]:
        response = client.get(f"/api/v1/audit{query}", headers=admin)
        assert response.status_code == 200, response.text
        return list(response.json()["entries"])

    everything = entries("?limit=100")
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)
    users = entries("?action=user.")
    assert {e["action"] for e in users} == {"user.add", "user.token.issue"}
    assert {e["action"] for e in entries("?action=user.*")} == {"user.add", "user.token.issue"}
    by_sara = entries("?actor=staff:sara")
    assert [e["action"] for e in by_sara] == ["user.token.issue", "user.add"]
    agency_rows = entries("?entity=agency")
    assert [(e["action"], e["entity_id"]) for e in agency_rows] == [
        ("agency.key.issue", "TAX"),
        ("agency.add", "TAX"),
    ]
    assert {e["entity_id"] for e in entries("?entity=user&entity_id=mina")} == {"mina"}
    added = next(e for e in everything if e["action"] == "user.add" and e["entity_id"] == "mina")
    since = client.get("/api/v1/audit", params={"since": added["at"]}, headers=admin).json()
    assert {e["id"] for e in since["entries"]} == {
        e["id"] for e in everything if e["id"] >= added["id"]
    }
    until = client.get("/api/v1/audit", params={"until": added["at"]}, headers=admin).json()
    assert added["id"] not in {e["id"] for e in until["entries"]}
    assert entries("?since=2999-01-01") == []
    assert len(entries("?until=2999-01-01&limit=100")) == len(everything)
    assert len(entries("?limit=2")) == 2
    bad = client.get("/api/v1/audit?since=yesterday", headers=admin)
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "since"
    assert client.get("/api/v1/audit?limit=0", headers=admin).status_code == 422


def test_the_audit_page_is_for_admins(app: Litestar, context: AppContext) -> None:
    add_tax_agency(context)
    admin = add_staff(context, "sara", "admin")
    viewer = add_staff(context, "vida", "viewer")
    with https_client(app) as client:
        page = client.get("/audit?action=service.", headers=admin)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.text.count('<tr class="entry">') == 2 and "TAX-01" in page.text
        assert "<script" not in page.text
        assert client.get("/audit", headers=viewer).status_code == 403
        assert client.get("/audit").status_code == 401
        bad = client.get("/audit?until=soon", headers=admin)
        assert bad.status_code == 422 and "until" in bad.text


def test_the_database_refuses_to_change_or_delete_audit_rows(context: AppContext) -> None:
    add_tax_agency(context)
    with context.sessions() as session:
        first = session.scalar(sa.select(sa.func.min(AuditLog.id)))
    for statement in (
        sa.update(AuditLog).where(AuditLog.id == first).values(actor="someone else"),
        sa.delete(AuditLog).where(AuditLog.id == first),
    ):
        with (
            pytest.raises(sa.exc.DatabaseError, match="append-only"),
            context.engine.begin() as connection,
        ):
            connection.execute(statement)
    rows = _entries(context)
    assert rows[0].actor == "cli:console" and len(rows) == 4  # unchanged


def test_no_route_can_change_the_log(app: Litestar) -> None:
    for route in app.routes:
        if "audit" in route.path:
            methods = {m for h in route.route_handlers for m in h.http_methods}
            assert methods <= {"GET", "HEAD", "OPTIONS"}, route.path
