"""Web answering throughput over HTTP on SQLite: completed responses per second and p99 latency.

    python bench/respond.py [--responses 4000] [--clients 8] [--workers 1]

Creates a temporary SQLite database, seeds `--responses` invitations (core-transaction, every
one a different citizen), starts a real uvicorn server (this script with `--serve`, `--workers`
processes, one by default) and drives it with client threads over keep-alive `http.client`
connections. One completed response is what a citizen's phone does: `GET /s/{token}` (the
form, a CSRF cookie and field) then `POST /s/{token}` with every answer and `action=submit`
(answered 303 to the thank-you page, not followed). The server's per-address rate limit is
raised for the run (every request comes from 127.0.0.1); everything else is the production
path. Prints completed responses/s, request p50/p99 for each step and per completion, and
checks the database holds exactly that many completed responses.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
    "q_improve": "نوبت‌دهی اینترنتی",
}
CSRF = re.compile(rb'name="_csrf_token" value="([0-9a-f]+)"')
COOKIE = re.compile(r"s_csrf=([^;]+)")


def _settings(db_path: Path, secret_hex: str, var_dir: Path):  # type: ignore[no-untyped-def]
    from survey.config import Settings

    return Settings(
        database_url=f"sqlite:///{db_path.as_posix()}",
        secret_key=bytes.fromhex(secret_hex),
        env="test",
        sms_gateway="console",
        var_dir=var_dir,
    )


def seed(settings, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    """`count` sent invitations with their own sampled units; returns their link tokens."""
    import sqlalchemy as sa

    from questionnaires.loading import load_library
    from survey.context import AppContext
    from survey.kernel import db
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

    db.upgrade(settings)
    context = AppContext.build(settings)
    now = datetime.now(UTC)
    q = load_library()["core-transaction"]
    tables = {m: m.__table__ for m in (Agency, Service, SamplingPlan, QuestionnaireVersion)}
    with context.engine.begin() as conn:
        agency_id = conn.execute(
            sa.insert(tables[Agency]).values(
                code="TAX", name_fa="مالیات", name_en="Tax", created_at=now
            )
        ).inserted_primary_key[0]
        service_id = conn.execute(
            sa.insert(tables[Service]).values(
                code="TAX-01",
                agency_id=agency_id,
                name_fa="خدمت",
                name_en="Service",
                created_at=now,
            )
        ).inserted_primary_key[0]
        plan_id = conn.execute(
            sa.insert(tables[SamplingPlan]).values(
                version=1,
                name="bench",
                starts=date(2026, 1, 1),
                seed="bench",
                strata=["agency", "service", "channel"],
                default_rate=0.1,
                rates=[],
                contact_rule_days=90,
                expires_after_days=7,
                questionnaires=[],
                source="",
                created_at=now,
                created_by="bench",
            )
        ).inserted_primary_key[0]
        qv_id = conn.execute(
            sa.insert(tables[QuestionnaireVersion]).values(
                qid=q.id,
                version=q.version,
                title_fa=q.title.fa,
                title_en=q.title.en,
                content=q.to_dict(),
                content_hash=q.content_hash(),
                created_at=now,
            )
        ).inserted_primary_key[0]
        conn.execute(
            sa.insert(ServiceTransaction.__table__),
            [
                {
                    "id": i,
                    "agency_id": agency_id,
                    "external_id": f"b{i}",
                    "service_id": service_id,
                    "channel": "in_person",
                    "completed_at": now,
                    "received_at": now,
                    "province_code": "tehran",
                    "language": "fa",
                    "plan_id": plan_id,
                    "stratum": "s",
                    "outcome": "sampled",
                }
                for i in range(1, count + 1)
            ],
        )
        vault = context.vault
        conn.execute(
            sa.insert(SampledUnit.__table__),
            [
                {
                    "id": i,
                    "transaction_id": i,
                    "plan_id": plan_id,
                    "agency_id": agency_id,
                    "service_id": service_id,
                    "channel": "in_person",
                    "province_code": "tehran",
                    "stratum": "s",
                    "day": now.date(),
                    "inclusion_probability": 0.1,
                    "phone_ciphertext": vault.encrypt(f"0912{i:07d}"),
                    "phone_key_id": vault.key_id,
                    "phone_hash": vault.phone_hash(f"0912{i:07d}"),
                    "language": "fa",
                    "questionnaire_qid": q.id,
                    "mode": "sms_link",
                    "status": "invited",
                    "created_at": now,
                }
                for i in range(1, count + 1)
            ],
        )
        tokens = [token_for(settings.secret_key, i) for i in range(1, count + 1)]
        conn.execute(
            sa.insert(Invitation.__table__),
            [
                {"id": i, "sampled_unit_id": i, "token_hash": token_hash(tokens[i - 1]),
                 "status": "sent", "mode": "sms_link", "language": "fa",
                 "questionnaire_version_id": qv_id, "created_at": now, "due_at": now,
                 "expires_at": now + timedelta(days=7), "sent_at": now,
                 "dialog_position": 0, "reprompted": False}
                for i in range(1, count + 1)
            ],
        )  # fmt: skip
    context.close()
    return tokens


def serve(args: argparse.Namespace) -> None:
    """Server mode: the real app on the seeded database, rate limit raised for one client."""
    import uvicorn

    os.environ.update(BENCH_DB=args.db, BENCH_SECRET=args.secret, BENCH_VAR=args.var)
    options = {"host": "127.0.0.1", "port": args.port, "log_level": "warning"}
    if args.workers == 1:
        uvicorn.run(bench_app(), access_log=False, **options)
    else:  # worker processes import this module by name (the script's folder is on sys.path)
        uvicorn.run(
            f"{Path(__file__).stem}:bench_app",
            factory=True,
            workers=args.workers,
            access_log=False,
            **options,
        )


def bench_app():  # type: ignore[no-untyped-def]
    """The app for one server process, from the settings `serve` put in the environment."""
    from survey.answering.pages import AnsweringParts
    from survey.app import create_app
    from survey.kernel.limits import Bucket, RateLimit, Throttle

    environ = os.environ
    settings = _settings(
        Path(environ["BENCH_DB"]), environ["BENCH_SECRET"], Path(environ["BENCH_VAR"])
    )
    app = create_app(settings)
    parts = AnsweringParts(app.state.context)
    parts.throttle = Throttle(RateLimit(requests=Bucket(1e9, 1e9), misses=Bucket(20, 1 / 30)))
    app.state["answering"] = parts
    return app


class Client(threading.Thread):
    """Completes its share of invitations one after another on one keep-alive connection."""

    def __init__(self, port: int, tokens: list[str]) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.tokens = tokens
        self.get_ms: list[float] = []
        self.post_ms: list[float] = []
        self.done_ms: list[float] = []
        self.failures = 0

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        for token in self.tokens:
            start = time.perf_counter()
            conn.request("GET", f"/s/{token}")
            page = conn.getresponse()
            body = page.read()
            middle = time.perf_counter()
            cookie = COOKIE.search(page.getheader("set-cookie") or "")
            field = CSRF.search(body)
            if page.status != 200 or cookie is None or field is None:
                self.failures += 1
                continue
            form = urlencode({"_csrf_token": field[1].decode(), "action": "submit", **ANSWERS})
            conn.request(
                "POST",
                f"/s/{token}?lang=fa",
                body=form.encode(),
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Cookie": f"s_csrf={cookie[1]}",
                },
            )
            done = conn.getresponse()
            done.read()
            end = time.perf_counter()
            if done.status != 303:
                self.failures += 1
                continue
            self.get_ms.append((middle - start) * 1000)
            self.post_ms.append((end - middle) * 1000)
            self.done_ms.append((end - start) * 1000)
        conn.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants (Linux /proc: the workers),
    to report cost per response on a machine shared with other work, where wall-clock rates
    depend on the neighbours."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    if pid not in stats:
        return float("nan")
    family, grown = {pid}, True
    while grown:
        more = {p for p, fields in stats.items() if int(fields[1]) in family} - family
        family |= more
        grown = bool(more)
    ticks = sum(int(stats[p][11]) + int(stats[p][12]) for p in family)
    return ticks / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8, help="client threads (citizens at once)")
    parser.add_argument("--warmup", type=int, default=200, help="completions before timing")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--secret", help=argparse.SUPPRESS)
    parser.add_argument("--var", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="bench-respond-"))
    secret = secrets.token_hex(32)
    settings = _settings(workdir / "survey.db", secret, workdir / "var")
    total = args.responses + args.warmup
    started = time.perf_counter()
    tokens = seed(settings, total)
    print(f"seeded {total} invitations in {time.perf_counter() - started:.1f} s")

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--db", str(workdir / "survey.db"),
         "--secret", secret, "--var", str(workdir / "var"), "--port", str(port),
         "--workers", str(args.workers)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        _wait(port)
        warm = Client(port, tokens[: args.warmup])
        warm.start()
        warm.join()
        timed = tokens[args.warmup :]
        clients = [Client(port, timed[i :: args.clients]) for i in range(args.clients)]
        cpu_before = _cpu_seconds(server.pid)
        client_before = time.process_time()
        clock = time.perf_counter()
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        elapsed = time.perf_counter() - clock
        server_cpu = _cpu_seconds(server.pid) - cpu_before
        client_cpu = time.process_time() - client_before
    finally:
        server.terminate()
        server.wait(timeout=30)

    done = [ms for c in clients for ms in c.done_ms]
    gets = [ms for c in clients for ms in c.get_ms]
    posts = [ms for c in clients for ms in c.post_ms]
    failures = sum(c.failures for c in clients) + warm.failures
    import sqlalchemy as sa

    engine = sa.create_engine(settings.database_url)
    with engine.connect() as conn:
        stored = conn.exec_driver_sql(
            "SELECT count(*) FROM response WHERE status = 'completed'"
        ).scalar()
    engine.dispose()
    rate = len(done) / elapsed
    print(
        f"{len(done)} completed web responses in {elapsed:.2f} s with {args.clients} clients: "
        f"{rate:.0f} responses/s ({2 * rate:.0f} requests/s)"
    )
    print(f"GET  /s/TOKEN  p50 {_pct(gets, 50):.1f} ms  p99 {_pct(gets, 99):.1f} ms")
    print(f"POST /s/TOKEN  p50 {_pct(posts, 50):.1f} ms  p99 {_pct(posts, 99):.1f} ms")
    print(f"per completion p50 {_pct(done, 50):.1f} ms  p99 {_pct(done, 99):.1f} ms")
    per_response = server_cpu / max(len(done), 1) * 1000
    print(
        f"server CPU {per_response:.2f} ms per completed response (GET + POST): "
        f"at most {1000 / per_response:.0f} responses/s per fully used core "
        f"({args.workers} worker process(es))"
    )
    print(
        f"client CPU {client_cpu / max(len(done), 1) * 1000:.2f} ms per completed response "
        f"(on the same {os.cpu_count()} cores: the load generator's share is not the server's)"
    )
    print(
        f"failures {failures}; completed responses in the database {stored} "
        f"(expected {total - failures})"
    )
    met = rate >= 500 and _pct(posts, 99) < 50 and _pct(gets, 99) < 50
    print(f"goal: >= 500 responses/s with p99 < 50 ms -> {'met' if met else 'NOT met'}")
    return 0 if stored == total - failures and failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
