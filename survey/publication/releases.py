"""Releases: the indices of one period, computed once, previewed as a draft, then published as an
immutable snapshot that officials and the open-data API read (issue 7).

    create_release(context, who, "1405-Q1")  -> draft (number 1 for the period)
    publish_release(context, who, id)         -> published: never changed again
    correct_release(context, who, id, note)   -> a new draft for the same period, number + 1,
                                                 that supersedes the old one and says what changed

A release's `content` is canonical JSON (sorted keys, no NaN) holding the tables from
`analysis.release.compute_release`, the registry names, the plan and questionnaire versions and
the methodology note; `content_hash` is its SHA-256. The database refuses any update or delete
of a published row (triggers in migration 0004), so "immutable" does not rest on this module.
Every act is written to the audit log in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from survey.context import AppContext
from survey.errors import Conflict, InvalidInput, NotFound, Problem
from survey.kernel import audit
from survey.kernel.db import transaction
from survey.kernel.principal import Principal
from survey.models import Release
from survey.publication import store
from survey.publication.changes import describe_changes, estimate_changes
from survey.publication.inputs import compute_snapshot, parse_release_period

if TYPE_CHECKING:
    from analysis.release import ReleaseTables

__all__ = [
    "MAX_NOTE",
    "StoredRelease",
    "content_hash",
    "correct_release",
    "create_release",
    "current_release",
    "get_published",
    "get_release",
    "latest_published",
    "list_releases",
    "publish_release",
    "published_releases",
    "snapshot_text",
]

FORMAT = 1
MAX_NOTE = 4000
STATUSES = ("draft", "published")


@dataclass(frozen=True)
class StoredRelease:
    """A release as stored: its workflow state and its snapshot (tables parsed on first use)."""

    id: int
    period: str
    status: str
    number: int
    created_at: datetime
    published_at: datetime | None
    created_by: str
    published_by: str | None
    supersedes_id: int | None
    change_note: str
    methodology: str
    plan_versions: list[int]
    questionnaire_versions: list[str]
    agencies: dict[str, dict[str, str]]
    services: dict[str, dict[str, str]]
    provinces: dict[str, dict[str, str]]
    channels: dict[str, dict[str, str]]
    content_hash: str
    period_start: date
    period_end: date  # exclusive
    previous_period: str | None
    drivers: list[str]
    data_as_of: datetime
    complete: bool
    response_count: int
    changes: list[dict[str, Any]]
    superseded_by_id: int | None
    tables_json: dict[str, Any] = field(repr=False, compare=False)

    @cached_property
    def tables(self) -> ReleaseTables:
        from analysis.release import ReleaseTables

        return ReleaseTables.from_json(self.tables_json)

    @property
    def published(self) -> bool:
        return self.status == "published"

    @property
    def last_day(self) -> date:
        """The period's last day (inclusive), as people write ranges."""
        return date.fromordinal(self.period_end.toordinal() - 1)


def canonical_json(content: dict[str, Any]) -> str:
    """The one text form of a snapshot: what is stored and hashed."""
    return json.dumps(
        content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- reading -----------------------------------------------------------------------------------

MAX_ID = 2**31 - 1  # ids beyond the column's range exist nowhere (and must not reach the driver)


def _row(session: Session, release_id: int) -> Release | None:
    return store.release_by_id(session, release_id) if 0 < release_id <= MAX_ID else None


def get_release(session: Session, release_id: int) -> StoredRelease:
    """Any release, draft or published (staff); NotFound naming the id otherwise."""
    row = _row(session, release_id)
    if row is None:
        raise NotFound(f"release {release_id} does not exist")
    return _stored(row, _superseded_by(session, [release_id]).get(release_id))


def get_published(session: Session, release_id: int) -> StoredRelease:
    """A published release (the public's view); drafts are as unknown as ids never used."""
    row = _row(session, release_id)
    if row is None or row.status != "published":
        raise NotFound(f"no published release {release_id}")
    return _stored(row, _superseded_by(session, [release_id]).get(release_id))


def snapshot_text(session: Session, release_id: int, *, published_only: bool = True) -> str:
    """The stored canonical JSON itself: its SHA-256 is the release's `content_hash`."""
    row = _row(session, release_id)
    if row is None or (published_only and row.status != "published"):
        raise NotFound(f"no published release {release_id}")
    return row.content


def published_releases(session: Session) -> list[StoredRelease]:
    """Every published release, newest publication first."""
    return list_releases(session, status="published")


def list_releases(session: Session, *, status: str | None = None) -> list[StoredRelease]:
    """Releases, newest first (published by publication time, drafts by creation)."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(
            f"status: expected one of {', '.join(STATUSES)}; got {status!r}",
            [Problem(f"expected one of {', '.join(STATUSES)}", field="status")],
        )
    rows = store.releases(session, status=status)
    rows.sort(
        key=lambda r: (r.published_at or r.created_at, r.id or 0),
        reverse=True,
    )
    later = _superseded_by(session, [int(r.id or 0) for r in rows])
    return [_stored(row, later.get(int(row.id or 0))) for row in rows]


def latest_published(session: Session) -> StoredRelease | None:
    """The release the overview shows: of the current (not superseded) published releases, the
    one whose period ends last; among equal ends the shorter period (a month before its
    quarter), then the latest publication."""
    current = [r for r in published_releases(session) if r.superseded_by_id is None]
    if not current:
        return None
    return max(
        current,
        key=lambda r: (r.period_end, r.period_start, r.published_at or r.created_at, r.id),
    )


def _superseded_by(session: Session, ids: list[int]) -> dict[int, int]:
    """For each id, the published release that corrects it (if any)."""
    if not ids:
        return {}
    return store.superseding_releases(session, ids)


_PARSED: OrderedDict[str, dict[str, Any]] = OrderedDict()
_PARSED_LOCK = threading.Lock()
PARSED_CACHE_SIZE = 64


def _content(row: Release) -> dict[str, Any]:
    """The row's snapshot, parsed once per content hash (a snapshot never changes, and the
    pages read the same releases on every request). A snapshot that does not match its hash
    is refused: someone changed it outside the service."""
    digest = row.content_hash
    with _PARSED_LOCK:
        if digest in _PARSED:
            _PARSED.move_to_end(digest)
            return _PARSED[digest]
    text = row.content
    if content_hash(text) != digest:
        raise Conflict(f"release {row.id}: its stored content does not match its hash")
    parsed: dict[str, Any] = json.loads(text)
    with _PARSED_LOCK:
        _PARSED[digest] = parsed
        while len(_PARSED) > PARSED_CACHE_SIZE:
            _PARSED.popitem(last=False)
    return parsed


def _stored(row: Release, superseded_by: int | None) -> StoredRelease:
    content = _content(row)
    names = content["names"]
    return StoredRelease(
        id=int(row.id or 0),
        period=row.period,
        status=row.status,
        number=row.number,
        created_at=row.created_at,
        published_at=row.published_at,
        created_by=row.created_by,
        published_by=row.published_by,
        supersedes_id=row.supersedes_id,
        change_note=row.change_note,
        methodology=content["methodology"],
        plan_versions=list(content["plan_versions"]),
        questionnaire_versions=list(content["questionnaire_versions"]),
        agencies=names["agencies"],
        services=names["services"],
        provinces=names["provinces"],
        channels=names["channels"],
        content_hash=row.content_hash,
        period_start=row.period_start,
        period_end=row.period_end,
        previous_period=content.get("previous_period"),
        drivers=list(content.get("drivers") or []),
        data_as_of=datetime.fromisoformat(content["data_as_of"]),
        complete=bool(content["complete"]),
        response_count=int(content["response_count"]),
        changes=list(content.get("changes") or []),
        superseded_by_id=superseded_by,
        tables_json=content["tables"],
    )


# -- the workflow ------------------------------------------------------------------------------


def create_release(context: AppContext, principal: Principal, period: str) -> StoredRelease:
    """Compute the period's tables from the current data and store them as a draft."""
    principal.require_roles("admin", "statistician")

    parsed = parse_release_period(period)
    with context.read_sessions() as session:
        head = current_release(session, parsed.label)
    if head is not None:
        raise Conflict(
            f"period {parsed.label} is already published as release {head.id} "
            f"(number {head.number}); a published release never changes: correct it with "
            f"`survey releases correct {head.id} --note ...` or POST "
            f"/api/v1/releases/{head.id}/corrections"
        )
    content = compute_snapshot(context, parsed)
    return _store_draft(context, principal, parsed.label, content, supersedes=None, note="")


def correct_release(
    context: AppContext, principal: Principal, release_id: int, note: str
) -> StoredRelease:
    """A correction: the period recomputed from the data as it is now, as a new draft that
    supersedes a published release; its note is the staff's words plus the estimates that
    differ from the release it corrects."""
    principal.require_roles("admin", "statistician")

    text = (note or "").strip()
    if not text:
        raise InvalidInput(
            "note: a correction must say what was wrong and what changed",
            [Problem("required: say what was wrong and what changed", field="note")],
        )
    if len(text) > MAX_NOTE:
        raise InvalidInput(
            f"note: at most {MAX_NOTE} characters; got {len(text)}",
            [Problem(f"at most {MAX_NOTE} characters", field="note")],
        )
    with context.read_sessions() as session:
        old = get_release(session, release_id)
        head = current_release(session, old.period)
    if not old.published:
        raise Conflict(
            f"release {release_id} is a draft: only a published release is corrected "
            "(make a new draft for the period instead)"
        )
    if head is not None and head.id != old.id:
        raise Conflict(
            f"release {release_id} is already corrected by release {head.id}; correct that one"
        )
    content = compute_snapshot(context, parse_release_period(old.period))
    changes = estimate_changes(old.tables_json, content["tables"])
    content["changes"] = changes
    full_note = text + "\n\n" + describe_changes(changes)
    return _store_draft(
        context, principal, old.period, content, supersedes=old.id, note=full_note.strip()
    )


def publish_release(context: AppContext, principal: Principal, release_id: int) -> StoredRelease:
    """Publish a draft: from now on the release is public and never changes."""
    principal.require_roles("admin", "statistician")
    now = context.clock()
    with transaction(context.sessions) as session:
        row = store.lock_release(session, release_id) if 0 < release_id <= MAX_ID else None
        if row is None:
            raise NotFound(f"release {release_id} does not exist")
        if row.status == "published":
            raise Conflict(
                f"release {release_id} was already published at {row.published_at:%Y-%m-%d %H:%M} "
                f"UTC by {row.published_by}; a published release never changes (make a "
                "correction instead)"
            )
        if content_hash(row.content) != row.content_hash:
            raise Conflict(f"release {release_id}: its content does not match its hash")
        head = current_release(session, row.period)
        if row.supersedes_id is None and head is not None:
            raise Conflict(
                f"period {row.period} is already published as release {head.id}; this draft "
                f"is not a correction of it (make one with `survey releases correct {head.id}`)"
            )
        if row.supersedes_id is not None and (head is None or head.id != row.supersedes_id):
            raise Conflict(
                f"release {release_id} corrects release {row.supersedes_id}, but the current "
                f"release of {row.period} is {head.id if head else 'none'}; make a new "
                "correction of the current one"
            )
        row.status = "published"
        row.published_at = now
        row.published_by = principal.actor
        session.flush()
        audit.record(
            session,
            principal,
            "release.publish",
            "release",
            release_id,
            before={"status": "draft"},
            after={
                "status": "published",
                "period": row.period,
                "number": row.number,
                "supersedes": row.supersedes_id,
                "content_hash": row.content_hash,
            },
            at=now,
        )
        stored = _stored(row, None)
    return stored


def current_release(session: Session, period: str) -> StoredRelease | None:
    """The current published release of a period (the highest number), if any: the one a
    correction must supersede."""
    row = store.current_published_release(session, period)
    return None if row is None else _stored(row, None)


def _store_draft(
    context: AppContext,
    principal: Principal,
    period: str,
    content: dict[str, Any],
    *,
    supersedes: int | None,
    note: str,
) -> StoredRelease:
    now = context.clock()
    content = {**content, "format": FORMAT, "supersedes_id": supersedes, "change_note": note}
    text = canonical_json(content)
    digest = content_hash(text)
    try:
        with transaction(context.sessions) as session:
            number = 1 + store.highest_release_number(session, period)
            row = Release(
                period=period,
                period_start=date.fromisoformat(content["period_start"]),
                period_end=date.fromisoformat(content["period_end"]),
                number=number,
                status="draft",
                supersedes_id=supersedes,
                change_note=note,
                content=text,
                content_hash=digest,
                created_at=now,
                created_by=principal.actor,
            )
            session.add(row)
            session.flush()
            audit.record(
                session,
                principal,
                "release.correct" if supersedes else "release.create",
                "release",
                int(row.id or 0),
                after={
                    "status": "draft",
                    "period": period,
                    "number": number,
                    "supersedes": supersedes,
                    "responses": content["response_count"],
                    "content_hash": digest,
                },
                at=now,
            )
            return _stored(row, None)
    except IntegrityError:
        raise Conflict(
            f"another release of {period} was stored at the same moment; try again"
        ) from None
