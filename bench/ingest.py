"""Ingestion throughput over HTTP: batches of 1,000 and single transactions.

    python bench/ingest.py                      # starts `survey serve` on a temp SQLite file
    python bench/ingest.py --url http://H:P --key agk_...   # targets a running server

Without --url it creates a temporary database, seeds one agency with four services, an API key
and the issue's example plan through the `survey` command itself, and runs `survey serve` on a
free port. Clients are threads with keep-alive `http.client` connections and bodies encoded
before the clock starts, so the client spends as little of the shared CPU as possible.
Phones are distinct random mobiles (no help from the server's phone cache), external ids are
unique, so every transaction is new work. Prints transactions/s and p50/p99 request latency.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

SERVICES = [("TAX-01", "in_person"), ("TAX-02", "online"), ("TAX-03", "phone"), ("TAX-04", "kiosk")]
PLAN = """name: bench
starts: 2026-01-01
strata: [agency, service, channel]
default_rate: 0.1
rates:
  - {service: TAX-01, channel: in_person, rate: 0.3}
contact_rule_days: 90
quiet_hours: null
reminder_after_hours: 48
expires_after_days: 7
questionnaires:
  - {service: TAX-01, questionnaire: core-transaction, mode: sms_link}
  - {service: TAX-02, questionnaire: sms-short, mode: sms_dialog}
"""
CLI = "import sys; from survey.cli import main; sys.exit(main(sys.argv[1:]))"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--key", help="the agency key for --url")
    parser.add_argument("--batches", type=int, default=120, help="batches of --batch-size")
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument(
        "--batch-clients", type=int, help="clients posting batches (default: 2 per worker)"
    )
    parser.add_argument("--singles", type=int, default=6_000, help="single-transaction requests")
    parser.add_argument(
        "--single-clients", type=int, help="clients posting singles (default: 8 per worker)"
    )
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    args = parser.parse_args()
    # Each keep-alive connection stays with the worker that accepted it: enough of them that
    # every worker gets some.
    args.batch_clients = args.batch_clients or 2 * args.workers
    args.single_clients = args.single_clients or 8 * args.workers

    server = None
    if args.url:
        if not args.key:
            parser.error("--url needs --key (the agency's API key)")
        base, key = args.url, args.key
    else:
        workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
        env = _environment(workdir)
        key = _seed(env, workdir)
        port = _free_port()
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
            stdout=subprocess.DEVNULL,
            # A file, not a pipe: the server logs every request, and a pipe nobody reads
            # fills up and blocks it.
            stderr=open(workdir / "server.log", "wb"),  # noqa: SIM115
        )
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base, server, workdir / "server.log")
        print(
            f"server: survey serve on {base}, SQLite {workdir / 'bench.db'}, "
            f"{args.workers} worker(s)"
        )
    try:
        rng = random.Random(20261124)
        run = secrets.token_hex(4)
        batches = [
            json.dumps([_record(rng, f"{run}-b{b}-{i}") for i in range(args.batch_size)]).encode()
            for b in range(args.batches)
        ]
        singles = [json.dumps(_record(rng, f"{run}-s{i}")).encode() for i in range(args.singles)]
        # Warm up (connections, caches, first compilation of statements).
        _run(base, key, [json.dumps([_record(rng, f"{run}-w{i}") for i in range(50)]).encode()], 1)

        pid = server.pid if server is not None and args.workers == 1 else None
        for what, bodies, count, clients in (
            (
                f"batches of {args.batch_size}",
                batches,
                args.batches * args.batch_size,
                args.batch_clients,
            ),
            ("single transactions", singles, args.singles, args.single_clients),
        ):
            if not count:  # --batches 0 or --singles 0: that part is skipped
                continue
            cpu = _cpu_seconds(pid)
            seconds, latencies, accepted = _run(base, key, bodies, clients)
            _report(what, count, accepted, seconds, latencies, clients, _cpu_seconds(pid) - cpu)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
    return 0


def _record(rng: random.Random, external_id: str) -> dict[str, str]:
    service, channel = rng.choice(SERVICES)
    return {
        "external_id": external_id,
        "service": service,
        "channel": channel,
        "completed_at": f"2026-03-{rng.randint(1, 9):02d}T{rng.randint(8, 17):02d}:15:00+03:30",
        "phone": f"09{rng.choice((12, 13, 19, 35, 36, 90, 91))}{rng.randrange(10**7):07d}",
        "province": rng.choice(("tehran", "fars", "isfahan", "khorasan-razavi")),
    }


def _run(base: str, key: str, bodies: list[bytes], clients: int) -> tuple[float, list[float], int]:
    """Post `bodies` from `clients` keep-alive connections; wall time, latencies, accepted."""
    parts = urlsplit(base)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    queue = list(reversed(bodies))
    lock = threading.Lock()
    latencies: list[float] = []
    responses: list[bytes] = []
    failures: list[str] = []
    barrier = threading.Barrier(clients + 1)

    def client() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        mine: list[float] = []
        bodies_back: list[bytes] = []
        barrier.wait()
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            started = time.perf_counter()
            connection.request("POST", "/api/v1/transactions", body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                failures.append(f"{response.status}: {payload[:200]!r}")
            bodies_back.append(payload)
        connection.close()
        with lock:
            latencies.extend(mine)
            responses.extend(bodies_back)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    accepted = sum(json.loads(body)["accepted"] for body in responses)
    return seconds, latencies, accepted


def _cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) the server process has used so far; 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _report(
    what: str,
    transactions: int,
    accepted: int,
    seconds: float,
    latencies: list[float],
    clients: int,
    server_cpu: float,
) -> None:
    ordered = sorted(latencies)

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    print(
        f"{what}: {transactions} transactions ({accepted} accepted) in {len(ordered)} requests "
        f"from {clients} clients, {seconds:.2f} s: {transactions / seconds:,.0f} tx/s, "
        f"{len(ordered) / seconds:,.0f} requests/s; latency p50 {percentile(0.50):.1f} ms, "
        f"p99 {percentile(0.99):.1f} ms"
    )
    if server_cpu > 0:
        # Independent of other load on the machine: what one fully used server core sustains.
        print(
            f"  server CPU {server_cpu:.2f} s = {server_cpu / transactions * 1e6:.0f} us per "
            f"transaction = {transactions / server_cpu:,.0f} tx/s per fully used core"
        )


def _environment(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SURVEY_DATABASE_URL": f"sqlite:///{(workdir / 'bench.db').as_posix()}",
            "SURVEY_SECRET_KEY": secrets.token_hex(32),
            "SURVEY_VAR_DIR": str(workdir / "var"),
            "SURVEY_ENV": "development",
            # Ingestion alone: the SMS dispatcher `survey serve` runs has its own bench
            # (bench/dispatch.py); here it would only compete for the CPU and the writer.
            "SURVEY_DISPATCH_IN_SERVE": "0",
        }
    )
    return env


def _survey(env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CLI, *arguments],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"survey {' '.join(arguments)} failed:\n{done.stderr}")
    return done.stdout


def _seed(env: dict[str, str], workdir: Path) -> str:
    """One agency, its services and the plan, through the `survey` command; returns the key."""
    out = _survey(
        env,
        "agencies",
        "add",
        "--code",
        "TAX",
        "--name-fa",
        "سازمان امور مالیاتی",
        "--name-en",
        "Tax Administration",
    )
    key = out.strip().splitlines()[-1].strip()
    for code, _ in SERVICES:
        _survey(
            env,
            "services",
            "add",
            "--agency",
            "TAX",
            "--code",
            code,
            "--name-fa",
            f"خدمت {code}",
            "--name-en",
            f"Service {code}",
        )
    plan = workdir / "plan.yaml"
    plan.write_text(PLAN, encoding="utf-8")
    _survey(env, "plans", "apply", str(plan))
    return key


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text(errors='replace')[-4000:]}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start within 30 s")


if __name__ == "__main__":
    sys.exit(main())
