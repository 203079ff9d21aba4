"""Open data as HTTP clients and spreadsheets use it: conditional GET (ETag, If-None-Match ->
304), HEAD answered like GET without a body, one charset in the content type, and CSVs that
Excel reads as UTF-8 (a byte-order mark) while pandas reads the same numbers as before."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pandas as pd
import pytest
from litestar.testing import TestClient

from survey.config import Settings
from survey.http.conditional import etag_matches
from tests.survey.admin_builders import run, use_test_database
from tests.survey.publication import test_publication_pages as pages
from tests.survey.publication.test_publication_pages import NAMES, Published

computed = pages.computed  # the fixtures: two published months
published = pages.published

BOM = b"\xef\xbb\xbf"


def _paths(release_id: int) -> list[str]:
    base = f"/api/v1/releases/{release_id}"
    tables = ("estimates", "items", "small_areas", "codes")
    files = [f"{base}/{table}.{kind}" for table in tables for kind in ("csv", "json")]
    listing = ["/api/v1/releases", "/api/v1/releases/dictionary"]
    return [*listing, base, f"{base}/snapshot.json", *files]


def test_every_open_data_answer_has_an_etag_and_a_matching_request_gets_304(
    client: TestClient, published: Published
) -> None:
    for path in _paths(published.current_id):
        first = client.get(path)
        assert first.status_code == 200, (path, first.text)
        etag = first.headers["etag"]
        # a strong tag naming these very bytes
        assert etag == '"' + hashlib.sha256(first.content).hexdigest()[:32] + '"', path
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304, path
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == first.headers["cache-control"]
        assert "content-type" not in again.headers
        # weak form, a list and * match too; another tag does not
        for asked in (f"W/{etag}", f'"nope", {etag}', "*"):
            assert client.get(path, headers={"If-None-Match": asked}).status_code == 304
        changed = client.get(path, headers={"If-None-Match": '"0123"'})
        assert changed.status_code == 200 and changed.content == first.content


def test_head_answers_like_get_without_a_body(client: TestClient, published: Published) -> None:
    for path in _paths(published.current_id):
        got = client.get(path)
        head = client.head(path)
        assert head.status_code == 200, (path, head.status_code)
        assert head.content == b""
        for name in ("content-type", "etag", "cache-control"):
            assert head.headers[name] == got.headers[name], (path, name)
        assert head.headers["content-length"] == str(len(got.content))
    latest = client.head("/api/v1/releases/latest", follow_redirects=False)
    assert latest.status_code == 307
    assert latest.headers["location"].endswith(f"/api/v1/releases/{published.current_id}")
    missing = client.head("/api/v1/releases/4242/estimates.csv")
    assert missing.status_code == 404 and missing.content == b""
    assert client.head(f"/api/v1/releases/{published.current_id}/nope.csv").status_code == 404


def test_one_charset_and_spreadsheet_csvs_start_with_a_byte_order_mark(
    client: TestClient, published: Published
) -> None:
    base = f"/api/v1/releases/{published.current_id}"
    codes = client.get(f"{base}/codes.csv")
    assert codes.headers["content-type"] == "text/csv; charset=utf-8"
    assert codes.content.startswith(BOM)
    # Excel's reading: UTF-8 because of the mark; the Persian names come out whole
    text = codes.content.decode("utf-8-sig")
    assert NAMES["agencies"]["TAX"]["fa"] in text and "\ufeff" not in text
    table = pd.read_csv(io.BytesIO(codes.content), dtype=str)
    assert list(table.columns) == ["kind", "code", "name_fa", "name_en"]  # no mark in a name
    assert set(table.loc[table["kind"] == "agency", "name_fa"]) >= {
        NAMES["agencies"]["TAX"]["fa"],
        NAMES["agencies"]["EDU"]["fa"],
    }
    for table_name in ("estimates", "items", "small_areas"):
        answer = client.get(f"{base}/{table_name}.csv")
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert answer.content.startswith(BOM) and not answer.content.startswith(BOM * 2)
    for path in (base, f"{base}/estimates.json", "/api/v1/releases"):
        kind = client.get(path).headers["content-type"]
        assert kind == "application/json", (path, kind)
        assert kind.count("charset") <= 1


def test_numbers_read_back_unchanged_through_the_mark(
    client: TestClient, published: Published
) -> None:
    answer = client.get(f"/api/v1/releases/{published.current_id}/estimates.csv")
    got = pd.read_csv(io.BytesIO(answer.content), keep_default_na=False, na_values=[""])
    want = published.tables.estimates
    assert list(got.columns) == list(want.columns)
    index = want[(want["level"] == "national") & (want["measure"] == "index")]
    national = got[(got["level"] == "national") & (got["measure"] == "index")]
    assert national["estimate"].iloc[0] == index["estimate"].iloc[0]  # to the last digit


def test_the_files_command_writes_the_same_bytes_as_the_api(
    client: TestClient,
    published: Published,
    migrated_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`survey releases files` (for officials offline) writes what the API serves."""
    use_test_database(monkeypatch, migrated_settings)
    out = tmp_path / "files"
    code, _, err = run(capsys, "releases", "files", str(published.current_id), "--out", str(out))
    assert code == 0, err
    for table in ("estimates", "codes"):
        written = next(out.glob(f"*-{table}.csv")).read_bytes()
        served = client.get(f"/api/v1/releases/{published.current_id}/{table}.csv").content
        assert written == served and written.startswith(BOM)


def test_if_none_match_comparison() -> None:
    assert etag_matches('"abc"', '"abc"')
    assert etag_matches('W/"abc"', '"abc"')
    assert etag_matches('"x", W/"abc" , "y"', '"abc"')
    assert etag_matches(" * ", '"abc"')
    assert not etag_matches('"abcd"', '"abc"')
    assert not etag_matches("", '"abc"')
