"""Operations endpoints and logs through the real app: /healthz, /readyz, /metrics (who may
read it, what it counts), request ids, JSON log lines without phones or tokens."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from survey.app import create_app
from survey.config import Settings
from survey.context import AppContext
from survey.kernel import db
from survey.kernel.observability import JsonFormatter, redact, serve_log_config
from tests.survey.builders import add_agency, add_plan, transaction_record

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def metered(migrated_settings: Settings) -> Iterator[TestClient]:
    settings = migrated_settings.with_overrides(metrics_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        yield client


def test_healthz_and_readyz_on_a_migrated_database(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["revision"]


def test_readyz_is_503_until_the_schema_is_migrated(settings: Settings) -> None:
    context = AppContext.build(settings)  # a fresh, empty database
    try:
        with TestClient(create_app(settings, context=context)) as client:
            response = client.get("/readyz")
            assert response.status_code == 503
            assert "survey db upgrade" in response.json()["problems"][0]
            db.upgrade(settings)
            assert client.get("/readyz").status_code == 200
    finally:
        context.close()


def test_metrics_need_the_token_when_one_is_set(metered: TestClient) -> None:
    assert metered.get("/metrics").status_code == 401
    assert metered.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    response = metered.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


def test_without_a_token_metrics_are_for_localhost_only(
    migrated_settings: Settings, context: AppContext
) -> None:
    app = create_app(migrated_settings, context=context)
    with TestClient(app) as remote:  # the test client's address is not loopback
        assert remote.get("/metrics").status_code == 403
    production = migrated_settings.with_overrides(env="production")
    with TestClient(create_app(production)) as client:
        assert client.get("/metrics").status_code == 403


def test_metrics_count_ingestion_requests_and_invitations(
    metered: TestClient, context: AppContext
) -> None:
    tax = add_agency(context, "TAX", ("TAX-01", "TAX-02"))
    add_plan(context)
    batch = [transaction_record(n) for n in range(5)] + [transaction_record(0)]
    response = metered.post(
        "/api/v1/transactions", json=batch, headers={"Authorization": f"Bearer {tax.key}"}
    )
    assert response.status_code == 200, response.text
    metered.get("/s/abcdefghijklmnop")  # an unknown link: counted under its template only
    text = metered.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    samples = _samples(text)
    assert samples['survey_frame_transactions_total{kind="reported"}'] == 5
    assert samples['survey_frame_transactions_total{kind="sampled"}'] == 5  # TAX-01 in person: 1.0
    assert samples['survey_frame_transactions_total{kind="duplicates"}'] == 1
    ingest = [
        k
        for k in samples
        if k.startswith("survey_http_requests_total") and "/api/v1/transactions" in k
    ]
    assert any('status_code="200"' in k for k in ingest)  # the registry is process-wide
    assert any("survey_http_request_duration_seconds_bucket" in k for k in samples)
    assert "abcdefghijklmnop" not in text  # link tokens never become label values
    assert "survey_sms_send_failures_total" in text


def _samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    fresh = client.get("/healthz").headers["x-request-id"]
    assert len(fresh) == 32
    sent = client.get("/healthz", headers={"X-Request-ID": "lb-1234567890"})
    assert sent.headers["x-request-id"] == "lb-1234567890"
    odd = client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert odd.headers["x-request-id"] != "<script>"


def test_access_log_lines_are_json_with_the_route_template_not_the_token(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="survey.access")
    response = client.get("/s/abcdefghijklmnop", headers={"X-Request-ID": "req-abcdef12"})
    assert response.status_code in (404, 410, 200)
    [record] = [r for r in caplog.records if r.name == "survey.access"]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-abcdef12"
    assert line["method"] == "GET" and line["status"] == response.status_code
    assert "abcdefghijklmnop" not in json.dumps(line)
    assert line["route"].startswith("/s/{")


def test_redaction_masks_phones_tokens_and_keys() -> None:
    text = redact(
        "sms to +989121234567 and ۰۹۱۲۱۲۳۴۵۶۷ link https://x.ir/s/abcdefghijklmnop "
        "key agk_AbCdEf123456 header Authorization: Bearer stk_secret-value"
    )
    for secret in (
        "9121234567",
        "۰۹۱۲۱۲۳۴۵۶۷",
        "abcdefghijklmnop",
        "AbCdEf123456",
        "secret-value",
    ):
        assert secret not in text
    assert redact("invitation 12 sent") == "invitation 12 sent"  # ordinary numbers stay


def test_json_formatter_writes_one_object_per_line_with_the_traceback_redacted() -> None:
    try:
        raise ValueError("cannot send to 09121234567")
    except ValueError:
        record = logging.LogRecord(
            "survey.dispatch", logging.ERROR, __file__, 1, "failed for %s", ("+989121234567",), True
        )
        import sys

        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "error" and entry["logger"] == "survey.dispatch"
    assert "1234567" not in line and "ValueError" in entry["error"]
    config = serve_log_config()
    assert config["formatters"]["json"]["()"] == "survey.kernel.observability.JsonFormatter"


def test_serve_with_two_workers_aggregates_metrics_and_logs_json(
    migrated_settings: Settings, tmp_path: Path
) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "SURVEY_ENV": "test",
        "SURVEY_DATABASE_URL": migrated_settings.database_url,
        "SURVEY_SECRET_KEY": migrated_settings.secret_key.hex(),
        "SURVEY_VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    serve = "import sys; from survey.cli import main; sys.exit(main(sys.argv[1:]))"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", serve, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        _wait_ready(port, process, log)
        for _ in range(40):  # new connections: the kernel spreads them over both workers
            assert _get(port, "/api/v1/agencies")[0] == 401
        status, body = _get(port, "/metrics")
        assert status == 200
        samples = _samples(body)
        key = next(
            k
            for k in samples
            if k.startswith("survey_http_requests_total") and '"/api/v1/agencies"' in k
        )
        assert samples[key] >= 40  # counted by both workers, read through either
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    access = [json.loads(line) for line in lines if '"survey.access"' in line]
    assert len(access) >= 40 and {entry["route"] for entry in access} == {"/api/v1/agencies"}
    assert len({entry["request_id"] for entry in access}) == len(access)
    if len({entry["pid"] for entry in access}) == 2:  # both workers served: one sum for both
        assert samples[key] == len(access)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read().decode()


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if _get(port, "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("server not ready:\n" + log.read_text()[-3000:])
