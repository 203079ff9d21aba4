"""A release's tables as open data: CSV and JSON, the same columns, numbers at full precision
(so a download equals what `analysis.release.compute_release` computed, to the last digit)."""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import numpy as np
import pandas as pd

from survey.errors import NotFound
from survey.kernel.spreadsheet import csv_text
from survey.publication.dictionary import DICTIONARY
from survey.publication.releases import StoredRelease

__all__ = [
    "TABLE_NAMES",
    "ReleaseDetail",
    "ReleaseList",
    "ReleaseNames",
    "ReleaseSummary",
    "detail_fields",
    "parse_file_name",
    "release_detail",
    "release_list",
    "release_summary",
    "spreadsheet_csv",
    "table_csv",
    "table_frame",
    "table_json",
    "table_records",
]

TABLE_NAMES = tuple(DICTIONARY)
FORMATS = ("csv", "json")


def table_frame(release: StoredRelease, name: str) -> pd.DataFrame:
    """One of the release's tables; NotFound naming the tables that exist."""
    if name == "codes":
        return _codes(release)
    if name not in TABLE_NAMES:
        raise NotFound(f"no table {name!r}; the tables are {', '.join(TABLE_NAMES)}")
    return pd.DataFrame(getattr(release.tables, name))


def parse_file_name(file: str) -> tuple[str, str]:
    """`estimates.csv` -> ("estimates", "csv"); NotFound naming what exists otherwise."""
    table, dot, fmt = file.rpartition(".")
    if not dot or fmt not in FORMATS or table not in TABLE_NAMES:
        choices = ", ".join(f"{t}.{f}" for t in TABLE_NAMES for f in FORMATS)
        raise NotFound(f"no file {file!r} in a release; the files are {choices}")
    return table, fmt


def _codes(release: StoredRelease) -> pd.DataFrame:
    rows = [
        (kind, code, names["fa"], names["en"])
        for kind, table in (
            ("agency", release.agencies),
            ("service", release.services),
            ("province", release.provinces),
            ("channel", release.channels),
        )
        for code, names in sorted(table.items())
    ]
    return pd.DataFrame(rows, columns=["kind", "code", "name_fa", "name_en"])


def table_csv(frame: pd.DataFrame) -> str:
    """CSV text, one header line, empty cells for missing values, floats at full precision;
    a text cell a spreadsheet would run as a formula is neutralised (survey.kernel.spreadsheet:
    agency and service names come from people)."""
    return csv_text(frame)


BYTE_ORDER_MARK = "\ufeff"


def spreadsheet_csv(frame: pd.DataFrame) -> bytes:
    """The open-data CSV file: UTF-8 with a byte-order mark, which is how Excel knows the file
    is UTF-8 (without it the Persian names of codes.csv come out garbled); pandas, R's readr
    and LibreOffice read the mark as such."""
    return (BYTE_ORDER_MARK + table_csv(frame)).encode("utf-8")


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def table_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = list(frame.columns)
    return [
        {c: _plain(v) for c, v in zip(columns, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


def table_json(release: StoredRelease, name: str, frame: pd.DataFrame) -> bytes:
    body = {
        "release": release.id,
        "period": release.period,
        "table": name,
        "columns": list(frame.columns),
        "rows": table_records(frame),
    }
    return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")


class ReleaseSummary(msgspec.Struct, kw_only=True):
    """What a listing shows of a release, with the stable URLs of its files."""

    id: int
    period: str
    number: int
    status: str
    period_start: str  # ISO date
    period_last_day: str  # ISO date
    complete: bool
    published_at: str | None  # ISO time (UTC)
    supersedes_id: int | None
    superseded_by_id: int | None
    response_count: int
    content_hash: str
    url: str
    files: dict[str, dict[str, str]]  # table -> format -> URL


class ReleaseNames(msgspec.Struct, kw_only=True):
    """Names of the codes in a release's tables (code -> {"fa": ..., "en": ...})."""

    agencies: dict[str, dict[str, str]]
    services: dict[str, dict[str, str]]
    provinces: dict[str, dict[str, str]]
    channels: dict[str, dict[str, str]]


class ReleaseDetail(ReleaseSummary, kw_only=True):
    """Everything about a release except its table rows (those are in the files)."""

    created_at: str
    data_as_of: str
    previous_period: str | None
    change_note: str
    changes: list[dict[str, Any]]
    methodology: str
    plan_versions: list[int]
    questionnaire_versions: list[str]
    drivers: list[str]
    names: ReleaseNames
    snapshot: str
    dictionary: str


class ReleaseList(msgspec.Struct, kw_only=True):
    """`{"releases": [...]}`, newest first."""

    releases: list[ReleaseSummary]


def _summary_fields(release: StoredRelease, base: str) -> dict[str, Any]:
    url = f"{base}/{release.id}"
    return {
        "id": release.id,
        "period": release.period,
        "number": release.number,
        "status": release.status,
        "period_start": release.period_start.isoformat(),
        "period_last_day": release.last_day.isoformat(),
        "complete": release.complete,
        "published_at": release.published_at.isoformat() if release.published_at else None,
        "supersedes_id": release.supersedes_id,
        "superseded_by_id": release.superseded_by_id,
        "response_count": release.response_count,
        "content_hash": release.content_hash,
        "url": url,
        "files": {name: {fmt: f"{url}/{name}.{fmt}" for fmt in FORMATS} for name in TABLE_NAMES},
    }


def detail_fields(release: StoredRelease, base: str = "/api/v1/releases") -> dict[str, Any]:
    """The fields of `ReleaseDetail`, for schemas that extend it."""
    return {
        **_summary_fields(release, base),
        "created_at": release.created_at.isoformat(),
        "data_as_of": release.data_as_of.isoformat(),
        "previous_period": release.previous_period,
        "change_note": release.change_note,
        "changes": release.changes,
        "methodology": release.methodology,
        "plan_versions": release.plan_versions,
        "questionnaire_versions": release.questionnaire_versions,
        "drivers": release.drivers,
        "names": ReleaseNames(
            agencies=release.agencies,
            services=release.services,
            provinces=release.provinces,
            channels=release.channels,
        ),
        "snapshot": f"{base}/{release.id}/snapshot.json",
        "dictionary": f"{base}/dictionary",
    }


def release_summary(release: StoredRelease, *, base: str = "/api/v1/releases") -> ReleaseSummary:
    """What a listing shows of a release, with the stable URLs of its files."""
    return ReleaseSummary(**_summary_fields(release, base))


def release_list(found: list[StoredRelease]) -> ReleaseList:
    return ReleaseList(releases=[release_summary(r) for r in found])


def release_detail(release: StoredRelease, *, base: str = "/api/v1/releases") -> ReleaseDetail:
    """Everything about a release except its table rows (those are in the files)."""
    return ReleaseDetail(**detail_fields(release, base))
