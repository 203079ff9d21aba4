"""The statisticians' sample-design page: propose, simulate and apply through real forms."""

from __future__ import annotations

import html
import re

import sqlalchemy as sa
from litestar import Litestar
from litestar.testing import TestClient

from survey.context import AppContext
from survey.models import AuditLog
from tests.survey.access_builders import add_staff, https_client, sign_in
from tests.survey.answer_builders import AnswerWorld
from tests.survey.results.test_plan_proposals import _history as history


def _bearer(world: AnswerWorld, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.staff_key(role)}"}


def _field(page: str, name: str) -> str:
    """The value of a form control (hidden input or textarea) on the page."""
    match = re.search(rf'name="{name}"[^>]*? value="([^"]*)"', page) or re.search(
        rf'<textarea name="{name}"[^>]*>(.*?)</textarea>', page, re.S
    )
    assert match, f"no field {name}"
    return html.unescape(match.group(1))


def _rows(page: str, table: str) -> dict[str, str]:
    """Each row of a table on the page, by its data-domain, as text without tags."""
    body = page.split(f'<table class="{table}">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr[^>]*data-domain="([^"]+)"[^>]*>(.*?)</tr>', body, re.S)
    return {key: " ".join(re.sub(r"<[^>]+>", " ", row).split()) for key, row in rows}


def test_propose_simulate_and_apply_on_the_page(client: TestClient, context: AppContext) -> None:
    world = history(context)
    headers = _bearer(world, "statistician")
    first = client.get("/staff/plans", headers=headers)
    assert first.status_code == 200
    page = first.text
    assert '<html lang="fa" dir="rtl">' in page and "<script" not in page
    assert "script-src" not in first.headers["content-security-policy"]
    assert "default-src 'none'" in first.headers["content-security-policy"]
    assert "test plan" in page  # the plan version in force is listed
    assert "; Secure" in first.headers["set-cookie"]  # the base URL is https
    token = _field(page, "_csrf_token")

    form = {
        "_csrf_token": token,
        "period": "۱۴۰۵-Q1",  # Persian digits are fine
        "target_moe": "5",
        "by": "agency",
        "cost_per_part": "1.5",
    }
    proposed = client.post("/staff/plans/propose?lang=en", data=form, headers=headers)
    assert proposed.status_code == 200, proposed.text
    page = proposed.text
    assert '<html lang="en" dir="ltr">' in page
    # the period by name and in both calendars
    assert 'Proposal for <strong>spring 1405</strong> (<bdi dir="ltr">1405-Q1</bdi>)' in page
    assert '1 Farvardin 1405 (<bdi dir="ltr">2026-03-21</bdi>)' in page
    rows = _rows(page, "summary")
    assert rows["agency:TAX"].startswith("Agency TAX (agency)")
    assert rows["agency:TAX"].endswith("5.00 95% publishable")
    assert "national" in rows["all:all"] and "publishable" not in rows["all:all"]
    assert "SMS parts" in page and "Cost" in page
    assert "Response rates from: " in page and "assumed" in page
    plan_yaml = _field(page, "plan_yaml")
    design_yaml = _field(page, "design_yaml")
    assert plan_yaml.startswith("# Sampling-plan proposal for 1405-Q1")
    assert "proposal:" in design_yaml

    # the same proposal in Persian: Persian digits and words, Solar Hijri dates first
    persian = client.post("/staff/plans/propose", data=form, headers=headers).text
    assert "قابل انتشار" in persian and "۱ فروردین ۱۴۰۵" in persian

    # staff edit the plan (halve TAX's rates) and simulate it
    edited = re.sub(
        r"(agency: TAX, .*rate: )([0-9.]+)",
        lambda m: f"{m.group(1)}{float(m.group(2)) / 2:.6f}",
        plan_yaml,
    )
    assert edited != plan_yaml
    check = {
        "_csrf_token": token,
        "plan_yaml": edited,
        "design_yaml": design_yaml,
        "periods": "80",
        "seed": "3",
    }
    simulated = client.post("/staff/plans/simulate?lang=en", data=check, headers=headers)
    assert simulated.status_code == 200, simulated.text
    assert "80 simulated periods, seed 3" in simulated.text
    sim = _rows(simulated.text, "simulation")
    assert sim["agency:TAX"].startswith("Agency TAX (agency)")
    assert _field(simulated.text, "plan_yaml") == edited  # the edit is kept for the next step

    applied = client.post(
        "/staff/plans/apply?lang=en", data=check, headers=headers, follow_redirects=False
    )
    assert applied.status_code == 303
    assert applied.headers["location"] == "/staff/plans?lang=en&applied=2"
    after = client.get(applied.headers["location"], headers=headers).text
    assert "The plan is active as a new version: version 2" in after
    assert "proposal 1405-Q1" in after
    entries = client.get("/api/v1/audit?limit=5", headers=_bearer(world, "admin")).json()
    actions = [(e["action"], e["actor"].split("-")[0]) for e in entries["entries"]]
    assert ("plan.apply", "staff:statistician") in actions
    assert ("plan.propose", "staff:statistician") in actions


def test_forms_need_the_csrf_field_and_the_right_role(
    client: TestClient, context: AppContext
) -> None:
    world = history(context)
    headers = _bearer(world, "statistician")
    form = {"period": "1405-Q1", "target_moe": "5"}
    refused = client.post("/staff/plans/propose?lang=en", data=form, headers=headers)
    assert refused.status_code == 403 and "The form has expired" in refused.text
    token = _field(client.get("/staff/plans", headers=headers).text, "_csrf_token")
    forged = {**form, "_csrf_token": token[:-2] + "00"}
    assert client.post("/staff/plans/propose", data=forged, headers=headers).status_code == 403
    assert client.get("/staff/plans").status_code == 401
    assert client.get("/staff/plans", headers=_bearer(world, "viewer")).status_code == 403


def test_bad_parameters_come_back_on_the_form_with_their_fields(
    client: TestClient, context: AppContext
) -> None:
    world = history(context)
    headers = _bearer(world, "admin")
    token = _field(client.get("/staff/plans", headers=headers).text, "_csrf_token")
    form = {"_csrf_token": token, "period": "1405-Q9", "target_moe": "abc", "by": "agency"}
    response = client.post("/staff/plans/propose?lang=en", data=form, headers=headers)
    assert response.status_code == 422
    text = " ".join(re.sub(r"<[^>]+>", " ", html.unescape(response.text)).split())
    assert "period : expected 1405 (year)" in text
    assert "margin of error : expected a number, got 'abc'" in text
    assert _field(response.text, "period") == "1405-Q9"  # what was typed is kept
    bad_plan = {"_csrf_token": token, "plan_yaml": "name: x\n", "design_yaml": "", "starts": ""}
    response = client.post("/staff/plans/apply?lang=en", data=bad_plan, headers=headers)
    assert response.status_code == 422 and "the sampling plan has" in response.text


def test_a_signed_in_statistician_uses_the_page_with_the_session_cookie(
    app: Litestar, context: AppContext
) -> None:
    history(context)
    add_staff(context, "sara", "statistician")
    with https_client(app) as browser:
        assert sign_in(browser, "sara").status_code == 303
        page = browser.get("/staff/plans?lang=en")
        assert page.status_code == 200
        token = _field(page.text, "_csrf_token")
        assert token == browser.get("/api/v1/me").json()["csrf_token"]  # the session's token
        form = {"_csrf_token": token, "period": "1405-Q1", "target_moe": "5", "by": "agency"}
        proposed = browser.post("/staff/plans/propose?lang=en", data=form)
        assert proposed.status_code == 200, proposed.text
        assert "publishable" in _rows(proposed.text, "summary")["agency:TAX"]
        stale = browser.post("/staff/plans/propose", data={**form, "_csrf_token": "0" * 64})
        assert stale.status_code == 403
    with context.read_sessions() as session:
        actor = session.scalar(sa.select(AuditLog.actor).where(AuditLog.action == "plan.propose"))
    assert actor == "staff:sara"
