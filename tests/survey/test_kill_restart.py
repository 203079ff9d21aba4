"""Crash safety of the real server: `survey serve` (file SMS gateway, dispatcher inside) under
a load of ingestion and web answering is SIGKILLed mid-load and restarted. Afterwards every
transaction batch and every response the server acknowledged is in the database, and no SMS
was sent twice (the same invitation and kind twice in the gateway's file)."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa

from survey.config import Settings
from survey.context import AppContext
from tests.survey.builders import add_agency, add_plan, transaction_record
from tests.survey.sms_builders import SmsWorld

LINK = re.compile(r"/s/([a-z2-7]{16})")
CSRF = re.compile(rb'name="_csrf_token" value="([0-9a-f]+)"')
COOKIE = re.compile(r"s_csrf=([^;]+)")
ANSWERS = {"q_overall": "4", "q_time": "5", "q_respect": "na", "q_competence": "3"}
ROOT = Path(__file__).resolve().parents[2]
SERVE = "import sys; from survey.cli import main; sys.exit(main(sys.argv[1:]))"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`survey serve` in its own process group, killed or stopped on demand."""

    def __init__(self, settings: Settings, port: int, sms_file: Path, log: Path) -> None:
        self.port = port
        self.log = log
        self.env = {
            **os.environ,
            "SURVEY_ENV": "test",
            "SURVEY_DISPATCH_IN_SERVE": "1",
            "SURVEY_DATABASE_URL": settings.database_url,
            "SURVEY_SECRET_KEY": settings.secret_key.hex(),
            "SURVEY_SMS_GATEWAY": f"file:{sms_file}",
            "SURVEY_SMS_WEBHOOK_SECRET": "webhook-secret-for-tests-0123456789",
            "SURVEY_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "SURVEY_VAR_DIR": str(settings.var_dir),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", SERVE, "serve", "--port", str(self.port)],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("server did not become ready:\n" + self.log.read_text()[-3000:])

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


class Load:
    """Ingestion and answering threads; they record only what the server acknowledged."""

    def __init__(self, port: int, agency_key: str, sms_file: Path) -> None:
        self.port = port
        self.key = agency_key
        self.sms_file = sms_file
        self.stop = threading.Event()
        self.acked_ids: list[str] = []
        self.acked_tokens: list[str] = []
        self.batches = 0
        self.errors = 0
        self._threads = [
            threading.Thread(target=self._ingest, daemon=True),
            threading.Thread(target=self._answer, daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(30)

    def _ingest(self) -> None:
        batch = 0
        while not self.stop.is_set():
            batch += 1
            records = [
                transaction_record(batch * 100 + i, external_id=f"k{batch}-{i}") for i in range(10)
            ]
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                conn.request(
                    "POST",
                    "/api/v1/transactions",
                    body=json.dumps(records),
                    headers={
                        "Authorization": f"Bearer {self.key}",
                        "Content-Type": "application/json",
                    },
                )
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    self.acked_ids += [r["external_id"] for r in records]
                    self.batches += 1
                time.sleep(0.1)  # a steady stream, not a flood: the dispatcher keeps up
            except OSError:
                self.errors += 1
                time.sleep(0.2)

    def _answer(self) -> None:
        done: set[str] = set()
        source = 1
        while not self.stop.is_set():
            tokens = []
            if self.sms_file.exists():
                for line in self.sms_file.read_text(encoding="utf-8").splitlines():
                    found = LINK.search(json.loads(line)["text"])
                    if found and found[1] not in done:
                        tokens.append(found[1])
            for token in tokens[:5]:
                source = source % 200 + 1  # many citizens: many addresses (own rate limits)
                try:
                    if self._complete(token, f"127.0.{source}.{source + 1}"):
                        done.add(token)
                        self.acked_tokens.append(token)
                except OSError:
                    self.errors += 1
                    time.sleep(0.2)
            time.sleep(0.1)

    def _complete(self, token: str, address: str) -> bool:
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=15, source_address=(address, 0)
        )
        conn.request("GET", f"/s/{token}")
        page = conn.getresponse()
        body = page.read()
        cookie = COOKIE.search(page.getheader("set-cookie") or "")
        field = CSRF.search(body)
        if page.status != 200 or cookie is None or field is None:
            return False
        form = urlencode({"_csrf_token": field[1].decode(), "action": "submit", **ANSWERS})
        conn.request(
            "POST",
            f"/s/{token}",
            body=form.encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"s_csrf={cookie[1]}",
            },
        )
        done = conn.getresponse()
        done.read()
        return done.status == 303


def _wait_for(condition, seconds: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the load"
        time.sleep(0.2)


def test_sigkill_mid_load_loses_nothing_acknowledged_and_sends_nothing_twice(
    migrated_settings: Settings, context: AppContext, tmp_path: Path
) -> None:
    SmsWorld(context)  # registers the questionnaires
    tax = add_agency(context, "TAX", ("TAX-01",))
    add_plan(
        context,
        version=2,
        default_rate=1.0,
        rates=[],
        reminder_after_hours=None,
        questionnaires=[
            {"service": "TAX-01", "questionnaire": "core-transaction", "mode": "sms_link"}
        ],
    )
    sms_file = tmp_path / "sms.jsonl"
    server = Server(migrated_settings, _free_port(), sms_file, tmp_path / "server.log")
    load = Load(server.port, tax.key, sms_file)
    server.start()
    try:
        load.start()
        _wait_for(lambda: load.batches >= 5 and len(load.acked_tokens) >= 3, 90)
        server.kill()  # mid-load: requests are in flight
        before = (load.batches, len(load.acked_tokens))
        server.start()
        _wait_for(
            lambda: load.batches >= before[0] + 5 and len(load.acked_tokens) >= before[1] + 3, 90
        )
        load.join()
    finally:
        load.stop.set()
        server.stop()

    with context.engine.connect() as conn:
        stored = set(conn.exec_driver_sql("SELECT external_id FROM service_transaction").scalars())
        completed = dict(
            conn.execute(
                sa.text(
                    "SELECT i.token_hash, r.status FROM invitation i "
                    "JOIN response r ON r.invitation_id = i.id WHERE i.status = 'completed'"
                )
            ).all()
        )
    assert set(load.acked_ids) <= stored
    from survey.kernel.tokens import token_hash

    assert all(completed.get(token_hash(t)) == "completed" for t in load.acked_tokens)
    lines = [json.loads(line) for line in sms_file.read_text(encoding="utf-8").splitlines()]
    sent = Counter((line["invitation_id"], line["kind"]) for line in lines)
    assert sent and max(sent.values()) == 1, [k for k, n in sent.items() if n > 1]
    assert len(load.acked_ids) >= 100 and len(load.acked_tokens) >= 6
