"""What the releases API answers, as typed documents (`survey.publication.api` serves them).

Open data reads published releases only (a draft or an unknown id is NotFound alike); staff
read drafts and previews, and create, publish and correct releases (survey.publication.releases
checks their roles and writes the audit log). An agency operator's preview holds only its own
agency's estimates and changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from survey.context import AppContext
from survey.errors import NotFound
from survey.kernel.principal import Principal
from survey.publication import releases
from survey.publication.open_data import (
    ReleaseDetail,
    ReleaseList,
    detail_fields,
    parse_file_name,
    release_detail,
    release_list,
    spreadsheet_csv,
    table_frame,
    table_json,
    table_records,
)

__all__ = [
    "ReleaseFile",
    "ReleasePreview",
    "correct_release",
    "create_release",
    "draft_releases",
    "latest_published_id",
    "preview_release",
    "publish_release",
    "published_release",
    "published_releases",
    "release_file",
]

JSON = "application/json"
CSV = "text/csv"  # the framework adds "; charset=utf-8" to text types


class ReleasePreview(ReleaseDetail, kw_only=True):
    """A release as staff preview it: with who made and published it, and its estimates."""

    published_by: str | None
    created_by: str
    estimates: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ReleaseFile:
    """One file of a published release: its bytes, media type and file name (the CSV tables';
    the HTTP layer tags the bytes with their hash)."""

    content: bytes
    media_type: str
    filename: str | None = None


# -- open data ------------------------------------------------------------------------------------


def published_releases(context: AppContext) -> ReleaseList:
    """Published releases, newest first."""
    with context.read_sessions() as session:
        return release_list(releases.published_releases(session))


def latest_published_id(context: AppContext) -> int:
    """The id of the release the overview shows."""
    with context.read_sessions() as session:
        found = releases.latest_published(session)
    if found is None:
        raise NotFound("no release has been published yet")
    return found.id


def published_release(context: AppContext, release_id: int) -> ReleaseDetail:
    """A published release (its `content_hash` is its entity tag)."""
    with context.read_sessions() as session:
        return release_detail(releases.get_published(session, release_id))


def release_file(context: AppContext, release_id: int, file: str) -> ReleaseFile:
    """`snapshot.json` (the stored snapshot itself) or a table as `<table>.csv|.json`."""
    if file == "snapshot.json":
        with context.read_sessions() as session:
            text = releases.snapshot_text(session, release_id)
        return ReleaseFile(text.encode("utf-8"), JSON)
    table, fmt = parse_file_name(file)
    with context.read_sessions() as session:
        found = releases.get_published(session, release_id)
    frame = table_frame(found, table)
    if fmt == "csv":
        name = f"release-{found.id}-{found.period}-{table}.csv"
        return ReleaseFile(spreadsheet_csv(frame), CSV, name)
    return ReleaseFile(table_json(found, table, frame), JSON)


# -- staff ----------------------------------------------------------------------------------------


def draft_releases(context: AppContext) -> ReleaseList:
    """Draft releases, newest first."""
    with context.read_sessions() as session:
        return release_list(releases.list_releases(session, status="draft"))


def preview_release(context: AppContext, principal: Principal, release_id: int) -> ReleasePreview:
    """Any release with its estimates; an agency operator sees only its own agency's."""
    with context.read_sessions() as session:
        found = releases.get_release(session, release_id)
    fields = detail_fields(found)
    estimates = table_records(table_frame(found, "estimates"))
    if principal.role == "agency":  # an operator sees only its own agency's results
        own = principal.agency_code
        estimates = [row for row in estimates if row.get("agency") == own]
        changes = fields["changes"] or []
        fields["changes"] = [c for c in changes if isinstance(c, dict) and c.get("agency") == own]
    return ReleasePreview(
        **fields,
        published_by=found.published_by,
        created_by=found.created_by,
        estimates=estimates,
    )


def create_release(context: AppContext, principal: Principal, period: str) -> ReleaseDetail:
    """Compute a draft release of `period`."""
    return release_detail(releases.create_release(context, principal, period))


def publish_release(context: AppContext, principal: Principal, release_id: int) -> ReleaseDetail:
    """Publish a draft (a published release never changes)."""
    return release_detail(releases.publish_release(context, principal, release_id))


def correct_release(
    context: AppContext, principal: Principal, release_id: int, note: str
) -> ReleaseDetail:
    """A correcting draft of a published release."""
    return release_detail(releases.correct_release(context, principal, release_id, note))
