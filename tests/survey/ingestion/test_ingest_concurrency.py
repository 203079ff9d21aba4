"""A real server under concurrent clients: frame counts stay exact; no phone is stored in clear."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn

from survey.app import create_app
from survey.config import Settings
from survey.context import AppContext
from survey.ingestion.ingest import ingest_transactions
from tests.survey.builders import add_agency, add_plan, ingestion_totals, transaction_record


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(migrated_settings: Settings, context: AppContext) -> Iterator[int]:
    """uvicorn serving the real app on a free port, against the test's database."""
    port = _free_port()
    app = create_app(migrated_settings, context=context)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    for _ in range(500):
        if uv.started:
            break
        threading.Event().wait(0.01)
    assert uv.started, "server did not start"
    yield port
    uv.should_exit = True
    thread.join(timeout=10)


def test_frame_counts_are_exact_under_eight_concurrent_clients(
    context: AppContext, server: int
) -> None:
    tax = add_agency(context, "TAX", ("TAX-01", "TAX-02"))
    add_plan(context)
    clients, batches, size = 8, 5, 150
    plans: list[tuple[int, dict[str, Any] | list[dict[str, Any]]]] = []
    for c in range(clients):
        for b in range(batches):
            start = (c * batches + b) * 60  # batches overlap their neighbours: resends
            batch = [
                transaction_record(
                    n,
                    service="TAX-02" if n % 3 else "TAX-01",
                    channel=("online", "in_person", "phone")[n % 3],
                )
                for n in range(start, start + size)
            ]
            batch.append(transaction_record(10**6 + c * 100 + b, phone="12"))  # rejected
            plans.append((c, batch))
            # Small requests, committed together by the server: singles and pairs that
            # overlap other clients' (and the batches') ids.
            for k in range(8):
                n = 7_000 + (c * batches + b) * 5 + k
                small = transaction_record(n, phone=f"0935{n % 50:07d}")
                plans.append((c, small if k % 2 else [small, transaction_record(n + 3)]))
    flat = [r for _, body in plans for r in (body if isinstance(body, list) else [body])]
    posted_ids = [r["external_id"] for r in flat if r["phone"] != "12"]
    distinct = len(set(posted_ids))
    results: list[dict] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(clients)

    def client(c: int) -> None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server, timeout=60)
            barrier.wait()
            for owner, batch in plans:
                if owner != c:
                    continue
                connection.request(
                    "POST",
                    "/api/v1/transactions",
                    body=json.dumps(batch),
                    headers={
                        "Authorization": f"Bearer {tax.key}",
                        "Content-Type": "application/json",
                    },
                )
                response = connection.getresponse()
                body = response.read()
                assert response.status == 200, body
                results.append(json.loads(body))
            connection.close()
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sum(r["accepted"] for r in results) == distinct
    assert sum(r["duplicates"] for r in results) == len(posted_ids) - distinct
    assert sum(r["rejected"] for r in results) == clients * batches
    totals = ingestion_totals(context)
    assert totals.stored == distinct
    # The contact rule held across concurrent requests: no phone was invited twice.
    assert totals.phones_invited_twice == 0
    assert totals.reported == distinct
    assert totals.duplicates == len(posted_ids) - distinct
    assert totals.eligible + totals.ineligible == distinct
    assert totals.sampled == totals.units == totals.sampled_outcomes


PHONES = [f"0912{n:07d}" for n in (1234567, 7654321, 5550000, 5551234)] + ["09351112233"]


def _forms(national: str) -> list[str]:
    """Ways a phone could be written into a database file."""
    digits = national[1:]
    persian = national.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    return [
        f"+98{digits}",
        f"98{digits}",
        national,
        digits,
        persian,
        f"{national[:4]} {national[4:7]} {national[7:]}",
    ]


def test_no_plaintext_phone_is_stored_anywhere(
    context: AppContext, migrated_settings: Settings, tmp_path: Path
) -> None:
    add_agency(context, "TAX", ("TAX-01", "TAX-02"))
    add_plan(context)
    records = []
    for i, phone in enumerate(PHONES):
        # Sampled for certain (rate 1.0), maybe (0.5), and sent in every usual form.
        records.append(transaction_record(i, phone=f"+98 {phone[1:4]} {phone[4:]}"))
        records.append(
            transaction_record(100 + i, service="TAX-02", phone=phone, office=f"office {i}")
        )
    result = ingest_transactions(context, "TAX", records)
    assert result.accepted == len(records)
    with context.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM sampled_unit")).scalar()
    if migrated_settings.is_sqlite:
        db_file = Path(migrated_settings.database_url.removeprefix("sqlite:///"))
        files = [p for p in (db_file, Path(f"{db_file}-wal")) if p.exists()]
        content = b"".join(p.read_bytes() for p in files)
        texts = [content]
    else:
        with context.engine.connect() as connection:
            tables = sa.inspect(connection).get_table_names()
            texts = [
                "\n".join(
                    str(row[0])
                    for row in connection.exec_driver_sql(f'SELECT t::text FROM "{table}" t')
                ).encode()
                for table in tables
            ]
    # The search reads what was written: the offices reported beside the phones are there.
    assert any(b"office 4" in text for text in texts)
    for phone in PHONES:
        for form in _forms(phone):
            for text in texts:
                assert form.encode() not in text, f"{form!r} found in the database"
