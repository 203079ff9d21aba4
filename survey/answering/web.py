"""Web answering: open an invitation by its link token, save answers as the citizen goes, submit
once, or opt out.

The invitation's life on the web (timestamps kept on `Invitation`):

    pending/sent/delivered/failed --first open--> opened --first saved answer--> partial
        --submit with every required item answered--> completed
    any open state --opt-out on the page--> opted_out (and the phone joins OptOut)

A link works while the invitation is open: not completed, expired (by status or by
`expires_at`) or opted out. Every other case (unknown token included) raises the same
`LinkUnavailable`, so the web page can never tell an unknown token from a used one.

Saving and submitting run in one write transaction that locks the invitation row first
(`FOR UPDATE` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` serialises writers), so a double
submit cannot complete twice or change a completed response.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from questionnaires.schema import Questionnaire
from survey.answering.answers import FormReading, ItemProblem, read_form
from survey.context import AppContext, Clock
from survey.errors import NotFound
from survey.models import Invitation, OptOut, QuestionnaireVersion, Response, SampledUnit
from survey.tokens import looks_like_token, token_hash

__all__ = ["CLOSED_STATUSES", "FormState", "LinkUnavailable", "SaveResult", "WebAnswering"]

CLOSED_STATUSES = frozenset({"completed", "expired", "opted_out"})
NOT_YET_OPENED = ("pending", "sent", "delivered", "failed")

_inv = Invitation.__table__  # type: ignore[attr-defined]
_resp = Response.__table__  # type: ignore[attr-defined]
_unit = SampledUnit.__table__  # type: ignore[attr-defined]
_qv = QuestionnaireVersion.__table__  # type: ignore[attr-defined]
_optout = OptOut.__table__  # type: ignore[attr-defined]


class LinkUnavailable(NotFound):
    """The link is unknown, expired, already answered or opted out (deliberately one case)."""

    def __init__(self) -> None:
        super().__init__("this survey link is not open")


@dataclass(frozen=True, slots=True)
class FormState:
    """What the page needs: the questionnaire, the invitation's language and the answers."""

    invitation_id: int
    language: str
    questionnaire: Questionnaire
    answers: dict[str, Any]
    status: str


@dataclass(frozen=True, slots=True)
class SaveResult:
    """After a save: the new state, the answers to show, problems, and whether it completed."""

    state: FormState
    shown: dict[str, Any]
    problems: tuple[ItemProblem, ...]
    completed: bool


class WebAnswering:
    """The domain service behind `/s/{token}`; one per app (it caches questionnaires)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        read_sessions: sessionmaker[Session],
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self._read_sessions = read_sessions
        self._clock = clock
        self._questionnaires: dict[int, Questionnaire] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_context(cls, context: AppContext) -> WebAnswering:
        return cls(context.sessions, context.read_sessions, context.clock)

    # -- public operations -------------------------------------------------------------------
    def open(self, token: str) -> FormState:
        """The form for a link; marks the invitation opened the first time."""
        digest = _digest(token)
        now = self._clock()
        with self._read_sessions() as session:
            row = session.execute(_select_by_hash(digest)).first()
        if row is None or not _is_open(row, now):
            raise LinkUnavailable()
        status = row.status
        if row.opened_at is None:
            with self._sessions() as session, session.begin():
                locked = session.execute(_select_by_hash(digest, lock=True)).first()
                if locked is None or not _is_open(locked, now):
                    raise LinkUnavailable()
                status = _mark_opened(session, locked, now)
        questionnaire = self._questionnaire(row.questionnaire_version_id)
        return FormState(row.id, row.language, questionnaire, dict(row.answers or {}), status)

    def save(self, token: str, form: Mapping[str, Sequence[str]], *, submit: bool) -> SaveResult:
        """Store the form's valid answers; with `submit` and no problems, complete (once)."""
        digest = _digest(token)
        now = self._clock()
        with self._sessions() as session, session.begin():
            row = session.execute(_select_by_hash(digest, lock=True)).first()
            if row is None or not _is_open(row, now):
                raise LinkUnavailable()
            questionnaire = self._questionnaire(row.questionnaire_version_id)
            reading: FormReading = read_form(questionnaire, form, row.answers or {}, submit=submit)
            completed = submit and not reading.problems
            status = _mark_opened(session, row, now)
            if reading.answers or completed:
                status = "completed" if completed else "partial"
                _store_response(session, row, reading.answers, status, now)
                changes: dict[str, Any] = {"status": status}
                if row.partial_at is None:
                    changes["partial_at"] = now
                if completed:
                    changes["completed_at"] = now
                session.execute(sa.update(_inv).where(_inv.c.id == row.id).values(**changes))
        state = FormState(row.id, row.language, questionnaire, reading.answers, status)
        return SaveResult(state, reading.shown, reading.problems, completed)

    def check(self, token: str) -> FormState:
        """The open invitation behind a link, read only (for the opt-out page)."""
        digest = _digest(token)
        with self._read_sessions() as session:
            row = session.execute(_select_by_hash(digest)).first()
        if row is None or not _is_open(row, self._clock()):
            raise LinkUnavailable()
        questionnaire = self._questionnaire(row.questionnaire_version_id)
        return FormState(row.id, row.language, questionnaire, dict(row.answers or {}), row.status)

    def opt_out(self, token: str) -> None:
        """Close the invitation as opted out and add its phone to the opt-out list."""
        digest = _digest(token)
        now = self._clock()
        with self._sessions() as session, session.begin():
            row = session.execute(_select_by_hash(digest, lock=True)).first()
            if row is None or not _is_open(row, now):
                raise LinkUnavailable()
            session.execute(
                sa.update(_inv)
                .where(_inv.c.id == row.id)
                .values(status="opted_out", opted_out_at=now)
            )
            _record_opt_out(session, row.phone_hash, now)

    # -- internals ----------------------------------------------------------------------------
    def _questionnaire(self, version_id: int) -> Questionnaire:
        """Questionnaire versions are immutable once used, so each is parsed once per process."""
        cached = self._questionnaires.get(version_id)
        if cached is not None:
            return cached
        with self._read_sessions() as session:
            content = session.execute(
                sa.select(_qv.c.content).where(_qv.c.id == version_id)
            ).scalar_one()
        questionnaire = Questionnaire.from_dict(content, file=f"questionnaire_version {version_id}")
        with self._lock:
            self._questionnaires[version_id] = questionnaire
        return questionnaire


def _digest(token: str) -> str:
    if not looks_like_token(token):
        raise LinkUnavailable()
    return token_hash(token)


def _select_by_hash(digest: str, *, lock: bool = False) -> sa.Select[Any]:
    query = (
        sa.select(
            _inv.c.id,
            _inv.c.status,
            _inv.c.language,
            _inv.c.questionnaire_version_id,
            _inv.c.expires_at,
            _inv.c.opened_at,
            _inv.c.partial_at,
            _unit.c.phone_hash,
            _resp.c.id.label("response_id"),
            _resp.c.answers,
        )
        .select_from(
            _inv.join(_unit, _unit.c.id == _inv.c.sampled_unit_id).outerjoin(
                _resp, _resp.c.invitation_id == _inv.c.id
            )
        )
        .where(_inv.c.token_hash == digest)
    )
    if lock:
        query = query.with_for_update(of=_inv)
    return query


def _is_open(row: sa.Row[Any], now: datetime) -> bool:
    return row.status not in CLOSED_STATUSES and row.expires_at > now


def _mark_opened(session: Session, row: sa.Row[Any], now: datetime) -> str:
    """Record the first opening; returns the invitation's status afterwards."""
    if row.opened_at is not None:
        return str(row.status)
    status = "opened" if row.status in NOT_YET_OPENED else str(row.status)
    session.execute(sa.update(_inv).where(_inv.c.id == row.id).values(opened_at=now, status=status))
    return status


def _store_response(
    session: Session, row: sa.Row[Any], answers: dict[str, Any], status: str, now: datetime
) -> None:
    values: dict[str, Any] = {"answers": answers, "status": status, "updated_at": now}
    if status == "completed":
        values["completed_at"] = now
    if row.response_id is None:
        session.execute(
            sa.insert(_resp).values(
                invitation_id=row.id,
                questionnaire_version_id=row.questionnaire_version_id,
                channel="web",
                started_at=now,
                **values,
            )
        )
    else:
        session.execute(sa.update(_resp).where(_resp.c.id == row.response_id).values(**values))


def _record_opt_out(session: Session, phone_hash: str, now: datetime) -> None:
    values = {"phone_hash": phone_hash, "active": True, "changed_at": now, "source": "web"}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(_optout).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[_optout.c.phone_hash],
        set_={"active": True, "changed_at": now, "source": "web"},
    )
    session.execute(statement)
