"""The authorisation matrix: every route of the app x every kind of caller.

The routes are read from the app itself (`app.routes`), so a route added later is covered
at once: a route missing from `EXPECTED` fails the test until someone states who may call it.
Each caller sends a real request with its own credentials; the test checks only the access
decision: 401 without credentials, 403 for a known caller whose role may not, anything but
401/403 for one who may (a 404 or 422 for the dummy ids and empty bodies is fine).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from survey.answering.api import signature_for
from survey.context import AppContext
from tests.survey.access_builders import add_staff, https_client, sign_in
from tests.survey.admin_builders import add_tax_agency

PUBLIC = frozenset({"public"})
SIGNED = frozenset({"sms-signature"})  # SMS provider webhooks: the HMAC header, nobody else
AGENCY_KEY = frozenset({"agency-key"})  # an agency system's ingestion key
METRICS = frozenset({"metrics-token"})  # SURVEY_METRICS_TOKEN (or localhost outside production)
ADMIN = frozenset({"admin"})
WRITERS = frozenset({"admin", "statistician"})
READERS = frozenset({"admin", "statistician", "viewer"})
ALL_STAFF = frozenset({"admin", "statistician", "viewer", "agency"})
# Frame counts: staff who may, and an agency's system with its key (own agency only).
COUNTS = frozenset({"admin", "statistician", "agency", "agency-key"})

# (method, path template) -> who may call it.
EXPECTED: dict[tuple[str, str], frozenset[str]] = {
    # health, metrics, sign-in, static files, API docs
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): METRICS,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/logout"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/api/v1/me"): ALL_STAFF,
    ("GET", "/static/{name:str}"): PUBLIC,
    ("GET", "/schema"): PUBLIC,
    ("GET", "/schema/openapi.json"): PUBLIC,
    ("GET", "/schema/openapi.yaml"): PUBLIC,
    ("GET", "/schema/openapi.yml"): PUBLIC,
    ("GET", "/schema/redoc"): PUBLIC,
    ("GET", "/schema/swagger"): PUBLIC,
    ("GET", "/schema/{path:str}"): PUBLIC,
    # citizens: their own survey link (the token is the credential)
    ("GET", "/s/{token:str}"): PUBLIC,
    ("POST", "/s/{token:str}"): PUBLIC,
    ("GET", "/s/{token:str}/thanks"): PUBLIC,
    ("GET", "/s/{token:str}/opt-out"): PUBLIC,
    ("POST", "/s/{token:str}/opt-out"): PUBLIC,
    # SMS provider and agency systems
    ("POST", "/api/v1/sms/inbound"): SIGNED,
    ("POST", "/api/v1/sms/status"): SIGNED,
    ("POST", "/api/v1/transactions"): AGENCY_KEY,
    ("POST", "/api/v1/transactions/import"): AGENCY_KEY,
    # ingestion figures, rates (agency operators: their own agency only)
    ("GET", "/ingestion"): READERS,
    ("GET", "/api/v1/frame-counts"): COUNTS,
    ("GET", "/api/v1/rates"): ALL_STAFF,
    # registry
    ("GET", "/api/v1/agencies"): ALL_STAFF,
    ("POST", "/api/v1/agencies"): WRITERS,
    ("POST", "/api/v1/agencies/import"): WRITERS,
    ("POST", "/api/v1/agencies/{code:str}/keys"): WRITERS,
    ("DELETE", "/api/v1/agencies/{code:str}/keys"): WRITERS,
    ("PATCH", "/api/v1/agencies/{code:str}"): WRITERS,
    ("GET", "/api/v1/services"): ALL_STAFF,
    ("POST", "/api/v1/services"): WRITERS,
    ("POST", "/api/v1/services/import"): WRITERS,
    # users and the audit log
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users/{username:str}/password"): ADMIN,
    ("POST", "/api/v1/users/{username:str}/tokens"): ADMIN,
    ("POST", "/api/v1/users/{username:str}/deactivate"): ADMIN,
    ("POST", "/api/v1/users/{username:str}/activate"): ADMIN,
    ("POST", "/api/v1/users/{username:str}/unlock"): ADMIN,
    ("GET", "/api/v1/audit"): ADMIN,
    ("GET", "/audit"): ADMIN,
    # plans and questionnaires
    ("GET", "/api/v1/plans"): READERS,
    ("POST", "/api/v1/plans"): WRITERS,
    ("GET", "/api/v1/plans/{version:int}"): READERS,
    ("POST", "/api/v1/plans/validate"): WRITERS,
    ("POST", "/api/v1/plans/proposals"): WRITERS,
    ("POST", "/api/v1/plans/simulations"): WRITERS,
    ("GET", "/api/v1/questionnaires"): READERS,
    ("GET", "/staff/plans"): WRITERS,
    ("POST", "/staff/plans/apply"): WRITERS,
    ("POST", "/staff/plans/propose"): WRITERS,
    ("POST", "/staff/plans/simulate"): WRITERS,
    # exports and analysis (microdata: statisticians and admins)
    ("GET", "/api/v1/export/responses"): WRITERS,
    ("GET", "/api/v1/export/frame-counts"): WRITERS,
    ("GET", "/api/v1/analysis/drivers"): WRITERS,
    ("POST", "/api/v1/analysis/regress"): WRITERS,
    ("GET", "/api/v1/analysis/small-areas"): WRITERS,
    # releases: published ones are open data; drafts are for staff
    ("GET", "/api/v1/releases"): PUBLIC,
    ("POST", "/api/v1/releases"): WRITERS,
    ("GET", "/api/v1/releases/latest"): PUBLIC,
    ("GET", "/api/v1/releases/dictionary"): PUBLIC,
    ("GET", "/api/v1/releases/drafts"): ALL_STAFF,  # operators: their own rows
    ("GET", "/api/v1/releases/{release_id:int}"): PUBLIC,
    ("GET", "/api/v1/releases/{release_id:int}/{file:str}"): PUBLIC,
    ("GET", "/api/v1/releases/{release_id:int}/preview"): ALL_STAFF,  # operators: their own rows
    ("POST", "/api/v1/releases/{release_id:int}/publish"): WRITERS,
    ("POST", "/api/v1/releases/{release_id:int}/corrections"): WRITERS,
    # open data answers HEAD like GET, without a body (survey.http.conditional)
    ("HEAD", "/api/v1/releases"): PUBLIC,
    ("HEAD", "/api/v1/releases/latest"): PUBLIC,
    ("HEAD", "/api/v1/releases/dictionary"): PUBLIC,
    ("HEAD", "/api/v1/releases/{release_id:int}"): PUBLIC,
    ("HEAD", "/api/v1/releases/{release_id:int}/{file:str}"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/methodology"): PUBLIC,
    ("GET", "/agencies/{code:str}"): PUBLIC,
    ("GET", "/provinces/{code:str}"): PUBLIC,
    ("GET", "/releases/{release_id:str}"): PUBLIC,
    ("GET", "/releases/{release_id:str}/agencies/{code:str}"): PUBLIC,
    ("GET", "/releases/{release_id:str}/provinces/{code:str}"): PUBLIC,
    ("GET", "/releases/{release_id:str}/methodology"): PUBLIC,
    ("GET", "/releases/{release_id:str}/methodology/technical"): PUBLIC,
    ("GET", "/releases/{release_id:str}/report"): PUBLIC,
    ("GET", "/releases/{release_id:str}/report.pdf"): PUBLIC,
    ("GET", "/releases/{release_id:str}/charts/{name:str}"): PUBLIC,
    ("GET", "/releases/{release_id:str}/preview"): READERS,
}

# Values for path parameters (any value works: access is decided before the lookup).
PARAMS = {
    "token": "abcdefghijklmnopqrstuvwx",
    "file_path": "login.css",
    "code": "GHOST",  # not TAX: an admin's DELETE .../keys would revoke the caller's key
    "username": "nobody",
    "file": "estimates.csv",
    "name": "index.png",
    "path": "openapi.json",
}
CALLERS = (
    "admin",
    "statistician",
    "agency",
    "other-agency",
    "viewer",
    "agency-key",
    "anonymous",
)


@dataclass(frozen=True)
class Route:
    method: str
    template: str

    def url(self) -> str:
        def fill(match: re.Match[str]) -> str:
            name, kind = match.group(1), match.group(2)
            if kind == "int":
                return "1"
            return PARAMS.get(name, "1" if name.endswith("_id") else "x")

        return re.sub(r"\{(\w+):(\w+)\}", fill, self.template)


def app_routes(app: Litestar) -> list[Route]:
    """Every (method, path) the app serves, OPTIONS (CORS preflight) aside."""
    found = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in getattr(handler, "http_methods", ()):
                if method != "OPTIONS":
                    found.add(Route(method, route.path))
    return sorted(found, key=lambda r: (r.template, r.method))


@pytest.fixture
def callers(context: AppContext) -> dict[str, dict[str, str]]:
    """Headers per caller: staff bearer tokens of each role, an agency key, nobody."""
    key = add_tax_agency(context)
    from survey.kernel.db import transaction
    from survey.kernel.principal import CLI_PRINCIPAL
    from survey.registry import agencies as registry

    with transaction(context.sessions) as session:
        registry.add_agency(session, CLI_PRINCIPAL, code="SSO", name_fa="تأمین", name_en="SSO")
    return {
        "admin": add_staff(context, "m-admin", "admin"),
        "statistician": add_staff(context, "m-stat", "statistician"),
        "agency": add_staff(context, "m-tax", "agency", agency="TAX"),
        "other-agency": add_staff(context, "m-sso", "agency", agency="SSO"),
        "viewer": add_staff(context, "m-viewer", "viewer"),
        "agency-key": {"Authorization": f"Bearer {key}"},
        "anonymous": {},
    }


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient]:
    with https_client(app) as test_client:
        yield test_client


def _role(caller: str) -> str:
    return "agency" if caller == "other-agency" else caller


ACCESS_ERRORS = ("this needs one of the roles", "this needs an agency's API key", "metrics")


def _decision(status: int, body: str) -> str:
    """What the response says about access. Only a 403 whose JSON error is an access rule
    counts as forbidden: a public form's stale CSRF field is a 403 too, but not a denial."""
    if status == 401:
        return "unauthenticated"
    if status == 403 and body.startswith("{") and any(e in body for e in ACCESS_ERRORS):
        return "forbidden"
    return "allowed"


def test_every_route_is_in_the_expected_table(app: Litestar) -> None:
    missing = [r for r in app_routes(app) if (r.method, r.template) not in EXPECTED]
    assert not missing, "routes with no entry in EXPECTED (state who may call them): " + ", ".join(
        f"{r.method} {r.template}" for r in missing
    )


def test_every_route_x_every_caller(
    app: Litestar, client: TestClient, callers: dict[str, dict[str, str]]
) -> None:
    wrong: list[str] = []
    for route in app_routes(app):
        allowed = EXPECTED.get((route.method, route.template))
        if allowed is None:
            continue  # reported by test_every_route_is_in_the_expected_table
        for caller in CALLERS:
            client.cookies.clear()
            response = client.request(
                route.method, route.url(), headers=callers[caller], follow_redirects=False
            )
            got = _decision(response.status_code, response.text)
            if allowed == PUBLIC:
                want = "allowed"
            elif allowed in (SIGNED, METRICS):
                want = "unauthenticated" if got == "unauthenticated" else "forbidden"
            elif _role(caller) in allowed:
                want = "allowed"
            elif caller == "anonymous":
                want = "unauthenticated"
            else:
                want = "forbidden"
            if got != want:
                wrong.append(
                    f"{route.method} {route.template} as {caller}: {response.status_code} "
                    f"({got}), expected {want}"
                )
    assert not wrong, "\n".join(wrong)


def test_webhooks_need_the_signature_and_nothing_else(
    client: TestClient, callers: dict[str, dict[str, str]], context: AppContext
) -> None:
    secret = context.settings.sms_webhook_secret
    body = b'{"local_id": "nope", "status": "delivered"}'
    for caller in CALLERS:
        response = client.post("/api/v1/sms/status", content=body, headers=callers[caller])
        assert response.status_code == 401, caller
    signed = client.post(
        "/api/v1/sms/status",
        content=body,
        headers={"X-Survey-Signature": signature_for(secret, body)},
    )
    assert signed.status_code == 200 and signed.json() == {"known": False}


def test_a_browser_session_has_the_same_rights_as_a_token(
    app: Litestar, client: TestClient, callers: dict[str, dict[str, str]]
) -> None:
    """A viewer signed in on /login reaches exactly the GET routes a viewer's token does,
    and every change with the cookie alone (no CSRF token) is refused."""
    assert sign_in(client, "m-viewer").status_code == 303
    with https_client(app) as bearer:
        for route in app_routes(app):
            if (route.method, route.template) not in EXPECTED or route.template.startswith(
                ("/login", "/logout", "/s/", "/metrics")
            ):
                continue
            by_cookie = client.request(route.method, route.url(), follow_redirects=False)
            by_token = bearer.request(
                route.method, route.url(), headers=callers["viewer"], follow_redirects=False
            )
            if route.method in ("GET", "HEAD"):
                assert _decision(by_cookie.status_code, by_cookie.text) == _decision(
                    by_token.status_code, by_token.text
                ), route
            elif EXPECTED[(route.method, route.template)] not in (PUBLIC, SIGNED, AGENCY_KEY):
                assert by_cookie.status_code == 403, route


def test_agency_operators_see_only_their_own_agency(
    client: TestClient, callers: dict[str, dict[str, str]], context: AppContext
) -> None:
    from survey.ingestion.ingest import ingest_transactions
    from survey.kernel.db import transaction
    from survey.kernel.principal import CLI_PRINCIPAL
    from survey.sampling import plans
    from tests.survey.admin_builders import EXAMPLE_PLAN

    with transaction(context.sessions) as session:
        plans.apply_plan(session, CLI_PRINCIPAL, EXAMPLE_PLAN, file="example.yaml")
    records = [
        {
            "external_id": f"t{i}",
            "service": "TAX-01",
            "channel": "in_person",
            "completed_at": "2026-03-09T10:00:00+03:30",
            "phone": f"0912{i:07d}",
        }
        for i in range(6)
    ]
    assert ingest_transactions(context, "TAX", records).accepted == 6
    query = "/api/v1/frame-counts?by=agency"
    own = client.get(query, headers=callers["agency"]).json()["rows"]
    other = client.get(query, headers=callers["other-agency"]).json()["rows"]
    everyone = client.get(query, headers=callers["statistician"]).json()["rows"]
    assert [(r["agency"], r["reported"]) for r in own] == [("TAX", 6)]
    assert other == []
    assert [(r["agency"], r["reported"]) for r in everyone] == [("TAX", 6)]
    agencies = client.get("/api/v1/agencies", headers=callers["other-agency"]).json()
    assert [a["code"] for a in agencies["agencies"]] == ["SSO"]
    services = client.get("/api/v1/services?agency=TAX", headers=callers["other-agency"])
    assert services.status_code in (200, 403, 404)
    assert "TAX-01" not in services.text
    rates = client.get("/api/v1/rates?period=1404-12", headers=callers["other-agency"])
    assert rates.status_code == 200 and "TAX" not in rates.text


def test_agency_operators_preview_only_their_own_unpublished_results(
    context: AppContext, client: TestClient, clock
) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from tests.survey.release_builders import release_world

    clock.now = datetime(2026, 5, 2, 8, 0, tzinfo=UTC)  # after the month 1405-01 has ended
    world = release_world(context)  # agencies TAX and EDU, answered
    statistician = {"Authorization": f"Bearer {world.staff_key('statistician')}"}
    operator = {"Authorization": f"Bearer {world.staff_key('agency', agency='TAX')}"}
    created = client.post("/api/v1/releases", json={"period": "1405-01"}, headers=statistician)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    everything = client.get(f"/api/v1/releases/{rid}/preview", headers=statistician).json()
    own = client.get(f"/api/v1/releases/{rid}/preview", headers=operator).json()
    assert {r["agency"] for r in everything["estimates"]} >= {"", "TAX", "EDU"}
    assert own["estimates"] and {r["agency"] for r in own["estimates"]} == {"TAX"}
    assert len(own["estimates"]) == sum(1 for r in everything["estimates"] if r["agency"] == "TAX")
    drafts = client.get("/api/v1/releases/drafts", headers=operator).json()
    assert [r["id"] for r in drafts["releases"]] == [rid]
    assert client.post(f"/api/v1/releases/{rid}/publish", headers=operator).status_code == 403
