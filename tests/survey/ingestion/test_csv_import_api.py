"""`POST /api/v1/transactions/import`: an agency without developers sends a CSV file (a
multipart upload or a text/csv body) and gets the outcome of every row, the same outcome the
JSON API gives the same records; a broken file is a 4xx naming the line and stores nothing."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from survey.app import create_app
from survey.config import Settings
from survey.context import AppContext
from tests.conftest import FixedClock
from tests.survey.builders import add_agency, add_plan, add_staff

URL = "/api/v1/transactions/import"
HEADER = "external_id,service,channel,completed_at,phone,language,province,office"
ROWS = (
    "{a}-1,{a}-01,in_person,2026-03-09T10:00:00+03:30,0912 111 2222,fa,tehran,Central",
    "{a}-2,{a}-02,online,2026-03-09T11:00:00+03:30,+98 935 111 2222,,,",
    "{a}-3,{a}-02,online,2026-03-09T11:00:00+03:30,12,,,",
    "{a}-4,{a}-02,carrier pigeon,2026-03-09,۰۹۱۲۳۳۳۴۴۴۴,,,",
    "{a}-1,{a}-01,in_person,2026-03-09T10:00:00+03:30,0912 111 2222,fa,tehran,Central",
    "{a}-5,{a}-01,kiosk,1405-09-13T11:00:00+03:30,0912 555 6666,,,",
    '{a}-6,{a}-01,online,2026-03-09T12:00:00Z,0912 777 8888,en,fars,"Branch 2, upstairs"',
)


def csv_for(agency: str) -> str:
    return "\n".join([HEADER, *(row.format(a=agency) for row in ROWS)]) + "\n"


@pytest.fixture
def keys(context: AppContext) -> dict[str, dict[str, str]]:
    add_plan(context)
    return {
        code: {
            "Authorization": f"Bearer {add_agency(context, code, (f'{code}-01', f'{code}-02')).key}"
        }
        for code in ("TAX", "EDU")
    }


def _stored(context: AppContext, agency: str) -> int:
    with context.engine.connect() as connection:
        return int(
            connection.execute(
                sa.text(
                    "SELECT count(*) FROM service_transaction t JOIN agency a "
                    "ON a.id = t.agency_id WHERE a.code = :code"
                ),
                {"code": agency},
            ).scalar_one()
        )


def test_every_row_gets_the_outcome_the_json_api_gives_the_same_record(
    client: TestClient, context: AppContext, keys: dict[str, dict[str, str]]
) -> None:
    uploaded = client.post(
        URL,
        files={"file": ("march.csv", csv_for("TAX").encode(), "text/csv")},
        headers=keys["TAX"],
    )
    assert uploaded.status_code == 200, uploaded.text
    body = uploaded.json()
    assert body["file"] == "march.csv"
    assert (body["rows"], body["accepted"], body["duplicates"], body["rejected"]) == (7, 3, 1, 3)
    assert [r["row"] for r in body["records"]] == [2, 3, 4, 5, 6, 7, 8]

    records = list(csv.DictReader(io.StringIO(csv_for("EDU"))))
    as_json = [{k: v for k, v in r.items() if v} for r in records]
    posted = client.post("/api/v1/transactions", json=as_json, headers=keys["EDU"]).json()
    for row, record in zip(body["records"], posted["records"], strict=True):
        assert row["status"] == record["status"]
        assert row.get("external_id", "").replace("TAX", "EDU") == record.get("external_id", "")
        assert [p["field"] for p in row.get("problems", [])] == [
            p["field"] for p in record.get("problems", [])
        ]
        assert [p["message"].replace("TAX", "EDU") for p in row.get("problems", [])] == [
            p["message"] for p in record.get("problems", [])
        ]
    by_row = {r["row"]: r for r in body["records"]}
    assert by_row[4]["problems"] == [
        {
            "message": "phone '12' is not a mobile number (it has 2 digits; expected e.g. "
            "0912 345 6789)",
            "field": "phone",
        }
    ]
    assert {p["field"] for p in by_row[5]["problems"]} == {"channel", "completed_at"}
    assert by_row[6]["status"] == "duplicate"
    assert by_row[7]["problems"][0]["field"] == "completed_at"  # a Solar Hijri year, refused
    assert "2222" not in uploaded.text and "3333" not in uploaded.text  # no phone comes back
    assert _stored(context, "TAX") == 3


def test_a_text_csv_body_works_too_and_a_resend_is_all_duplicates(
    client: TestClient, context: AppContext, keys: dict[str, dict[str, str]]
) -> None:
    headers = {**keys["TAX"], "Content-Type": "text/csv; charset=utf-8"}
    first = client.post(URL, content=("\ufeff" + csv_for("TAX")).encode(), headers=headers)
    assert first.status_code == 200 and first.json()["accepted"] == 3
    assert first.json()["file"] == ""
    again = client.post(URL, content=csv_for("TAX").encode("utf-16"), headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["duplicates"] == 4 and again.json()["accepted"] == 0
    with context.engine.connect() as connection:
        audit = connection.execute(
            sa.text("SELECT actor, entity_id FROM audit_log WHERE action = 'transactions.import'")
        ).all()
    assert [tuple(row) for row in audit] == [("agency:TAX", "TAX"), ("agency:TAX", "TAX")]


@pytest.mark.parametrize(
    ("content", "wanted"),
    [
        (
            HEADER + "\nx-1,TAX-01,online,2026-03-09T10:00:00Z,0912 111 2222,,,\n"
            'x-2,TAX-01,online,2026-03-09T10:00:00Z,"0912 111 2223,,,\nx-3,TAX-01\n',
            "the record that starts on line 3 (it runs to line 4)",
        ),
        (
            (HEADER + "\nx-1,TAX-01,online,2026-03-09T10:00:00Z,0912 111 2222,,,\n").encode()
            + b"x-2,TAX-01,online,2026-03-09T10:00:00Z,0912\xff 111,,,\n",
            "line 3",
        ),
        (
            HEADER + '\nx-1,TAX-01,online,2026-03-09T10:00:00Z,"0912 111 2222"x,,,\n',
            "line 2: ',' expected after '\"'",
        ),
        (HEADER + "\nx-1,TAX-01,online,2026-03-09T10:00:00Z," + "9" * 140_000 + "\n", "line 2"),
        ("id,service,channel,completed_at,phone\nx,TAX-01,online,2026,0912\n", "external_id"),
        (HEADER + "\n", "no rows"),
        ("", "empty"),
    ],
)
def test_a_broken_file_is_a_422_naming_the_line_and_stores_nothing(
    client: TestClient,
    context: AppContext,
    keys: dict[str, dict[str, str]],
    content: str | bytes,
    wanted: str,
) -> None:
    raw = content.encode() if isinstance(content, str) else content
    response = client.post(URL, files={"file": ("bad.csv", raw, "text/csv")}, headers=keys["TAX"])
    assert response.status_code == 422, response.text
    answer = response.json()
    assert wanted in answer["error"] + " ".join(p["message"] for p in answer.get("problems", []))
    assert _stored(context, "TAX") == 0


def test_what_is_not_a_csv_upload_is_refused_clearly(
    client: TestClient, context: AppContext, keys: dict[str, dict[str, str]]
) -> None:
    as_json = client.post(URL, json=[{"external_id": "x"}], headers=keys["TAX"])
    assert as_json.status_code == 415 and "text/csv" in as_json.json()["error"]
    no_file = client.post(
        URL, data={"other": "x"}, files={"x": ("a.csv", b"a")}, headers=keys["TAX"]
    )
    assert no_file.status_code == 422
    assert no_file.json()["problems"] == [{"message": "a CSV file is required", "field": "file"}]
    staff = {"Authorization": f"Bearer {add_staff(context, 'admin', 'admin')}"}
    assert client.post(URL, content=csv_for("TAX"), headers=staff).status_code == 403
    assert client.post(URL, content=csv_for("TAX")).status_code == 401


@pytest.fixture
def small_limits(migrated_settings: Settings, clock: FixedClock) -> Iterator[TestClient]:
    settings = migrated_settings.with_overrides(max_import_rows=3, max_request_bytes=4096)
    small = AppContext.build(settings, clock=clock)
    try:
        with TestClient(create_app(settings, context=small)) as test_client:
            test_client.headers["Authorization"] = (
                f"Bearer {add_agency(small, 'TAX', ('TAX-01', 'TAX-02')).key}"
            )
            yield test_client
    finally:
        small.close()


def test_uploads_have_limits(small_limits: TestClient) -> None:
    too_many = small_limits.post(URL, content=csv_for("TAX"), headers={"Content-Type": "text/csv"})
    assert too_many.status_code == 422
    assert "the file has 7 rows; at most 3" in too_many.json()["error"]
    rows = "".join(
        f"big-{n},TAX-01,online,2026-03-09T10:00:00Z,0912 111 {n:04d},,,\n" for n in range(100)
    )
    too_big = small_limits.post(
        URL, files={"file": ("big.csv", (HEADER + "\n" + rows).encode(), "text/csv")}
    )
    assert too_big.status_code == 413
