"""Mixed load against `survey serve --workers 2` on PostgreSQL: ingestion, web answering and
SMS webhooks at the same time. Prints throughput and p50/p99 latency per endpoint.

    python bench/load.py [--db-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
                         [--workers 2] [--seconds 30] [--ingest-clients 2] [--batch-size 100]
                         [--answer-clients 8] [--sms-clients 4]

Creates a fresh schema in the database (dropped afterwards), migrates it, seeds an agency with
a key and a plan through the `survey` command, and writes sent invitations straight to the
tables: link invitations for the answering clients, SMS-dialog invitations for the webhook
clients. Then it runs `survey serve` (file SMS gateway, dispatcher inside, JSON logs to a
file) and drives it for `--seconds` from client threads on keep-alive connections:
- ingestion: `POST /api/v1/transactions` with batches of `--batch-size` new transactions;
- answering: what a citizen's phone does, `GET /s/{token}` then `POST /s/{token}` with every
  answer (303 expected); each citizen from its own loopback address (127.0.x.y), since the
  server limits requests per address;
- SMS webhooks: signed `POST /api/v1/sms/inbound` replies ("4") from dialog phones.
Afterwards it checks the database holds every acknowledged transaction and completed response.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CLI = "import sys; from survey.cli import main; sys.exit(main(sys.argv[1:]))"
DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WEBHOOK_SECRET = "bench-webhook-secret-0123456789abcdef"
PLAN = """name: load
starts: 2026-01-01
strata: [agency, service, channel]
default_rate: 0.05
contact_rule_days: 90
quiet_hours: null
reminder_after_hours: null
expires_after_days: 7
questionnaires:
  - {service: TAX-01, questionnaire: core-transaction, mode: sms_link}
  - {service: TAX-02, questionnaire: sms-short, mode: sms_dialog}
"""
ANSWERS = {
    "q_overall": "4",
    "q_time": "5",
    "q_respect": "na",
    "q_competence": "3",
    "q_information": "4",
    "q_fairness": "5",
    "q_ease": "2",
    "q_outcome": "1",
    "q_trust": "4",
}
CSRF = re.compile(rb'name="_csrf_token" value="([0-9a-f]+)"')
COOKIE = re.compile(r"s_csrf=([^;]+)")


class Stats:
    """Latencies per endpoint, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.failures: dict[str, list[str]] = defaultdict(list)

    def add(self, endpoint: str, seconds: float, failure: str | None = None) -> None:
        with self.lock:
            if failure is None:
                self.latencies[endpoint].append(seconds)
            else:
                self.failures[endpoint].append(failure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-url", default=DEFAULT_DB, help=f"PostgreSQL (default {DEFAULT_DB})")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--ingest-clients", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--answer-clients", type=int, default=8)
    parser.add_argument("--sms-clients", type=int, default=4)
    parser.add_argument("--links", type=int, default=6000, help="link invitations to seed")
    parser.add_argument("--dialogs", type=int, default=6000, help="dialog invitations to seed")
    args = parser.parse_args()

    import sqlalchemy as sa

    from survey.kernel import db

    schema = f"bench_load_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(db.normalise_url(args.db_url), poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in args.db_url else "?"
    url = f"{args.db_url}{separator}options=-csearch_path%3D{schema}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    secret = secrets.token_hex(32)
    port = _free_port()
    env = {
        **os.environ,
        "SURVEY_DATABASE_URL": url,
        "SURVEY_SECRET_KEY": secret,
        "SURVEY_ENV": "development",
        "SURVEY_VAR_DIR": str(workdir / "var"),
        "SURVEY_SMS_GATEWAY": f"file:{workdir / 'sms.jsonl'}",
        "SURVEY_SMS_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SURVEY_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    server = None
    try:
        key = _seed_registry(env, workdir)
        links, dialogs = _seed_invitations(url, bytes.fromhex(secret), args.links, args.dialogs)
        log = open(workdir / "server.log", "wb")  # noqa: SIM115 (open while the server runs)
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CLI,
                "serve",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        _wait_until_ready(port, server, workdir / "server.log")
        print(
            f"server: survey serve --workers {args.workers} on 127.0.0.1:{port}, PostgreSQL "
            f"schema {schema}; {os.cpu_count()} CPUs shared by server and clients"
        )
        stats, acked_tx, completed = _drive(args, port, key, links, dialogs)
        _report(stats, args.seconds)
        _check(url, acked_tx, completed)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()
    return 0


def _survey(env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CLI, *arguments], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"survey {' '.join(arguments)} failed:\n{done.stderr}")
    return done.stdout


def _seed_registry(env: dict[str, str], workdir: Path) -> str:
    """Agency TAX with two services and the plan, through the `survey` command."""
    out = _survey(env, "agencies", "add", "--code", "TAX", "--name-fa", "مالیات",
                  "--name-en", "Tax")  # fmt: skip
    key = out.strip().splitlines()[-1].strip()
    for code in ("TAX-01", "TAX-02"):
        _survey(env, "services", "add", "--agency", "TAX", "--code", code,
                "--name-fa", f"خدمت {code}", "--name-en", f"Service {code}")  # fmt: skip
    plan = workdir / "plan.yaml"
    plan.write_text(PLAN, encoding="utf-8")
    _survey(env, "plans", "apply", str(plan))
    return key


def _seed_invitations(
    url: str, secret: bytes, links: int, dialogs: int
) -> tuple[list[str], list[str]]:
    """Sent invitations written straight to the tables: link tokens, dialog phones."""
    import sqlalchemy as sa

    from questionnaires.loading import load_library
    from survey.config import Settings
    from survey.kernel import db
    from survey.kernel.crypto import PhoneVault
    from survey.kernel.tokens import token_for, token_hash
    from survey.models import (
        Agency,
        Invitation,
        QuestionnaireVersion,
        SampledUnit,
        SamplingPlan,
        Service,
        ServiceTransaction,
    )

    engine = db.create_db_engine(Settings(database_url=url, secret_key=secret))
    vault = PhoneVault.from_secret(secret)
    now = datetime.now(UTC)
    library = load_library()
    with engine.begin() as conn:
        agency_id = conn.execute(sa.select(Agency.id)).scalar_one()
        services = dict(conn.execute(sa.select(Service.code, Service.id)).all())
        plan_id = conn.execute(sa.select(SamplingPlan.id)).scalar_one()
        versions: dict[str, int] = {}
        for qid in ("core-transaction", "sms-short"):
            q = library[qid]
            found = conn.execute(
                sa.select(QuestionnaireVersion.id).where(QuestionnaireVersion.qid == qid)
            ).scalar()
            versions[qid] = (
                found
                or conn.execute(
                    sa.insert(QuestionnaireVersion).values(
                        qid=qid,
                        version=q.version,
                        title_fa=q.title.fa,
                        title_en=q.title.en,
                        content=q.to_dict(),
                        content_hash=q.content_hash(),
                        created_at=now,
                    )
                ).inserted_primary_key[0]
            )
        start = 1_000_000
        kinds = [("core-transaction", "sms_link", "TAX-01")] * links + [
            ("sms-short", "sms_dialog", "TAX-02")
        ] * dialogs
        tokens: list[str] = []
        phones: list[str] = []
        rows_tx, rows_unit, rows_inv = [], [], []
        for offset, (qid, mode, service) in enumerate(kinds):
            i = start + offset
            phone = f"0935{i:07d}"
            normalised = "+98" + phone[1:]
            token = token_for(secret, i)
            if mode == "sms_link":
                tokens.append(token)
            else:
                phones.append(phone)
            rows_tx.append({"id": i, "agency_id": agency_id, "external_id": f"seed-{i}",
                            "service_id": services[service], "channel": "in_person",
                            "completed_at": now, "received_at": now, "province_code": "tehran",
                            "language": "fa", "plan_id": plan_id, "stratum": "s",
                            "outcome": "sampled"})  # fmt: skip
            rows_unit.append({"id": i, "transaction_id": i, "plan_id": plan_id,
                              "agency_id": agency_id, "service_id": services[service],
                              "channel": "in_person", "province_code": "tehran", "stratum": "s",
                              "day": now.date(), "inclusion_probability": 0.05,
                              "phone_ciphertext": vault.encrypt(normalised),
                              "phone_key_id": vault.key_id,
                              "phone_hash": vault.phone_hash(normalised), "language": "fa",
                              "questionnaire_qid": qid, "mode": mode, "status": "invited",
                              "created_at": now})  # fmt: skip
            rows_inv.append({"id": i, "sampled_unit_id": i, "token_hash": token_hash(token),
                             "status": "sent", "mode": mode, "language": "fa",
                             "questionnaire_version_id": versions[qid], "created_at": now,
                             "due_at": now, "expires_at": now + timedelta(days=7),
                             "sent_at": now, "dialog_position": 0,
                             "reprompted": False})  # fmt: skip
        conn.execute(sa.insert(ServiceTransaction), rows_tx)
        conn.execute(sa.insert(SampledUnit), rows_unit)
        conn.execute(sa.insert(Invitation), rows_inv)
    engine.dispose()
    return tokens, phones


def _drive(
    args: argparse.Namespace, port: int, key: str, links: list[str], phones: list[str]
) -> tuple[Stats, list[str], int]:
    from survey.answering.api import signature_for

    stats = Stats()
    stop = threading.Event()
    lock = threading.Lock()
    acked: list[str] = []
    completed = [0]
    link_queue = list(reversed(links))
    phone_queue = [p for p in phones for _ in range(3)]  # three replies per dialog phone
    phone_queue.reverse()
    addresses = iter(f"127.{a}.{b}.{c}" for a in range(1, 250) for b in range(250) for c in (2, 3))
    run = secrets.token_hex(3)

    def next_address() -> str:
        with lock:
            return next(addresses)

    def ingest(client: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        batch = 0
        while not stop.is_set():
            batch += 1
            records = [
                {"external_id": f"{run}-{client}-{batch}-{i}", "service": "TAX-01",
                 "channel": "in_person", "completed_at": "2026-03-09T10:15:00+03:30",
                 "phone": f"0912{(client * 10_000_000 + batch * 1000 + i) % 10**7:07d}"}
                for i in range(args.batch_size)
            ]  # fmt: skip
            body = json.dumps(records).encode()
            started = time.perf_counter()
            conn.request("POST", "/api/v1/transactions", body=body,
                         headers={"Authorization": f"Bearer {key}",
                                  "Content-Type": "application/json"})  # fmt: skip
            response = conn.getresponse()
            payload = response.read()
            if response.status == 200:
                stats.add("POST /api/v1/transactions", time.perf_counter() - started)
                with lock:
                    acked.extend(r["external_id"] for r in records)
            else:
                stats.add("POST /api/v1/transactions", 0, f"{response.status} {payload[:100]!r}")

    def answer() -> None:
        while not stop.is_set():
            with lock:
                if not link_queue:
                    return
                token = link_queue.pop()
            conn = http.client.HTTPConnection(
                "127.0.0.1", port, timeout=60, source_address=(next_address(), 0)
            )
            started = time.perf_counter()
            conn.request("GET", f"/s/{token}")
            page = conn.getresponse()
            body = page.read()
            middle = time.perf_counter()
            cookie = COOKIE.search(page.getheader("set-cookie") or "")
            field = CSRF.search(body)
            if page.status != 200 or cookie is None or field is None:
                stats.add("GET /s/{token}", 0, f"{page.status}")
                continue
            stats.add("GET /s/{token}", middle - started)
            form = urlencode({"_csrf_token": field[1].decode(), "action": "submit", **ANSWERS})
            conn.request("POST", f"/s/{token}", body=form.encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                  "Cookie": f"s_csrf={cookie[1]}"})  # fmt: skip
            done = conn.getresponse()
            done.read()
            conn.close()
            if done.status == 303:
                stats.add("POST /s/{token}", time.perf_counter() - middle)
                with lock:
                    completed[0] += 1
            else:
                stats.add("POST /s/{token}", 0, f"{done.status}")

    def webhook() -> None:
        conn = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=60, source_address=(next_address(), 0)
        )
        sent = 0
        while not stop.is_set():
            with lock:
                if not phone_queue:
                    return
                phone = phone_queue.pop()
            sent += 1
            if sent % 400 == 0:  # a fresh provider address now and then (per-address limit)
                conn.close()
                conn = http.client.HTTPConnection(
                    "127.0.0.1", port, timeout=60, source_address=(next_address(), 0)
                )
            body = json.dumps({"from": phone, "to": "3000", "text": "4",
                               "message_id": uuid.uuid4().hex}).encode()  # fmt: skip
            started = time.perf_counter()
            conn.request("POST", "/api/v1/sms/inbound", body=body,
                         headers={"Content-Type": "application/json",
                                  "X-Survey-Signature": signature_for(
                                      WEBHOOK_SECRET.encode(), body)})  # fmt: skip
            response = conn.getresponse()
            payload = response.read()
            if response.status == 200:
                stats.add("POST /api/v1/sms/inbound", time.perf_counter() - started)
            else:
                stats.add("POST /api/v1/sms/inbound", 0, f"{response.status} {payload[:80]!r}")

    threads = (
        [threading.Thread(target=ingest, args=(c,)) for c in range(args.ingest_clients)]
        + [threading.Thread(target=answer) for _ in range(args.answer_clients)]
        + [threading.Thread(target=webhook) for _ in range(args.sms_clients)]
    )
    for thread in threads:
        thread.start()
    time.sleep(args.seconds)
    stop.set()
    for thread in threads:
        thread.join(120)
    return stats, acked, completed[0]


def _report(stats: Stats, seconds: float) -> None:
    print(f"{'endpoint':28} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    total = 0
    for endpoint in sorted(set(stats.latencies) | set(stats.failures)):
        values = sorted(stats.latencies[endpoint])
        total += len(values)

        def pct(p: float, values: list[float] = values) -> float:
            return values[min(len(values) - 1, int(p * len(values)))] * 1000 if values else 0.0

        print(
            f"{endpoint:28} {len(values):>9} {len(values) / seconds:>8.1f} {pct(0.5):>8.1f} "
            f"{pct(0.99):>8.1f} {len(stats.failures[endpoint]):>7}"
        )
        for failure in stats.failures[endpoint][:3]:
            print(f"    e.g. {failure}")
    print(f"{'all':28} {total:>9} {total / seconds:>8.1f}")


def _check(url: str, acked: list[str], completed: int) -> None:
    import sqlalchemy as sa

    from survey.kernel import db

    engine = sa.create_engine(db.normalise_url(url), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        stored = conn.exec_driver_sql(
            "SELECT count(*) FROM service_transaction WHERE external_id NOT LIKE 'seed-%%'"
        ).scalar_one()
        responses = conn.exec_driver_sql(
            "SELECT count(*) FROM response r JOIN invitation i ON i.id = r.invitation_id "
            "WHERE r.status = 'completed' AND i.mode = 'sms_link'"
        ).scalar_one()
    engine.dispose()
    print(
        f"check: {stored} transactions stored for {len(acked)} acknowledged; "
        f"{responses} web responses completed for {completed} acknowledged"
    )
    if stored < len(acked) or responses < completed:
        raise SystemExit("acknowledged work is missing from the database")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_ready(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("server did not become ready")


if __name__ == "__main__":
    sys.exit(main())
