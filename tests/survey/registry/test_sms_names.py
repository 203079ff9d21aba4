"""Agencies' short SMS names: set over HTTP, on the console and by CSV import, limited in
length with an error naming the field, audited, and used by the invitations sent."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from survey.config import Settings
from survey.context import AppContext
from survey.models import Agency, AuditLog
from tests.survey.admin_builders import add_tax_agency, run, staff_token, use_test_database, write

LONG_FA = "مرکز خدمات الکترونیک قضایی قوه قضاییه"  # 37 characters


def _agency(context: AppContext, code: str = "TAX") -> Agency:
    with context.sessions() as session:
        agency = session.scalar(sa.select(Agency).where(Agency.code == code))
    assert agency is not None
    return agency


def test_staff_set_and_clear_sms_names_over_http(client: TestClient, context: AppContext) -> None:
    add_tax_agency(context)
    headers = staff_token(context, "admin")
    response = client.patch(
        "/api/v1/agencies/TAX",
        json={"sms_name_fa": " امور  مالیاتی ", "sms_name_en": "Tax Administration"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["sms_name_fa"], body["sms_name_en"]) == ("امور مالیاتی", "Tax Administration")
    listed = client.get("/api/v1/agencies", headers=headers).json()["agencies"]
    assert [a["sms_name_fa"] for a in listed if a["code"] == "TAX"] == ["امور مالیاتی"]
    # A language left out stays; null goes back to the full name.
    response = client.patch("/api/v1/agencies/TAX", json={"sms_name_en": None}, headers=headers)
    assert response.status_code == 200
    agency = _agency(context)
    assert (agency.sms_name_fa, agency.sms_name_en) == ("امور مالیاتی", None)
    with context.sessions() as session:
        audit = session.scalars(
            sa.select(AuditLog).where(AuditLog.action == "agency.sms_name").order_by(AuditLog.id)
        ).all()
    assert [row.after for row in audit] == [
        {"sms_name_fa": "امور مالیاتی", "sms_name_en": "Tax Administration"},
        {"sms_name_en": None},
    ]
    assert audit[1].before == {"sms_name_en": "Tax Administration"}


def test_bad_sms_names_are_a_422_naming_each_field(client: TestClient, context: AppContext) -> None:
    add_tax_agency(context)
    headers = staff_token(context, "admin")
    response = client.patch(
        "/api/v1/agencies/TAX",
        json={"sms_name_fa": LONG_FA, "sms_name_en": "مالیات"},
        headers=headers,
    )
    assert response.status_code == 422
    problems = {p["field"]: p["message"] for p in response.json()["problems"]}
    assert "must be at most 20 characters" in problems["sms_name_fa"]
    assert "got 37" in problems["sms_name_fa"]
    assert "GSM-7" in problems["sms_name_en"]
    response = client.patch(
        "/api/v1/agencies/TAX", json={"sms_name_fa": "ثبت\nاحوال"}, headers=headers
    )
    assert response.status_code == 422 and "control character" in response.text
    response = client.patch("/api/v1/agencies/TAX", json={"name_fa": "x"}, headers=headers)
    assert response.status_code == 422 and "name_fa" in response.text
    response = client.patch("/api/v1/agencies/NOPE", json={"sms_name_fa": "x"}, headers=headers)
    assert response.status_code == 404
    assert _agency(context).sms_name_fa is None  # nothing was stored
    viewer = staff_token(context, "viewer")
    response = client.patch("/api/v1/agencies/TAX", json={"sms_name_fa": "x"}, headers=viewer)
    assert response.status_code == 403


def test_a_new_agency_may_come_with_its_sms_names(client: TestClient, context: AppContext) -> None:
    headers = staff_token(context, "statistician")
    agency = {
        "code": "SSO",
        "name_fa": "سازمان تأمین اجتماعی",
        "name_en": "Social Security Organization",
        "sms_name_fa": "تأمین اجتماعی",
        "sms_name_en": "Social Security",
    }
    response = client.post("/api/v1/agencies", json=agency, headers=headers)
    assert response.status_code == 201
    assert response.json()["agency"]["sms_name_en"] == "Social Security"
    response = client.post(
        "/api/v1/agencies", json={**agency, "code": "SSO2", "sms_name_fa": LONG_FA}, headers=headers
    )
    assert response.status_code == 422
    assert [p["field"] for p in response.json()["problems"]] == ["sms_name_fa"]


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch, migrated_settings: Settings) -> None:
    use_test_database(monkeypatch, migrated_settings)


@pytest.mark.usefixtures("console")
def test_the_console_sets_lists_and_refuses_sms_names(
    capsys: pytest.CaptureFixture[str], context: AppContext, tmp_path: Path
) -> None:
    add_tax_agency(context)
    code, out, _ = run(capsys, "agencies", "sms-name", "TAX", "--fa", "امور مالیاتی")
    assert code == 0
    assert "fa SMS name امور مالیاتی" in out and "en SMS name none" in out
    code, out, _ = run(capsys, "agencies", "list")
    assert "امور مالیاتی" in out and "sms_name_fa" in out
    code, out, err = run(capsys, "agencies", "sms-name", "TAX", "--fa", LONG_FA)
    assert code != 0
    assert "sms_name_fa" in out + err and "at most 20 characters" in out + err
    code, out, err = run(capsys, "agencies", "sms-name", "TAX")
    assert code == 2 and "give --fa NAME" in err
    code, _, _ = run(capsys, "agencies", "sms-name", "TAX", "--fa", "")
    assert code == 0 and _agency(context).sms_name_fa is None
    # A CSV import may carry SMS names; a bad one is that row's error only.
    path = write(
        tmp_path / "agencies.csv",
        "code,name_fa,name_en,sms_name_fa,sms_name_en\n"
        "SSO,سازمان تأمین اجتماعی,Social Security Organization,تأمین اجتماعی,Social Security\n"
        f"JUD,{LONG_FA},Judiciary Electronic Services Centre,{LONG_FA},Judiciary\n",
    )
    code, out, _ = run(capsys, "agencies", "import", str(path))
    assert code == 1
    assert "row 3, sms_name_fa: must be at most 20 characters" in out
    assert _agency(context, "SSO").sms_name_en == "Social Security"
