"""A client generated from `/schema/openapi.json` (openapi-python-client, offline) reports
transactions as JSON and as a CSV file, reads the agency's frame counts and the open data,
parsing every answer into the generated models: the schema is complete enough for clients."""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from survey.context import AppContext
from tests.survey.builders import add_agency, add_plan

BIN = Path(sys.executable).parent


@pytest.fixture
def generated(app: Litestar, tmp_path: Path) -> Iterator[str]:
    """The client package generated from the running app's schema, importable by its name."""
    with TestClient(app) as client:
        spec = client.get("/schema/openapi.json").json()
    (tmp_path / "openapi.json").write_text(json.dumps(spec), encoding="utf-8")
    name = "survey_client_under_test"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            "openapi.json",
            "--meta",
            "none",
            "--output-path",
            name,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for endpoint in ("POST /api/v1/transactions", "GET /api/v1/frame-counts"):
        assert f"parsing {endpoint} " not in done.stdout, done.stdout  # none was skipped
    sys.path.insert(0, str(tmp_path))
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        for module in [m for m in sys.modules if m.split(".")[0] == name]:
            del sys.modules[module]


def _module(package: str, name: str) -> ModuleType:
    return importlib.import_module(f"{package}.{name}")


def test_a_generated_client_reports_and_reads(
    app: Litestar, context: AppContext, generated: str
) -> None:
    key = add_agency(context, "TAX", ("TAX-01", "TAX-02")).key
    add_plan(context)
    models = _module(generated, "models")
    types = _module(generated, "types")
    report = _module(generated, "api.ingestion.report_transactions")
    upload = _module(generated, "api.ingestion.import_transactions_csv")
    counts = _module(generated, "api.ingestion.frame_counts")
    client_module = _module(generated, "client")

    with TestClient(app, base_url="https://testserver.local") as http:
        http.headers["Authorization"] = f"Bearer {key}"
        client = client_module.AuthenticatedClient(
            base_url="https://testserver.local", token=key
        ).set_httpx_client(http)

        records = [
            models.TransactionIn(
                external_id=f"gen-{n}",
                service="TAX-01",
                channel=models.TransactionInChannel.IN_PERSON,
                completed_at=datetime.fromisoformat("2026-03-09T10:00:00+03:30"),
                phone=phone,
            )
            for n, phone in ((1, "0912 111 2222"), (2, "12"))
        ]
        outcome = report.sync(client=client, body=records)
        assert isinstance(outcome, models.IngestResponse)
        assert [r.status.value for r in outcome.records] == ["accepted", "rejected"]
        assert outcome.records[1].problems[0].field == "phone"

        csv = (
            "external_id,service,channel,completed_at,phone\n"
            "gen-3,TAX-02,online,2026-03-09T11:00:00+03:30,0912 333 4444\n"
            "gen-1,TAX-01,in_person,2026-03-09T10:00:00+03:30,0912 111 2222\n"
        )
        file = types.File(payload=io.BytesIO(csv.encode()), file_name="march.csv")
        imported = upload.sync(client=client, body=models.CsvUpload(file=file))
        assert isinstance(imported, models.ImportResponse)
        assert imported.file == "march.csv"
        assert [(r.row, r.status.value) for r in imported.records] == [
            (2, "accepted"),
            (3, "duplicate"),
        ]

        table = counts.sync(client=client, by="agency,service")
        assert isinstance(table, models.FrameCountsResponse)
        assert {(r.agency, r.service, r.reported) for r in table.rows} == {
            ("TAX", "TAX-01", 1),
            ("TAX", "TAX-02", 1),
        }
        refused = counts.sync(client=client, agency="SSO")
        assert isinstance(refused, models.Error) and "own agency" in refused.error
