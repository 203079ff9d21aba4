"""The staff HTTP API for agencies, services, users and the audit log, through the real app."""

from __future__ import annotations

import sqlalchemy as sa
from litestar.testing import TestClient

from survey.context import AppContext
from survey.kernel.credentials import key_hash
from survey.models import ApiKey, AuditLog
from tests.survey.admin_builders import add_tax_agency, staff_token

AGENCY = {
    "code": "SSO",
    "name_fa": "سازمان تأمین اجتماعی",
    "name_en": "Social Security Organization",
    "province": "tehran",
}


def test_every_route_needs_a_staff_token(client: TestClient, context: AppContext) -> None:
    agency_key = add_tax_agency(context)
    for method, path in [
        ("GET", "/api/v1/agencies"),
        ("POST", "/api/v1/agencies"),
        ("GET", "/api/v1/services"),
        ("POST", "/api/v1/services/import"),
        ("GET", "/api/v1/audit"),
    ]:
        response = client.request(method, path)
        assert response.status_code == 401, path
        assert "Authorization" in response.json()["error"]
        response = client.request(method, path, headers={"Authorization": f"Bearer {agency_key}"})
        assert response.status_code == 403, path


def test_writes_need_admin_or_statistician(client: TestClient, context: AppContext) -> None:
    viewer = staff_token(context, "viewer")
    response = client.post("/api/v1/agencies", json=AGENCY, headers=viewer)
    assert response.status_code == 403
    assert "admin, statistician" in response.json()["error"]
    assert client.get("/api/v1/agencies", headers=viewer).status_code == 200
    assert client.get("/api/v1/audit", headers=viewer).status_code == 403


def test_add_an_agency_returns_its_key_once(client: TestClient, context: AppContext) -> None:
    headers = staff_token(context, "statistician")
    response = client.post("/api/v1/agencies", json=AGENCY, headers=headers)
    assert response.status_code == 201
    body = response.json()
    assert body["agency"]["code"] == "SSO" and body["agency"]["active_keys"] == 1
    key = body["api_key"]
    assert key.startswith("agk_")
    listing = client.get("/api/v1/agencies", headers=headers)
    assert key not in listing.text
    with context.sessions() as session:
        agency_keys = session.scalars(
            sa.select(ApiKey.key_hash).where(ApiKey.agency_id.is_not(None))
        )
        assert key_hash(key) in set(agency_keys)
    assert context.keys.resolve(f"Bearer {key}").agency_code == "SSO"


def test_duplicate_code_is_409_and_bad_input_422_with_every_problem(
    client: TestClient, context: AppContext
) -> None:
    headers = staff_token(context, "admin")
    assert client.post("/api/v1/agencies", json=AGENCY, headers=headers).status_code == 201
    response = client.post("/api/v1/agencies", json=AGENCY, headers=headers)
    assert response.status_code == 409
    assert response.json() == {"error": "an agency with code 'SSO' already exists"}
    bad = {"code": "sso 2", "name_fa": "", "name_en": "x", "province": "nowhere", "parent": "NONE"}
    response = client.post("/api/v1/agencies", json=bad, headers=headers)
    assert response.status_code == 422
    fields = {p["field"] for p in response.json()["problems"]}
    assert fields == {"code", "name_fa", "province", "parent"}
    response = client.post("/api/v1/agencies", json={"code": 5}, headers=headers)
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "code"
    response = client.post("/api/v1/agencies", json={**AGENCY, "colour": "blue"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["problems"] == [
        {"field": "colour", "message": "Object contains unknown field `colour`"}
    ]
    response = client.post(
        "/api/v1/agencies",
        content=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422 and "not valid JSON" in response.json()["error"]


def test_services_and_csv_imports_report_per_row(client: TestClient, context: AppContext) -> None:
    headers = staff_token(context, "admin")
    client.post("/api/v1/agencies", json=AGENCY, headers=headers)
    response = client.post(
        "/api/v1/services",
        json={
            "agency": "SSO",
            "code": "SSO-01",
            "name_fa": "صدور سابقه بیمه",
            "name_en": "Insurance record",
        },
        headers=headers,
    )
    assert response.status_code == 201 and response.json()["service"]["agency"] == "SSO"
    csv_body = (
        "agency,code,name_fa,name_en\n"
        "SSO,SSO-02,برقراری مستمری,Pension claim\n"
        "SSO,bad code,نام,Name\n"
        "NOPE,X-01,نام,Name\n"
    ).encode()
    response = client.post(
        "/api/v1/services/import", content=csv_body, headers={**headers, "Content-Type": "text/csv"}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["added"], body["unchanged"], body["failed"]) == (1, 0, 2)
    assert [r["status"] for r in body["rows"]] == ["added", "error", "error"]
    assert body["rows"][1]["problems"][0] == {
        "row": 3,
        "field": "code",
        "message": body["rows"][1]["problems"][0]["message"],
    }
    assert body["rows"][2]["problems"][0]["message"] == "no agency with code 'NOPE'"
    codes = [
        s["code"]
        for s in client.get("/api/v1/services?agency=SSO", headers=headers).json()["services"]
    ]
    assert codes == ["SSO-01", "SSO-02"]
    response = client.post(
        "/api/v1/agencies/import",
        content="code,name_fa,name_en\nMUN-MSH,شهرداری مشهد,Mashhad Municipality\n".encode(),
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert response.json()["added"] == 1


def test_an_agency_user_sees_only_its_agency(client: TestClient, context: AppContext) -> None:
    add_tax_agency(context)
    admin = staff_token(context, "admin")
    client.post("/api/v1/agencies", json=AGENCY, headers=admin)
    operator = staff_token(context, "agency", username="tax-operator", agency="TAX")
    agencies = client.get("/api/v1/agencies", headers=operator).json()["agencies"]
    assert [a["code"] for a in agencies] == ["TAX"]
    services = client.get("/api/v1/services", headers=operator).json()["services"]
    assert {s["agency"] for s in services} == {"TAX"}
    assert client.post("/api/v1/agencies", json=AGENCY, headers=operator).status_code == 403


def test_key_rotation_and_revocation_over_http(client: TestClient, context: AppContext) -> None:
    old = add_tax_agency(context)
    admin = staff_token(context, "admin")
    response = client.post("/api/v1/agencies/TAX/keys", headers=admin)
    assert response.status_code == 201
    new = response.json()["api_key"]
    tx = {"external_id": "1", "service": "TAX-01", "channel": "online",
          "completed_at": "2026-03-10T08:00:00+03:30", "phone": "09121234567"}  # fmt: skip
    assert (
        client.post(
            "/api/v1/transactions", json=tx, headers={"Authorization": f"Bearer {old}"}
        ).status_code
        == 401
    )
    response = client.delete("/api/v1/agencies/TAX/keys", headers=admin)
    assert response.status_code == 200 and response.json() == {"agency": "TAX", "revoked": 1}
    assert (
        client.post(
            "/api/v1/transactions", json=tx, headers={"Authorization": f"Bearer {new}"}
        ).status_code
        == 401
    )
    assert client.post("/api/v1/agencies/NOPE/keys", headers=admin).status_code == 404


def test_users_and_audit_for_admins(client: TestClient, context: AppContext) -> None:
    admin = staff_token(context, "admin", username="root")
    response = client.post(
        "/api/v1/users", json={"username": "mina", "role": "viewer", "name": "Mina"}, headers=admin
    )
    assert response.status_code == 201
    token = response.json()["token"]
    assert (
        client.get("/api/v1/agencies", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    response = client.post(
        "/api/v1/users", json={"username": "mina", "role": "viewer"}, headers=admin
    )
    assert response.status_code == 409
    response = client.post("/api/v1/users", json={"username": "x", "role": "boss"}, headers=admin)
    assert response.status_code == 422
    assert {p["field"] for p in response.json()["problems"]} == {"username", "role"}
    entries = client.get("/api/v1/audit?limit=5", headers=admin).json()["entries"]
    assert entries[0]["action"] == "user.token.issue" and entries[0]["actor"] == "staff:root"
    assert entries[1]["action"] == "user.add" and entries[1]["after"]["role"] == "viewer"
    with context.sessions() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditLog)) == 4


def test_an_unreadable_csv_import_is_a_422_naming_the_line(
    client: TestClient, context: AppContext
) -> None:
    """A field past the csv module's limit was a 500."""
    body = "code,name_fa,name_en\nOK1,الف,A\nBIG," + "x" * 200_000 + ",B\n"
    response = client.post(
        "/api/v1/agencies/import",
        content=body.encode(),
        headers={**staff_token(context, "admin"), "Content-Type": "text/csv"},
    )
    assert response.status_code == 422, response.text[:300]
    assert "cannot be read at line" in response.json()["error"]


def test_a_control_character_in_a_name_is_a_422_on_every_database(
    client: TestClient, context: AppContext
) -> None:
    response = client.post(
        "/api/v1/agencies",
        json={"code": "NUL", "name_fa": "سازمان\x00", "name_en": "Agency"},
        headers=staff_token(context, "admin"),
    )
    assert response.status_code == 422, response.text[:300]
    assert response.json()["problems"][0]["field"] == "name_fa"
    assert "control character" in response.json()["problems"][0]["message"]
