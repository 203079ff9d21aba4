"""The publication workflow over HTTP: a statistician computes a draft, previews it, publishes
it; the public reads only published releases, as CSV and JSON equal to the analysis package's
results for the same export; corrections are new releases that say what changed."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, date, datetime

import pandas as pd
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from analysis.release import compute_release
from survey.context import AppContext
from survey.models import AuditLog
from survey.publication.dictionary import DICTIONARY
from survey.publication.inputs import METHODS_FILE
from survey.results.export import export_responses
from tests.survey.release_builders import answered_period, release_world

FARVARDIN = (date(2026, 3, 21), date(2026, 4, 20))  # 1405-01, inclusive
ESFAND = (date(2026, 2, 20), date(2026, 3, 20))  # 1404-12


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def after_farvardin(clock):  # type: ignore[no-untyped-def]
    clock.now = datetime(2026, 5, 2, 8, 0, tzinfo=UTC)
    return clock


def _expected_tables(context: AppContext):  # type: ignore[no-untyped-def]
    """What the analysis package computes from the same exports, called directly."""
    current = export_responses(context, *FARVARDIN)
    previous = export_responses(context, *ESFAND)
    drivers = ["q_time", "q_respect", "q_competence", "q_information", "q_fairness", "q_ease"]
    return compute_release(
        current.responses,
        current.frame_counts,
        previous=(previous.responses, previous.frame_counts),
        drivers=drivers,
    )


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """A table as its CSV reads back (so both sides have the same dtypes)."""
    return pd.read_csv(
        io.StringIO(frame.to_csv(index=False)), keep_default_na=False, na_values=[""]
    )


def test_draft_preview_publish_and_open_data(
    context: AppContext, client: TestClient, after_farvardin
) -> None:  # type: ignore[no-untyped-def]
    world = release_world(context)
    statistician = _bearer(world.staff_key("statistician"))
    viewer = _bearer(world.staff_key("viewer"))

    assert (
        client.post("/api/v1/releases", json={"period": "1405-01"}, headers=viewer).status_code
        == 403
    )
    assert client.post("/api/v1/releases", json={"period": "1405-01"}).status_code == 401
    created = client.post("/api/v1/releases", json={"period": "۱۴۰۵-۰۱"}, headers=statistician)
    assert created.status_code == 201, created.text
    draft = created.json()
    rid = draft["id"]
    assert (draft["period"], draft["number"], draft["status"]) == ("1405-01", 1, "draft")
    assert draft["previous_period"] == "1404-12" and draft["complete"] is True
    assert draft["response_count"] == 100
    assert draft["plan_versions"] == [1] and draft["questionnaire_versions"] == [
        "core-transaction@1"
    ]
    assert draft["names"]["agencies"]["EDU"] == {"fa": "دستگاه EDU", "en": "Agency EDU"}
    assert set(draft["names"]["provinces"]) == {"tehran", "fars"}
    assert draft["names"]["channels"]["online"]["en"]
    assert "## This release" in draft["methodology"]
    assert "- questionnaires: core-transaction@1 (100 responses)\n" in draft["methodology"] + "\n"
    assert draft["methodology"].startswith(METHODS_FILE.read_text(encoding="utf-8").strip()[:200])

    # The public sees nothing of a draft: the same 404 as an id never used.
    for path in ("", "/estimates.csv", "/estimates.json", "/snapshot.json"):
        assert client.get(f"/api/v1/releases/{rid}{path}").status_code == 404
        assert client.get(f"/api/v1/releases/999{path}").status_code == 404
        assert client.get(f"/api/v1/releases/{10**20}{path}").status_code == 404
    assert client.get("/api/v1/releases").json() == {"releases": []}
    assert client.get("/api/v1/releases/latest", follow_redirects=False).status_code == 404
    preview = client.get(f"/api/v1/releases/{rid}/preview", headers=viewer)
    assert preview.status_code == 200 and len(preview.json()["estimates"]) > 10
    assert client.get(f"/api/v1/releases/{rid}/preview").status_code == 401
    drafts = client.get("/api/v1/releases/drafts", headers=viewer).json()["releases"]
    assert [d["id"] for d in drafts] == [rid]

    published = client.post(f"/api/v1/releases/{rid}/publish", headers=statistician)
    assert published.status_code == 200, published.text
    assert published.json()["published_at"] == after_farvardin.now.isoformat()
    again = client.post(f"/api/v1/releases/{rid}/publish", headers=statistician)
    assert again.status_code == 409 and "already published" in again.json()["error"]
    assert client.post("/api/v1/releases/4242/publish", headers=statistician).status_code == 404

    # Open data: the CSV and JSON numbers are the analysis package's numbers, to the digit.
    expected = _expected_tables(context)
    for table in ("estimates", "items", "small_areas"):
        csv = client.get(f"/api/v1/releases/{rid}/{table}.csv")
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert "max-age" in csv.headers["cache-control"]
        got = pd.read_csv(io.StringIO(csv.text), keep_default_na=False, na_values=[""])
        want = _comparable(getattr(expected, table))
        assert len(want) > 0
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        body = client.get(f"/api/v1/releases/{rid}/{table}.json").json()
        assert body["columns"] == list(getattr(expected, table).columns)
        assert pd.DataFrame(body["rows"], columns=body["columns"]).shape == want.shape
        documented = [c["name"] for c in _dictionary(client)[table]]
        assert body["columns"] == documented  # every column is in the dictionary, in order
    estimates = expected.estimates.set_index(["level", "agency", "measure"])
    json_rows = client.get(f"/api/v1/releases/{rid}/estimates.json").json()["rows"]
    national = next(r for r in json_rows if r["level"] == "national" and r["measure"] == "index")
    assert national["estimate"] == estimates.loc[("national", "", "index"), "estimate"]
    agencies = [r for r in json_rows if r["level"] == "agency" and r["measure"] == "index"]
    assert {r["agency"]: r["rank"] for r in agencies} == {"EDU": 1, "TAX": 2}

    codes = pd.read_csv(io.StringIO(client.get(f"/api/v1/releases/{rid}/codes.csv").text))
    assert {"agency", "service", "province", "channel"} == set(codes["kind"])
    assert set(codes.columns) == {c.name for c in DICTIONARY["codes"]}
    snapshot = client.get(f"/api/v1/releases/{rid}/snapshot.json")
    detail = client.get(f"/api/v1/releases/{rid}").json()
    assert hashlib.sha256(snapshot.content).hexdigest() == detail["content_hash"]
    assert detail["files"]["estimates"]["csv"] == f"/api/v1/releases/{rid}/estimates.csv"
    assert "published_by" not in detail  # staff names stay internal
    assert client.get(f"/api/v1/releases/{rid}/estimates.xlsx").status_code == 404
    assert "estimates.csv" in client.get(f"/api/v1/releases/{rid}/nope.csv").json()["error"]
    latest = client.get("/api/v1/releases/latest", follow_redirects=False)
    assert latest.status_code == 307 and latest.headers["location"] == f"/api/v1/releases/{rid}"

    with context.read_sessions() as session:
        entries = session.execute(
            sa.select(AuditLog.action, AuditLog.actor, AuditLog.entity_id, AuditLog.at)
            .where(AuditLog.entity == "release")
            .order_by(AuditLog.id)
        ).all()
    assert [(a, e) for a, _, e, _ in entries] == [
        ("release.create", str(rid)),
        ("release.publish", str(rid)),
    ]
    assert all(actor.startswith("staff:statistician-") for _, actor, _, _ in entries)
    assert all(at == after_farvardin.now for *_, at in entries)


def _dictionary(client: TestClient) -> dict[str, list[dict[str, object]]]:
    body = client.get("/api/v1/releases/dictionary").json()
    tables = {t["table"]: t["columns"] for t in body["tables"]}
    for columns in tables.values():
        for column in columns:
            assert column["description"]["fa"] and column["description"]["en"]  # type: ignore[index]
    return tables


def test_a_correction_is_a_new_release_that_says_what_changed(
    context: AppContext, client: TestClient, after_farvardin
) -> None:  # type: ignore[no-untyped-def]
    world = release_world(context)
    admin = _bearer(world.staff_key("admin"))
    first = client.post("/api/v1/releases", json={"period": "1405-01"}, headers=admin).json()["id"]
    assert client.post(f"/api/v1/releases/{first}/publish", headers=admin).status_code == 200
    before_csv = client.get(f"/api/v1/releases/{first}/estimates.csv").content
    before_detail = client.get(f"/api/v1/releases/{first}").json()

    again = client.post("/api/v1/releases", json={"period": "1405-01"}, headers=admin)
    assert again.status_code == 409 and f"correct {first}" in again.json()["error"]
    no_note = client.post(
        f"/api/v1/releases/{first}/corrections", json={"note": "  "}, headers=admin
    )
    assert no_note.status_code == 422 and no_note.json()["problems"][0]["field"] == "note"

    # Late responses from an office that had not synchronised arrive, and TAX is liked more.
    answered_period(world, date(2026, 3, 28), per_cell=10, seed=3, shift={"TAX": 2})
    fixed = client.post(
        f"/api/v1/releases/{first}/corrections",
        json={"note": "Responses from offices that synchronised late are now included."},
        headers=admin,
    )
    assert fixed.status_code == 201, fixed.text
    correction = fixed.json()
    assert (correction["number"], correction["supersedes_id"]) == (2, first)
    assert correction["response_count"] == 150
    assert correction["change_note"].startswith("Responses from offices that synchronised late")
    assert "Estimates that differ from the corrected release:" in correction["change_note"]
    assert "agency agency=TAX index" in correction["change_note"]
    national = [
        c for c in correction["changes"] if c["level"] == "national" and c["measure"] == "index"
    ]
    assert len(national) == 1 and national[0]["before"] != national[0]["after"]
    old_national = next(
        r
        for r in client.get(f"/api/v1/releases/{first}/estimates.json").json()["rows"]
        if r["level"] == "national" and r["measure"] == "index"
    )
    assert national[0]["before"] == old_national["estimate"]

    # Until the correction is published the public still sees the first release only.
    assert client.get(f"/api/v1/releases/{correction['id']}").status_code == 404
    assert (
        client.post(f"/api/v1/releases/{correction['id']}/publish", headers=admin).status_code
        == 200
    )
    listed = client.get("/api/v1/releases").json()["releases"]
    assert [(r["id"], r["superseded_by_id"]) for r in listed] == [
        (correction["id"], None),
        (first, correction["id"]),
    ]
    # The first release is still there, byte for byte.
    assert client.get(f"/api/v1/releases/{first}/estimates.csv").content == before_csv
    assert (
        client.get(f"/api/v1/releases/{first}").json()["content_hash"]
        == before_detail["content_hash"]
    )
    stale = client.post(f"/api/v1/releases/{first}/corrections", json={"note": "x"}, headers=admin)
    assert (
        stale.status_code == 409
        and f"corrected by release {correction['id']}" in stale.json()["error"]
    )
    with context.read_sessions() as session:
        actions = session.scalars(
            sa.select(AuditLog.action).where(AuditLog.entity == "release").order_by(AuditLog.id)
        ).all()
    assert actions == ["release.create", "release.publish", "release.correct", "release.publish"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"period": "1405-13"}, 422, "month from 01 to 12"),
        ({"period": "spring"}, 422, "1405-Q1"),
        ({"period": "2026-03"}, 422, "Solar Hijri"),
        ({"period": "1406-01"}, 422, "no completed responses"),
        ({"period": "1405-01", "extra": 1}, 422, "extra"),
        ({}, 422, "period"),
    ],
)
def test_bad_requests_name_what_is_wrong(
    context: AppContext, client: TestClient, body: dict[str, object], status: int, words: str
) -> None:
    world = release_world(context)
    response = client.post("/api/v1/releases", json=body, headers=_bearer(world.staff_key("admin")))
    assert response.status_code == status
    assert words in response.text
