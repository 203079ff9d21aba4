"""The API describes itself: `/schema/openapi.json` is a valid OpenAPI 3.1 document, each
operation names who may call it (agreeing with the authorisation matrix), every body and
answer is typed, every example fits its schema, and real requests and answers of the main
endpoints are validated against the schema by openapi-core (request: path, parameters, body,
security; answer: status, media type, body)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import Any

import httpx
import jsonschema
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_spec_validator import validate as validate_spec
from werkzeug.datastructures import Headers, ImmutableMultiDict

from survey.context import AppContext
from tests.conftest import FixedClock
from tests.survey.builders import add_agency, add_plan, add_staff, transaction_record
from tests.survey.test_access_matrix import (
    AGENCY_KEY,
    COUNTS,
    EXPECTED,
    PUBLIC,
    SIGNED,
)

# Litestar writes `allowEmptyValue: false` (the default) on every parameter; openapi-core warns.
pytestmark = pytest.mark.filterwarnings("ignore:Use of allowEmptyValue:DeprecationWarning")
BODY_METHODS = ("post", "put", "patch")
WITHOUT_BODY = {  # changes whose whole request is the path
    ("post", "/api/v1/users/{username}/activate"),
    ("post", "/api/v1/users/{username}/deactivate"),
    ("post", "/api/v1/users/{username}/tokens"),
    ("post", "/api/v1/users/{username}/unlock"),
    ("post", "/api/v1/agencies/{code}/keys"),
    ("post", "/api/v1/releases/{release_id}/publish"),
}


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "head", "post", "put", "patch", "delete"):
                yield method, path, operation


def test_the_schema_is_a_valid_openapi_document(spec: dict[str, Any]) -> None:
    validate_spec(spec)  # raises, naming the first error
    assert spec["openapi"].startswith("3.1")
    assert len(list(_operations(spec))) > 40


def test_the_security_schemes_say_how_each_caller_authenticates(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["agencyKey"]["type"] == "http" and schemes["agencyKey"]["scheme"] == "bearer"
    assert schemes["staffToken"]["type"] == "http" and schemes["staffToken"]["scheme"] == "bearer"
    assert (schemes["staffSession"]["in"], schemes["staffSession"]["name"]) == (
        "cookie",
        "survey_session",
    )
    assert (schemes["webhookSignature"]["in"], schemes["webhookSignature"]["name"]) == (
        "header",
        "X-Survey-Signature",
    )
    assert all(scheme["description"] for scheme in schemes.values())


def test_each_operation_names_the_callers_the_authorisation_matrix_lets_in(
    spec: dict[str, Any], app: Litestar
) -> None:
    """The schema's security agrees with the enforced matrix (tests/survey/test_access_matrix)."""
    by_schema_path = {
        (method, route.path_format): allowed
        for route in app.routes
        for (method, template), allowed in EXPECTED.items()
        if template == route.path
    }
    wrong = []
    checked = 0
    for method, path, operation in _operations(spec):
        if not path.startswith("/api/"):
            continue
        allowed = by_schema_path.get((method.upper(), path))
        if allowed is None:  # test_access_matrix reports a route missing from its table
            continue
        checked += 1
        names = {name for requirement in operation["security"] for name in requirement}
        if allowed == PUBLIC:
            want = set()
        elif allowed == SIGNED:
            want = {"webhookSignature"}
        elif allowed == AGENCY_KEY:
            want = {"agencyKey"}
        elif allowed == COUNTS:
            want = {"agencyKey", "staffToken", "staffSession"}
        else:
            want = {"staffToken", "staffSession"}
        if names != want:
            wrong.append(f"{method} {path}: {sorted(names)}, expected {sorted(want)}")
    assert not wrong, "\n".join(wrong)
    assert checked > 40


def test_every_body_and_every_answer_is_typed(spec: dict[str, Any]) -> None:
    untyped = []
    for method, path, operation in _operations(spec):
        if not path.startswith("/api/"):
            continue
        if method in BODY_METHODS and (method, path) not in WITHOUT_BODY:
            content = operation.get("requestBody", {}).get("content", {})
            if not content or any(not media.get("schema") for media in content.values()):
                untyped.append(f"{method} {path}: no request body schema")
        for status, answer in operation["responses"].items():
            for media_type, media in (answer.get("content") or {}).items():
                schema = media.get("schema") or {}
                if schema in ({}, {"type": "object"}) or schema.get("additionalProperties") == {}:
                    untyped.append(f"{method} {path} {status} {media_type}: untyped")
        if not any(status[0] in "23" for status in operation["responses"]):
            untyped.append(f"{method} {path}: no success answer")
    assert not untyped, "\n".join(untyped)


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator of `schema` whose `#/components/...` references resolve in `spec`."""
    return jsonschema.Draft202012Validator(
        {**schema, "components": spec["components"]},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def test_every_example_fits_its_schema(spec: dict[str, Any]) -> None:
    checked = 0
    wrong = []
    for method, path, operation in _operations(spec):
        media_sets = [("request", operation.get("requestBody", {}).get("content", {}))]
        media_sets += [
            (status, a.get("content") or {}) for status, a in operation["responses"].items()
        ]
        for where, content in media_sets:
            for media_type, media in content.items():
                examples = [e["value"] for e in (media.get("examples") or {}).values()]
                examples += media.get("schema", {}).get("examples", [])
                for example in examples:
                    checked += 1
                    errors = list(_validator(spec, media["schema"]).iter_errors(example))
                    if errors:
                        wrong.append(f"{method} {path} {where} {media_type}: {errors[0].message}")
    for name, schema in spec["components"]["schemas"].items():
        for example in schema.get("examples", []):
            checked += 1
            if errors := list(_validator(spec, schema).iter_errors(example)):
                wrong.append(f"component {name}: {errors[0].message}")
    assert not wrong, "\n".join(wrong)
    assert checked >= 20


# -- real requests and answers, validated by openapi-core ------------------------------------------


@dataclass
class _Request:
    """An httpx request as openapi-core reads one."""

    sent: httpx.Request
    parameters: RequestParameters = field(init=False)

    def __post_init__(self) -> None:
        cookies = SimpleCookie(self.sent.headers.get("cookie", ""))
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(self.sent.url.params.multi_items())),
            header=Headers(list(self.sent.headers.items())),
            cookie=ImmutableMultiDict({k: v.value for k, v in cookies.items()}),
        )

    @property
    def host_url(self) -> str:
        return f"{self.sent.url.scheme}://{self.sent.url.netloc.decode()}"

    @property
    def path(self) -> str:
        return self.sent.url.path

    @property
    def method(self) -> str:
        return self.sent.method.lower()

    @property
    def body(self) -> bytes | None:
        return self.sent.read() or None  # a multipart body is a stream until read

    @property
    def content_type(self) -> str:
        return self.sent.headers.get("content-type", "").lower()


@dataclass
class _Response:
    """An httpx response as openapi-core reads one."""

    received: httpx.Response

    @property
    def status_code(self) -> int:
        return self.received.status_code

    @property
    def headers(self) -> Headers:
        return Headers(list(self.received.headers.items()))

    @property
    def content_type(self) -> str:
        return self.received.headers.get("content-type", "").lower()

    @property
    def data(self) -> bytes | None:
        return self.received.content or None


def _csv_text(value: bytes, **parameters: str) -> str:
    return value.decode("utf-8-sig")


class Contract:
    """Sends requests with the test client and validates each request and its answer against
    the app's own schema; remembers which operations were exercised."""

    def __init__(self, client: TestClient, spec: dict[str, Any]) -> None:
        self.client = client
        csv_text = {"text/csv": _csv_text}  # openapi-core leaves unknown text types as bytes
        self.openapi = OpenAPI.from_dict(
            spec, config=Config(extra_media_type_deserializers=csv_text)
        )
        self.seen: set[tuple[str, int]] = set()

    def call(
        self, method: str, url: str, *, expect: int, valid: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """`valid=False`: a request that breaks the schema on purpose (only its answer is
        checked)."""
        response = self.client.request(method, url, follow_redirects=False, **kwargs)
        assert response.status_code == expect, (method, url, response.status_code, response.text)
        request = _Request(response.request)
        if valid:
            self.openapi.validate_request(request)
        if method != "HEAD":
            self.openapi.validate_response(request, _Response(response))
        self.seen.add((f"{method} {httpx.URL(url).path}", expect))
        return response


@pytest.fixture
def contract(client: TestClient, spec: dict[str, Any]) -> Contract:
    return Contract(client, spec)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


CSV = (
    "external_id,service,channel,completed_at,phone,language,province,office\n"
    "c-1,TAX-01,in_person,2026-03-09T10:00:00+03:30,0912 111 2222,fa,tehran,Central\n"
    "c-2,TAX-02,online,2026-03-09T11:00:00+03:30,12,,,\n"
    "c-1,TAX-01,in_person,2026-03-09T10:00:00+03:30,0912 111 2222,fa,tehran,Central\n"
)


def test_agency_and_staff_calls_match_the_schema(
    contract: Contract, context: AppContext, clock: FixedClock
) -> None:
    tax = _bearer(add_agency(context, "TAX", ("TAX-01", "TAX-02")).key)
    add_agency(context, "SSO", ("SSO-01",))
    add_plan(context)
    admin = _bearer(add_staff(context, "contract-admin", "admin"))

    # Reporting: one object, a batch with a bad record, a rejected object (422), no key (401).
    one = contract.call(
        "POST", "/api/v1/transactions", json=transaction_record(1), headers=tax, expect=200
    )
    assert one.json()["accepted"] == 1
    batch = [transaction_record(2), transaction_record(3, phone="12"), transaction_record(1)]
    mixed = contract.call("POST", "/api/v1/transactions", json=batch, headers=tax, expect=200)
    assert [r["status"] for r in mixed.json()["records"]] == ["accepted", "rejected", "duplicate"]
    bad = transaction_record(4, channel="carrier pigeon")
    contract.call("POST", "/api/v1/transactions", json=bad, headers=tax, expect=422, valid=False)
    contract.call(
        "POST", "/api/v1/transactions", json=transaction_record(5), expect=401, valid=False
    )

    # A CSV file, as a multipart upload and as a text/csv body.
    uploaded = contract.call(
        "POST",
        "/api/v1/transactions/import",
        files={"file": ("march.csv", CSV.encode(), "text/csv")},
        headers=tax,
        expect=200,
    )
    assert [r["status"] for r in uploaded.json()["records"]] == [
        "accepted",
        "rejected",
        "duplicate",
    ]
    again = contract.call(
        "POST",
        "/api/v1/transactions/import",
        content=CSV.encode(),
        headers={**tax, "Content-Type": "text/csv"},
        expect=200,
    )
    assert again.json()["duplicates"] == 2

    # Frame counts: the agency's own, another agency's refused, staff any.
    contract.call("GET", "/api/v1/frame-counts?by=agency,day", headers=tax, expect=200)
    contract.call("GET", "/api/v1/frame-counts?agency=SSO", headers=tax, expect=403)
    contract.call(
        "GET", "/api/v1/frame-counts?by=plan,stratum&agency=TAX", headers=admin, expect=200
    )

    # Registry, plans, users, rates, audit: what scripts of staff call.
    contract.call("GET", "/api/v1/agencies", headers=admin, expect=200)
    contract.call(
        "POST",
        "/api/v1/agencies",
        json={"code": "POST", "name_fa": "پست", "name_en": "Post", "province": "tehran"},
        headers=admin,
        expect=201,
    )
    contract.call(
        "POST", "/api/v1/agencies", json={"code": "X"}, headers=admin, expect=422, valid=False
    )
    contract.call("GET", "/api/v1/services?agency=TAX", headers=admin, expect=200)
    contract.call(
        "POST",
        "/api/v1/services/import",
        content="agency,code,name_fa,name_en\nPOST,POST-01,مرسوله,Parcels\n".encode(),
        headers={**admin, "Content-Type": "text/csv"},
        expect=200,
    )
    contract.call("GET", "/api/v1/plans", headers=admin, expect=200)
    contract.call("GET", "/api/v1/plans/1", headers=admin, expect=200)
    contract.call("GET", "/api/v1/questionnaires", headers=admin, expect=200)
    contract.call("GET", "/api/v1/users", headers=admin, expect=200)
    contract.call(
        "POST",
        "/api/v1/users",
        json={"username": "ops", "role": "viewer", "name": "Ops"},
        headers=admin,
        expect=201,
    )
    contract.call("GET", "/api/v1/rates?period=1404-12&by=channel", headers=admin, expect=200)
    contract.call("GET", "/api/v1/audit?limit=5", headers=admin, expect=200)
    contract.call(
        "GET",
        "/api/v1/export/frame-counts?from=2026-03-01&to=2026-03-31",
        headers=admin,
        expect=200,
    )
    contract.call("GET", "/api/v1/me", headers=admin, expect=200)


def test_webhook_calls_match_the_schema(contract: Contract, context: AppContext) -> None:
    secret = context.settings.sms_webhook_secret
    for path, body in (
        ("/api/v1/sms/status", {"local_id": "nope", "status": "delivered"}),
        ("/api/v1/sms/inbound", {"from": "+989121112222", "text": "1", "message_id": "m-1"}),
    ):
        raw = json.dumps(body).encode()
        signature = hmac.new(secret, raw, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Survey-Signature": signature}
        contract.call("POST", path, content=raw, headers=headers, expect=200)
        contract.call(
            "POST",
            path,
            content=raw,
            headers={**headers, "X-Survey-Signature": "0" * 64},
            expect=401,
        )


def test_open_data_and_the_release_workflow_match_the_schema(
    contract: Contract, context: AppContext, clock: FixedClock
) -> None:
    from tests.survey.release_builders import release_world

    clock.now = datetime(2026, 5, 2, 8, 0, tzinfo=UTC)  # after the month 1405-01 has ended
    world = release_world(context)
    staff = _bearer(world.staff_key("statistician"))
    draft = contract.call(
        "POST", "/api/v1/releases", json={"period": "1405-01"}, headers=staff, expect=201
    )
    rid = draft.json()["id"]
    contract.call("GET", "/api/v1/releases/drafts", headers=staff, expect=200)
    contract.call("GET", f"/api/v1/releases/{rid}/preview", headers=staff, expect=200)
    contract.call("POST", f"/api/v1/releases/{rid}/publish", headers=staff, expect=200)
    contract.call("POST", f"/api/v1/releases/{rid}/publish", headers=staff, expect=409)
    contract.call("GET", "/api/v1/releases", expect=200)
    contract.call("GET", "/api/v1/releases/latest", expect=307)
    contract.call("GET", f"/api/v1/releases/{rid}", expect=200)
    for name in ("estimates.json", "items.csv", "codes.json", "snapshot.json"):
        contract.call("GET", f"/api/v1/releases/{rid}/{name}", expect=200)
    contract.call("GET", "/api/v1/releases/dictionary", expect=200)
    contract.call("GET", "/api/v1/releases/9999", expect=404)
    contract.call(
        "POST",
        f"/api/v1/releases/{rid}/corrections",
        json={"note": "late transactions"},
        headers=staff,
        expect=201,
    )
