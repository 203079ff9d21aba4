"""Security headers on every kind of response, no inline scripts in any template, and no
secrets or phone numbers in the logs while agencies report, citizens answer and staff sign in."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from survey.answering.api import signature_for
from survey.app import create_app
from survey.config import Settings
from survey.context import AppContext
from survey.http.security import CSP
from survey.kernel.db import transaction
from survey.kernel.principal import CLI_PRINCIPAL
from survey.registry import agencies as registry
from tests.survey.access_builders import PASSWORD, add_staff, https_client, sign_in
from tests.survey.answer_builders import AnswerWorld

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE_DIRS = [*(ROOT / "survey").glob("*/templates"), ROOT / "questionnaires" / "templates"]


def _directives(policy: str) -> dict[str, str]:
    """`default-src 'self'; ...` as {"default-src": "'self'", ...}."""
    out = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            out[name] = value.strip()
    return out


def test_pages_and_api_answers_carry_the_headers(app: Litestar, context: AppContext) -> None:
    admin = add_staff(context, "sara", "admin")
    with https_client(app) as client:
        for response in (
            client.get("/login"),
            client.get("/api/v1/users", headers=admin),
            client.get("/api/v1/users"),  # a 401 too
            client.get("/healthz"),
            client.get("/no/such/page"),  # 404 from the router: no route middleware ran
            client.post("/healthz"),  # 405
        ):
            headers = response.headers
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["x-frame-options"] == "DENY"
            assert headers["referrer-policy"] == "no-referrer"
            assert headers["strict-transport-security"].startswith("max-age=31536000")
            policy = _directives(headers["content-security-policy"])
            assert policy["frame-ancestors"] == "'none'"
            assert policy["script-src"] == "'self'"  # no 'unsafe-inline' for scripts
            assert policy["object-src"] == "'none'"
            assert "'unsafe-inline'" not in policy["default-src"]


def test_survey_pages_never_leak_their_token(app: Litestar, context: AppContext) -> None:
    world = AnswerWorld(context)
    invited = world.invite()
    with https_client(app) as client:
        for path in (f"/s/{invited.token}", f"/s/{invited.token}/opt-out", "/s/unknowntoken"):
            response = client.get(path)
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["cache-control"] == "no-store"
            policy = _directives(response.headers["content-security-policy"])
            assert policy["default-src"] == "'none'"  # the answering pages' own, stricter CSP
            assert "script-src" not in policy and policy["frame-ancestors"] == "'none'"
            assert "<script" not in response.text
            # No link on the page points off the site (a Referer could only go elsewhere).
            assert not re.search(r'(href|src|action)="(https?:)?//', response.text)


def test_no_hsts_without_tls(migrated_settings: Settings, context: AppContext) -> None:
    plain = migrated_settings.with_overrides(public_base_url="http://127.0.0.1:8000")
    with TestClient(create_app(plain, context=context)) as client:
        response = client.get("/login")
    assert "strict-transport-security" not in response.headers
    assert response.headers["content-security-policy"] == CSP


def test_no_template_has_inline_script_or_style_attributes() -> None:
    """The CSP forbids inline scripts; inline style blocks are allowed (docs/access.md), but
    style attributes and event handlers are not used anywhere, so a stricter policy stays
    possible."""
    templates = [p for d in TEMPLATE_DIRS for p in d.rglob("*.j2")]
    assert len(templates) >= 8
    for path in templates:
        text = path.read_text("utf-8")
        assert "<script" not in text.lower(), path
        assert not re.search(r"\son[a-z]+\s*=", text), path
        assert not re.search(r"\sstyle\s*=", text), path
        assert "javascript:" not in text.lower(), path


def test_no_phone_token_key_or_password_reaches_the_logs(
    app: Litestar,
    context: AppContext,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    world = AnswerWorld(context)  # agency TAX, service TAX-01, a plan in force, an invitation
    invited = world.invite()
    with transaction(context.sessions) as session:
        agency_key = registry.rotate_agency_key(session, CLI_PRINCIPAL, "TAX").key
    admin = add_staff(context, "sara", "admin")
    phones = [f"0912{n:07d}" for n in range(3_456_700, 3_456_720)]
    secret = context.settings.sms_webhook_secret
    with https_client(app) as client:
        records = [
            {
                "external_id": f"log-{i}",
                "service": "TAX-01",
                "channel": "in_person",
                "completed_at": "2026-03-09T10:00:00+03:30",
                "phone": phone,
            }
            for i, phone in enumerate(phones)
        ]
        records.append({**records[0], "external_id": "bad", "phone": "09123456799x"})
        reported = client.post(
            "/api/v1/transactions",
            json=records,
            headers={"Authorization": f"Bearer {agency_key}"},
        )
        assert reported.status_code == 200 and reported.json()["accepted"] == 20
        page = client.get(f"/s/{invited.token}")
        assert page.status_code == 200
        field = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        assert field is not None
        saved = client.post(
            f"/s/{invited.token}",
            data={"_csrf_token": field[1], "action": "save", "q_overall": "2"},
            follow_redirects=False,
        )
        assert saved.status_code == 303
        body = json.dumps(
            {"from": invited.phone, "to": "3000", "text": "1", "message_id": "m-1"}
        ).encode()
        inbound = client.post(
            "/api/v1/sms/inbound",
            content=body,
            headers={"X-Survey-Signature": signature_for(secret, body)},
        )
        assert inbound.status_code == 200
        assert sign_in(client, "sara").status_code == 303
        assert sign_in(client, "sara", password="wrong password here").status_code == 401
        assert client.get("/api/v1/users", headers=admin).status_code == 200
        session_token = client.cookies.get("survey_session") or ""
    captured = capfd.readouterr()
    # The service's log records and output; the test's own HTTP client (httpx) logs the URLs
    # it requests, which is the citizen's side, not the server's.
    server_records = [r for r in caplog.records if not r.name.startswith("httpx")]
    lines = (captured.out + captured.err).splitlines()
    logged = "\n".join(
        [logging.Formatter("%(name)s %(message)s %(args)s").format(r) for r in server_records]
        + [line for line in lines if " httpx " not in line and "httpx:" not in line]
    )
    assert any(r.name == "survey.access" for r in server_records), "no access log captured"
    for phone in [*phones, invited.phone]:
        digits = re.sub(r"\D", "", phone)[-10:]
        assert digits not in logged, phone
    for secret_text in (
        agency_key,
        admin["Authorization"].split()[1],
        invited.token,
        PASSWORD,
        session_token or "ses_",
    ):
        assert secret_text not in logged
