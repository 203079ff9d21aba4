"""Rate limits (429 with Retry-After) on the public endpoints and request size limits (413)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator

from litestar import Litestar
from litestar.testing import TestClient

from survey.answering.api import signature_for
from survey.app import create_app
from survey.config import Settings
from survey.context import AppContext
from survey.http.security import Limiter
from survey.kernel.limits import Bucket
from tests.survey.access_builders import PASSWORD, add_staff, https_client, sign_in


def test_sign_in_attempts_are_limited_per_client(app: Litestar, context: AppContext) -> None:
    add_staff(context, "sara", "admin")
    with https_client(app) as client:
        statuses: list[int] = []
        started = time.monotonic()
        while len(statuses) < 40 and (not statuses or statuses[-1] != 429):
            statuses.append(sign_in(client, "sara", password=f"guess {len(statuses)}").status_code)
        elapsed = time.monotonic() - started
        # A burst of 10, plus one more for every 6 s the attempts took, then 429.
        assert statuses[-1] == 429, statuses
        assert 11 <= len(statuses) <= 11 + math.ceil(elapsed / 6), (statuses, elapsed)
        assert set(statuses[:-1]) == {401}
        refused = sign_in(client, "sara", password=PASSWORD)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) in range(1, 7)  # one attempt per 6 s
        assert "retry after" in refused.json()["error"]
        assert "survey_session" not in client.cookies
        assert client.get("/login").status_code == 200  # the form itself is not limited
        page = client.post("/login", data={"username": "sara"}, headers={"Accept": "text/html"})
        assert page.status_code == 429 and page.headers["content-type"].startswith("text/html")
        assert "Too many attempts" in page.text and "<script" not in page.text


def test_badly_signed_webhooks_are_slowed_and_signed_ones_always_get_through(
    client: TestClient, context: AppContext
) -> None:
    body = json.dumps({"local_id": "x", "status": "delivered"}).encode()
    good = {"X-Survey-Signature": signature_for(context.settings.sms_webhook_secret, body)}
    assert client.post("/api/v1/sms/status", content=body, headers=good).status_code == 200
    for _ in range(20):
        bad = client.post("/api/v1/sms/status", content=body, headers={"X-Survey-Signature": "0"})
        assert bad.status_code == 401
    limited = client.post("/api/v1/sms/status", content=body, headers={"X-Survey-Signature": "0"})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 30
    # The provider's correctly signed calls from the same address are never refused.
    for _ in range(30):
        assert client.post("/api/v1/sms/status", content=body, headers=good).status_code == 200


def test_answering_links_that_miss_get_429_with_retry_after(client: TestClient) -> None:
    statuses = [client.get(f"/s/nosuchtoken{i:04d}").status_code for i in range(25)]
    assert statuses[0] == 404 and statuses[-1] == 429
    limited = client.get("/s/nosuchtoken9999")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "30"
    assert limited.headers["referrer-policy"] == "no-referrer"


def test_the_limiter_refills_over_time() -> None:
    now = [100.0]
    limiter = Limiter(monotonic=lambda: now[0])
    bucket = Bucket(burst=2, per_second=0.5)
    key = ("login", "10.0.0.1")
    assert limiter.take(key, bucket) == 0 and limiter.take(key, bucket) == 0
    assert limiter.take(key, bucket) == 2.0  # empty: one token comes back in 2 s
    assert limiter.take(("login", "10.0.0.2"), bucket) == 0  # other clients are not affected
    now[0] += 2.0
    assert limiter.take(key, bucket) == 0
    assert limiter.wait(key, bucket) == 2.0


def _small_app(settings: Settings, context: AppContext, max_bytes: int) -> Iterator[TestClient]:
    app = create_app(settings.with_overrides(max_request_bytes=max_bytes), context=context)
    with TestClient(app) as client:
        yield client


def test_bodies_over_the_limit_are_refused_with_413(
    client: TestClient, context: AppContext, migrated_settings: Settings
) -> None:
    admin = add_staff(context, "sara", "admin")
    login = client.post("/login", content=b"username=" + b"a" * 9000)
    assert login.status_code == 413
    assert "8192" in login.json()["error"]
    webhook = client.post("/api/v1/sms/inbound", content=b"{" + b" " * 70_000 + b"}")
    assert webhook.status_code == 413
    answers = client.post("/s/sometoken", content=b"x" * 300_000)
    assert answers.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams in
        for _ in range(20):
            yield b"x" * 1000

    for small in _small_app(migrated_settings, context, 10_000):
        streamed = small.post(
            "/api/v1/plans/validate",
            content=chunks(),
            headers={**admin, "Content-Type": "text/plain"},
        )
        assert streamed.status_code == 413
        assert "10000" in streamed.json()["error"]
        fits = small.post(
            "/api/v1/plans/validate",
            content=b"name: x\n",
            headers={**admin, "Content-Type": "text/plain"},
        )
        assert fits.status_code == 422  # read and checked: an incomplete plan
