"""The rows behind a survey link and an SMS conversation: answering's SQL, the only module of
the domain that builds or runs a query, and the only one that talks to the DBAPI layer.

Opening a form and saving it are the service's most frequent requests: each is one short write
transaction of two or three fixed statements, where SQLAlchemy's own per-statement and
per-transaction Python costs more than the database's work. So `WebAnswering.open` and
`save` send these statements to the DBAPI cursor (see survey.kernel.dbapi); the opt-out page
reads the invitation with the same statement. The rarer statements (a questionnaire version's
content, an opt-out) go through SQLAlchemy Core.

The two-way SMS dialogue (survey.answering.sms_dialog) is rarer and richer: it reads and changes
ORM objects in one write transaction, so its statements below are small functions on the
caller's `Session`; the service decides, adds its new rows and owns the transaction. Its locks
are part of the statements (`FOR UPDATE` on the invitation, the response and the opt-out row).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.kernel.dbapi import Driver, read_json, read_time
from survey.models import (
    InboundMessage,
    Invitation,
    OptOut,
    QuestionnaireVersion,
    Response,
    SampledUnit,
)

__all__ = [
    "CLOSED_STATUSES",
    "NOT_YET_OPENED",
    "LinkRow",
    "LinkStore",
    "Names",
    "close_opted_out_invitations",
    "inbound_message_id",
    "invitation_ids_for_phone",
    "latest_invitation_for_phone",
    "lock_open_invitation_for_phone",
    "lock_opt_out",
    "lock_response",
    "questionnaire_version_content",
]

CLOSED_STATUSES = frozenset({"completed", "expired", "opted_out"})
NOT_YET_OPENED = ("pending", "sent", "delivered", "failed")
INVITATION_COLUMNS = frozenset({"status", "opened_at", "partial_at", "completed_at"})

# Core tables (not the ORM classes' attributes, which would configure every mapper on first
# use: thousands of long-lived objects the answering process otherwise never needs).
_TABLES = Invitation.metadata.tables
_invitation = _TABLES["invitation"]
_opt_out = _TABLES["opt_out"]
_questionnaire_version = _TABLES["questionnaire_version"]


def _sql_list(values: Any) -> str:
    return ", ".join(f"'{value}'" for value in sorted(values))


@dataclass(frozen=True, slots=True)
class LinkRow:
    """An invitation found by its token hash, with its phone hash and saved response."""

    id: int
    status: str
    language: str
    questionnaire_version_id: int
    expires_at: datetime
    opened_at: datetime | None
    partial_at: datetime | None
    phone_hash: str
    response_id: int | None
    answers: dict[str, Any] | None
    agency_id: int = 0  # the transaction's agency, service and day (the form's heading)
    service_id: int = 0
    day: date | None = None


@dataclass(frozen=True, slots=True)
class Names:
    """An agency's and a service's names by language (the form's heading names them)."""

    agency: dict[str, str]
    service: dict[str, str]


class LinkStore:
    """The statements behind a survey link, for one engine's dialect."""

    def __init__(self, engine: Engine) -> None:
        driver = Driver(engine)
        self.driver = driver
        self._engine = engine
        self._reader = engine.execution_options(read_only=True)
        m, json_mark = driver.mark, driver.json_mark
        lock = "" if driver.sqlite else " FOR UPDATE OF invitation"  # SQLite: BEGIN IMMEDIATE
        self._peek = (
            "SELECT invitation.id, invitation.status, invitation.language, "
            "invitation.questionnaire_version_id, invitation.expires_at, invitation.opened_at, "
            "invitation.partial_at, sampled_unit.phone_hash, response.id, response.answers, "
            "sampled_unit.agency_id, sampled_unit.service_id, sampled_unit.day "
            "FROM invitation JOIN sampled_unit ON sampled_unit.id = invitation.sampled_unit_id "
            "LEFT OUTER JOIN response ON response.invitation_id = invitation.id "
            f"WHERE invitation.token_hash = {m}"
        )
        self._find = self._peek + lock
        self._mark_opened = (
            f"UPDATE invitation SET opened_at = {m}, status = CASE WHEN status IN "
            f"({_sql_list(NOT_YET_OPENED)}) THEN 'opened' ELSE status END "
            f"WHERE id = {m} AND opened_at IS NULL "
            f"AND status NOT IN ({_sql_list(CLOSED_STATUSES)}) AND expires_at > {m}"
        )
        self._insert_response = (
            "INSERT INTO response (invitation_id, questionnaire_version_id, channel, "
            "started_at, answers, status, updated_at, completed_at) "
            f"VALUES ({m}, {m}, 'web', {m}, {json_mark}, {m}, {m}, {m})"
        )
        self._update_response = (
            f"UPDATE response SET answers = {json_mark}, status = {m}, updated_at = {m}, "
            f"completed_at = {m} WHERE id = {m}"
        )

    # -- the hot path: a DBAPI cursor in one write transaction ----------------------------------
    def transaction(self) -> AbstractContextManager[DBAPICursor]:
        """A DBAPI cursor inside one write transaction (survey.kernel.dbapi.Driver)."""
        return self.driver.transaction()

    def find(self, cursor: DBAPICursor, digest: str, *, lock: bool = True) -> LinkRow | None:
        """The invitation with this token hash, locked for the transaction unless `lock` is
        False (a read that changes nothing)."""
        cursor.execute(self._find if lock else self._peek, (digest,))
        row = cursor.fetchone()
        if row is None:
            return None
        return LinkRow(
            row[0],
            row[1],
            row[2],
            row[3],
            cast(datetime, read_time(row[4])),  # expires_at is NOT NULL
            read_time(row[5]),
            read_time(row[6]),
            row[7],
            row[8],
            read_json(row[9]),
            row[10],
            row[11],
            _read_day(row[12]),
        )

    def mark_opened(self, cursor: DBAPICursor, invitation_id: int, now: datetime) -> bool:
        """Record the first open; False if the invitation closed meanwhile."""
        at = self.driver.time(now)
        cursor.execute(self._mark_opened, (at, invitation_id, at))
        return bool(cursor.rowcount == 1)

    def store_response(
        self, cursor: DBAPICursor, row: LinkRow, answers: dict[str, Any], status: str, now: datetime
    ) -> None:
        at = self.driver.time(now)
        completed = at if status == "completed" else None
        text = self.driver.json(answers)
        if row.response_id is None:
            cursor.execute(
                self._insert_response,
                (row.id, row.questionnaire_version_id, at, text, status, at, completed),
            )
        else:
            cursor.execute(self._update_response, (text, status, at, completed, row.response_id))

    def update_invitation(
        self, cursor: DBAPICursor, invitation_id: int, changes: dict[str, Any]
    ) -> None:
        """Set the given columns (status and its timestamps) of one invitation."""
        columns = tuple(sorted(changes))
        values = [
            self.driver.time(changes[c]) if isinstance(changes[c], datetime) else changes[c]
            for c in columns
        ]
        cursor.execute(_update_sql(self.driver.mark, columns), (*values, invitation_id))

    # -- reads and the opt-out ------------------------------------------------------------------
    def peek(self, digest: str) -> LinkRow | None:
        """The invitation with this token hash, read on a read-only connection (no lock)."""
        with self._reader.connect() as conn:
            return self.find(conn.connection.cursor(), digest, lock=False)

    def questionnaire_content(self, version_id: int) -> dict[str, Any]:
        """The stored content of a questionnaire version (its instrument as a dict)."""
        with self._reader.connect() as conn:
            table = _questionnaire_version
            content: dict[str, Any] = conn.execute(
                sa.select(table.c.content).where(table.c.id == version_id)
            ).scalar_one()
        return content

    def names(self, agency_id: int, service_id: int) -> Names:
        """The names of an agency and of a service, in both languages."""
        agency, service = _TABLES["agency"], _TABLES["service"]
        with self._reader.connect() as conn:
            a = conn.execute(
                sa.select(agency.c.name_fa, agency.c.name_en).where(agency.c.id == agency_id)
            ).one()
            s = conn.execute(
                sa.select(service.c.name_fa, service.c.name_en).where(service.c.id == service_id)
            ).one()
        return Names({"fa": a[0], "en": a[1]}, {"fa": s[0], "en": s[1]})

    def core_transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction on a SQLAlchemy Core connection (the opt-out, which also
        writes the audit log)."""
        return self._engine.begin()

    def find_on(self, conn: Connection, digest: str) -> LinkRow | None:
        """`find`, locked, inside a `core_transaction`."""
        return self.find(conn.connection.cursor(), digest)

    def opt_out(self, conn: Connection, invitation_id: int, phone_hash: str, now: datetime) -> None:
        """Close the invitation as opted out and put its phone on the opt-out list (or make
        its entry active again), from the web."""
        conn.execute(
            sa.update(_invitation)
            .where(_invitation.c.id == invitation_id)
            .values(status="opted_out", opted_out_at=now)
        )
        values = {"phone_hash": phone_hash, "active": True, "changed_at": now, "source": "web"}
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(
            insert(_opt_out)
            .values(**values)
            .on_conflict_do_update(
                index_elements=[_opt_out.c.phone_hash],
                set_={"active": True, "changed_at": now, "source": "web"},
            )
        )


def _read_day(value: Any) -> date | None:
    """A DATE column as the driver gives it: a date (psycopg) or ISO text (SQLite)."""
    return value if value is None or isinstance(value, date) else date.fromisoformat(value)


@cache
def _update_sql(mark: str, columns: tuple[str, ...]) -> str:
    unknown = set(columns) - INVITATION_COLUMNS
    if unknown:  # column names are written into the SQL: only known ones
        raise ValueError(f"not an invitation column this path sets: {sorted(unknown)}")
    assignments = ", ".join(f"{column} = {mark}" for column in columns)
    return f"UPDATE invitation SET {assignments} WHERE id = {mark}"


# -- the SMS dialogue: ORM statements on the caller's session ------------------------------------


def inbound_message_id(session: Session, message_id: str) -> int | None:
    """The id of the inbound message already recorded under the provider's `message_id`."""
    return session.scalar(
        sa.select(col(InboundMessage.id)).where(col(InboundMessage.message_id) == message_id)
    )


def lock_response(session: Session, invitation_id: int) -> Response | None:
    """The invitation's response, locked for the transaction (`FOR UPDATE`)."""
    return session.scalar(
        sa.select(Response).where(col(Response.invitation_id) == invitation_id).with_for_update()
    )


def lock_opt_out(session: Session, phone_hash: str) -> OptOut | None:
    """The opt-out entry of a phone hash, locked for the transaction (`FOR UPDATE`)."""
    return session.get(OptOut, phone_hash, with_for_update=True)


def _for_phone(query: sa.Select, phone_hashes: Sequence[str]) -> sa.Select:
    """Only the invitations sent to one of these phone hashes (one number, every key)."""
    return query.join(SampledUnit, col(SampledUnit.id) == Invitation.sampled_unit_id).where(
        col(SampledUnit.phone_hash).in_(phone_hashes)
    )


def invitation_ids_for_phone(
    session: Session, phone_hashes: Sequence[str], statuses: Collection[str]
) -> list[int]:
    """The ids of the number's invitations in one of these statuses."""
    return list(
        session.scalars(
            _for_phone(sa.select(col(Invitation.id)), phone_hashes).where(
                col(Invitation.status).in_(statuses)
            )
        )
    )


def close_opted_out_invitations(session: Session, invitation_ids: list[int], now: datetime) -> None:
    """Close these invitations as opted out at `now`."""
    session.execute(
        sa.update(Invitation)
        .where(col(Invitation.id).in_(invitation_ids))
        .values(status="opted_out", opted_out_at=now)
    )


def lock_open_invitation_for_phone(
    session: Session, phone_hashes: Sequence[str], statuses: Collection[str], now: datetime
) -> Invitation | None:
    """The number's newest invitation in one of these statuses that has not expired by `now`,
    locked for the transaction (`FOR UPDATE OF invitation`)."""
    query = _for_phone(sa.select(Invitation), phone_hashes).where(
        col(Invitation.status).in_(statuses),
        col(Invitation.expires_at) > now,
    )
    return session.scalars(
        query.order_by(col(Invitation.id).desc()).limit(1).with_for_update(of=Invitation)
    ).first()


def latest_invitation_for_phone(session: Session, phone_hashes: Sequence[str]) -> Invitation | None:
    """The number's newest invitation, whatever its status (no lock)."""
    query = _for_phone(sa.select(Invitation), phone_hashes).order_by(col(Invitation.id).desc())
    return session.scalars(query.limit(1)).first()


def questionnaire_version_content(session: Session, version_id: int) -> dict[str, Any] | None:
    """The stored content of a questionnaire version, on the caller's session."""
    content: dict[str, Any] | None = session.scalar(
        sa.select(col(QuestionnaireVersion.content)).where(
            col(QuestionnaireVersion.id) == version_id
        )
    )
    return content
