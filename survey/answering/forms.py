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
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Engine

from questionnaires.schema import Questionnaire
from survey.answering.answers import FormReading, ItemProblem, read_form
from survey.answering.store import CLOSED_STATUSES, NOT_YET_OPENED, LinkRow, LinkStore, Names
from survey.context import AppContext, Clock
from survey.errors import NotFound
from survey.kernel import audit
from survey.kernel.db import writer_queue
from survey.kernel.tokens import looks_like_token, token_hash

__all__ = [
    "CLOSED_STATUSES",
    "AboutTransaction",
    "FormState",
    "LinkUnavailable",
    "SaveResult",
    "WebAnswering",
]


class LinkUnavailable(NotFound):
    """The link is unknown, expired, already answered or opted out (deliberately one case)."""

    def __init__(self) -> None:
        super().__init__("this survey link is not open")


@dataclass(frozen=True, slots=True)
class AboutTransaction:
    """Whose survey this is and about what: the agency's and the service's names by language
    and the day of the transaction (the form's heading says so, and how the citizen was
    chosen)."""

    agency: dict[str, str]
    service: dict[str, str]
    day: date
    agency_id: int = 0
    service_id: int = 0


@dataclass(frozen=True, slots=True)
class FormState:
    """What the page needs: the questionnaire, the invitation's language and the answers,
    and what the survey is about."""

    invitation_id: int
    language: str
    questionnaire: Questionnaire
    answers: dict[str, Any]
    status: str
    questionnaire_version_id: int = 0
    about: AboutTransaction | None = None


@dataclass(frozen=True, slots=True)
class SaveResult:
    """After a save: the new state, the answers to show, problems, and whether it completed."""

    state: FormState
    shown: dict[str, Any]
    problems: tuple[ItemProblem, ...]
    completed: bool


class WebAnswering:
    """The domain service behind `/s/{token}`; one per app (it caches questionnaires).

    Its SQL is in `survey.answering.store` (prebuilt statements on DBAPI cursors, no ORM):
    answering is the service's hottest path, and each page costs one to three short statements.
    """

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._queue = writer_queue(engine)  # SQLite: writers of every worker queue without polling
        self._links = LinkStore(engine)
        self._clock = clock
        self._questionnaires: dict[int, Questionnaire] = {}
        self._names: dict[tuple[int, int], Names] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_context(cls, context: AppContext) -> WebAnswering:
        return cls(context.engine, context.clock)

    # -- public operations -------------------------------------------------------------------
    def open(self, token: str) -> FormState:
        """The form for a link; marks the invitation opened the first time.

        Read and mark in one write transaction (most opens are first opens, which write): one
        connection and one commit instead of a read and then a write (the row is locked on
        PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers)."""
        digest = _digest(token)
        now = self._clock()
        links = self._links
        with self._queue, links.transaction() as cursor:
            row = links.find(cursor, digest)
            if row is None or not _is_open(row, now):
                raise LinkUnavailable()
            status = row.status
            if row.opened_at is None:
                if not links.mark_opened(cursor, row.id, now):
                    raise LinkUnavailable()
                status = "opened" if status in NOT_YET_OPENED else status
        questionnaire = self._questionnaire(row.questionnaire_version_id)
        return FormState(
            row.id,
            row.language,
            questionnaire,
            dict(row.answers or {}),
            status,
            row.questionnaire_version_id,
            self._about(row),
        )

    def save(self, token: str, form: Mapping[str, Sequence[str]], *, submit: bool) -> SaveResult:
        """Store the form's valid answers; with `submit` and no problems, complete (once)."""
        digest = _digest(token)
        now = self._clock()
        links = self._links
        with self._queue, links.transaction() as cursor:
            row = links.find(cursor, digest)
            if row is None or not _is_open(row, now):
                raise LinkUnavailable()
            questionnaire = self._questionnaire(row.questionnaire_version_id)
            reading: FormReading = read_form(questionnaire, form, row.answers or {}, submit=submit)
            completed = submit and not reading.problems
            status = str(row.status)
            changes: dict[str, Any] = {}
            if row.opened_at is None:
                changes["opened_at"] = now
                status = "opened" if status in NOT_YET_OPENED else status
            if reading.answers or completed:
                status = "completed" if completed else "partial"
                links.store_response(cursor, row, reading.answers, status, now)
                if row.partial_at is None:
                    changes["partial_at"] = now
                if completed:
                    changes["completed_at"] = now
            if changes or status != row.status:
                changes["status"] = status
                links.update_invitation(cursor, row.id, changes)
        state = FormState(
            row.id,
            row.language,
            questionnaire,
            reading.answers,
            status,
            row.questionnaire_version_id,
            self._about(row),
        )
        return SaveResult(state, reading.shown, reading.problems, completed)

    def check(self, token: str) -> FormState:
        """The open invitation behind a link, read only (for the opt-out page)."""
        row = self._read_open(token)
        questionnaire = self._questionnaire(row.questionnaire_version_id)
        return FormState(
            row.id,
            row.language,
            questionnaire,
            dict(row.answers or {}),
            row.status,
            row.questionnaire_version_id,
            self._about(row),
        )

    def opt_out(self, token: str) -> None:
        """Close the invitation as opted out and add its phone to the opt-out list."""
        digest = _digest(token)
        now = self._clock()
        links = self._links
        with self._queue, links.core_transaction() as conn:
            row = links.find_on(conn, digest)
            if row is None or not _is_open(row, now):
                raise LinkUnavailable()
            links.opt_out(conn, row.id, row.phone_hash, now)
            audit.record_on(
                conn,
                audit.CITIZEN_WEB,
                "optout.add",
                "invitation",
                row.id,
                before={"status": row.status},
                after={"status": "opted_out", "opt_out": True, "source": "web"},
                at=now,
            )

    # -- internals ----------------------------------------------------------------------------
    def _read_open(self, token: str) -> LinkRow:
        row = self._links.peek(_digest(token))
        if row is None or not _is_open(row, self._clock()):
            raise LinkUnavailable()
        return row

    def _about(self, row: LinkRow) -> AboutTransaction | None:
        """The agency, service and day of the invitation's transaction. Agencies' and services'
        names never change once registered (imports leave existing entries as they are), so
        each pair is read once per process."""
        if row.day is None:
            return None
        key = (row.agency_id, row.service_id)
        names = self._names.get(key)
        if names is None:
            names = self._links.names(row.agency_id, row.service_id)
            with self._lock:
                self._names[key] = names
        return AboutTransaction(names.agency, names.service, row.day, *key)

    def _questionnaire(self, version_id: int) -> Questionnaire:
        """Questionnaire versions are immutable once used, so each is parsed once per process."""
        cached = self._questionnaires.get(version_id)
        if cached is not None:
            return cached
        content = self._links.questionnaire_content(version_id)
        questionnaire = Questionnaire.from_dict(content, file=f"questionnaire_version {version_id}")
        with self._lock:
            self._questionnaires[version_id] = questionnaire
        return questionnaire


def _digest(token: str) -> str:
    if not looks_like_token(token):
        raise LinkUnavailable()
    return token_hash(token)


def _is_open(row: LinkRow, now: datetime) -> bool:
    return row.status not in CLOSED_STATUSES and row.expires_at > now
