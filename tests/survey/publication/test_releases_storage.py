"""Release storage and workflow rules that do not need the computation: reading, ordering,
publishing once, and the database refusing to change a published release."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from survey.context import AppContext
from survey.errors import Conflict, NotFound
from survey.kernel.db import transaction
from survey.kernel.principal import Principal
from survey.models import AuditLog, Release
from survey.publication.releases import (
    canonical_json,
    content_hash,
    get_published,
    get_release,
    latest_published,
    publish_release,
    published_releases,
)

STATISTICIAN = Principal(kind="staff", name="sara", role="statistician")


def _content(period: str, start: date, end: date) -> dict[str, object]:
    return {
        "period": period,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "previous_period": None,
        "data_as_of": "2026-06-01T00:00:00+00:00",
        "complete": True,
        "response_count": 3,
        "plan_versions": [1],
        "questionnaire_versions": ["core-transaction@1"],
        "drivers": [],
        "names": {"agencies": {}, "services": {}, "provinces": {}, "channels": {}},
        "methodology": "method",
        "tables": {},
        "changes": [],
    }


def stored_row(
    context: AppContext,
    period: str,
    start: date,
    end: date,
    *,
    number: int = 1,
    supersedes: int | None = None,
) -> int:
    """A draft release row as `create_release` stores it (content without tables)."""
    text = canonical_json(_content(period, start, end))
    with transaction(context.sessions) as session:
        row = Release(
            period=period,
            period_start=start,
            period_end=end,
            number=number,
            supersedes_id=supersedes,
            content=text,
            content_hash=content_hash(text),
            created_at=context.clock(),
            created_by="staff:test",
        )
        session.add(row)
        session.flush()
        return int(row.id or 0)


def test_unknown_and_draft_releases_are_not_found_for_the_public(context: AppContext) -> None:
    draft = stored_row(context, "1405-01", date(2026, 3, 21), date(2026, 4, 21))
    with context.read_sessions() as session:
        with pytest.raises(NotFound, match="release 999 does not exist"):
            get_release(session, 999)
        for huge in (2**31, 10**20, 0, -1):
            with pytest.raises(NotFound):
                get_published(session, huge)
        assert get_release(session, draft).status == "draft"
        with pytest.raises(NotFound, match=f"no published release {draft}"):
            get_published(session, draft)
        assert published_releases(session) == []
        assert latest_published(session) is None


def test_publish_once_with_audit_and_never_again(context: AppContext, clock) -> None:  # type: ignore[no-untyped-def]
    draft = stored_row(context, "1405-01", date(2026, 3, 21), date(2026, 4, 21))
    published = publish_release(context, STATISTICIAN, draft)
    assert published.status == "published" and published.published_at == clock.now
    assert published.published_by == "staff:sara"
    clock.now += timedelta(hours=1)
    with pytest.raises(Conflict, match=f"release {draft} was already published"):
        publish_release(context, STATISTICIAN, draft)
    with pytest.raises(NotFound, match="release 404 does not exist"):
        publish_release(context, STATISTICIAN, 404)
    with pytest.raises(NotFound, match=f"release {10**20} does not exist"):
        publish_release(context, STATISTICIAN, 10**20)
    with context.read_sessions() as session:
        again = get_published(session, draft)
        entries = session.scalars(
            sa.select(AuditLog).where(AuditLog.action == "release.publish")
        ).all()
    assert again.published_at == published.published_at
    assert [(e.actor, e.entity_id, e.at) for e in entries] == [
        ("staff:sara", str(draft), published.published_at)
    ]
    assert entries[0].after is not None and entries[0].after["content_hash"] == again.content_hash


def test_the_database_refuses_to_change_or_delete_a_published_release(
    context: AppContext,
) -> None:
    draft = stored_row(context, "1405-01", date(2026, 3, 21), date(2026, 4, 21))
    publish_release(context, STATISTICIAN, draft)
    table = Release.__table__  # type: ignore[attr-defined]
    for statement in (
        sa.update(table).where(table.c.id == draft).values(content="{}"),
        sa.update(table).where(table.c.id == draft).values(status="draft"),
        sa.delete(table).where(table.c.id == draft),
    ):
        with (
            pytest.raises(sa.exc.DatabaseError, match="never changed"),
            context.engine.begin() as connection,
        ):
            connection.execute(statement)
    with context.read_sessions() as session:
        kept = get_published(session, draft)
    assert kept.methodology == "method" and kept.status == "published"


def test_latest_published_is_the_latest_period_not_superseded(context: AppContext, clock) -> None:  # type: ignore[no-untyped-def]
    farvardin = stored_row(context, "1405-01", date(2026, 3, 21), date(2026, 4, 21))
    ordibehesht = stored_row(context, "1405-02", date(2026, 4, 21), date(2026, 5, 22))
    publish_release(context, STATISTICIAN, ordibehesht)
    clock.now += timedelta(days=1)
    publish_release(context, STATISTICIAN, farvardin)  # published later, earlier period
    clock.now += timedelta(days=1)
    correction = stored_row(
        context, "1405-02", date(2026, 4, 21), date(2026, 5, 22), number=2, supersedes=ordibehesht
    )
    with context.read_sessions() as session:
        assert latest_published(session).id == ordibehesht  # type: ignore[union-attr]
    publish_release(context, STATISTICIAN, correction)
    with context.read_sessions() as session:
        latest = latest_published(session)
        listed = published_releases(session)
        old = get_published(session, ordibehesht)
    assert latest is not None and latest.id == correction and latest.supersedes_id == ordibehesht
    assert [r.id for r in listed] == [correction, farvardin, ordibehesht]
    assert old.superseded_by_id == correction


def test_a_second_correction_of_the_same_release_cannot_be_published(context: AppContext) -> None:
    first = stored_row(context, "1405-01", date(2026, 3, 21), date(2026, 4, 21))
    publish_release(context, STATISTICIAN, first)
    fix = stored_row(
        context, "1405-01", date(2026, 3, 21), date(2026, 4, 21), number=2, supersedes=first
    )
    rival = stored_row(
        context, "1405-01", date(2026, 3, 21), date(2026, 4, 21), number=3, supersedes=first
    )
    plain = stored_row(context, "1405-01", date(2026, 3, 21), date(2026, 4, 21), number=4)
    publish_release(context, STATISTICIAN, fix)
    with pytest.raises(Conflict, match=f"the current release of 1405-01 is {fix}"):
        publish_release(context, STATISTICIAN, rival)
    with pytest.raises(Conflict, match="is not a correction of it"):
        publish_release(context, STATISTICIAN, plain)
    viewer = Principal(kind="staff", name="v", role="viewer")
    from survey.errors import Forbidden

    with pytest.raises(Forbidden):
        publish_release(context, viewer, rival)


@pytest.mark.parametrize(
    ("text", "label", "previous"),
    [
        ("1405-01", "1405-01", "1404-12"),
        ("۱۴۰۵/۰۷", "1405-07", "1405-06"),
        ("1405-Q1", "1405-Q1", "1404-Q4"),
        ("1405-q3", "1405-Q3", "1405-Q2"),
        ("1405", "1405", "1404"),
    ],
)
def test_release_periods_and_their_previous_period(text: str, label: str, previous: str) -> None:
    from survey.publication.inputs import parse_release_period
    from survey.publication.inputs import previous_period as before

    period = parse_release_period(text)
    assert period.label == label
    earlier = before(period)
    assert earlier.label == previous and earlier.end == period.start


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1405-00", "a month from 01 to 12"),
        ("1405-Q0", "1405-Q1 (quarter)"),
        ("2026-Q1", "releases are for Solar Hijri periods"),
        ("", "period: expected"),
    ],
)
def test_release_period_errors_name_the_field_and_the_forms(text: str, words: str) -> None:
    from survey.errors import InvalidInput
    from survey.publication.inputs import parse_release_period

    with pytest.raises(InvalidInput, match="period") as caught:
        parse_release_period(text)
    assert words in str(caught.value)


def test_a_snapshot_altered_in_the_database_is_refused(context: AppContext) -> None:
    draft = stored_row(context, "1405-03", date(2026, 5, 22), date(2026, 6, 22))
    table = Release.__table__  # type: ignore[attr-defined]
    with context.engine.begin() as connection:
        text = connection.execute(sa.select(table.c.content).where(table.c.id == draft)).scalar()
        altered = text.replace('"methodology":"method"', '"methodology":"altered"')
        connection.execute(sa.update(table).where(table.c.id == draft).values(content=altered))
    with (
        context.read_sessions() as session,
        pytest.raises(Conflict, match="does not match its hash"),
    ):
        get_release(session, draft)
    with pytest.raises(Conflict, match="does not match its hash"):
        publish_release(context, STATISTICIAN, draft)
