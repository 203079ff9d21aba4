"""The rows behind a survey link, read and written at the driver level.

Opening a form and saving it are the service's most frequent requests: each is one short write
transaction of two or three fixed statements, where SQLAlchemy's own per-statement and
per-transaction Python costs more than the database's work. So `WebAnswering.open` and
`save` send these statements to the DBAPI cursor (see survey.kernel.dbapi); the opt-out page
reads the invitation with the same statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from survey.kernel.dbapi import Driver, read_json, read_time

__all__ = ["CLOSED_STATUSES", "NOT_YET_OPENED", "LinkRow", "LinkStore"]

CLOSED_STATUSES = frozenset({"completed", "expired", "opted_out"})
NOT_YET_OPENED = ("pending", "sent", "delivered", "failed")
INVITATION_COLUMNS = frozenset({"status", "opened_at", "partial_at", "completed_at"})


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


class LinkStore:
    """The statements of `open` and `save`, for one engine's dialect."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        m, json_mark = driver.mark, driver.json_mark
        lock = "" if driver.sqlite else " FOR UPDATE OF invitation"  # SQLite: BEGIN IMMEDIATE
        self._peek = (
            "SELECT invitation.id, invitation.status, invitation.language, "
            "invitation.questionnaire_version_id, invitation.expires_at, invitation.opened_at, "
            "invitation.partial_at, sampled_unit.phone_hash, response.id, response.answers "
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

    def find(self, cursor: Any, digest: str, *, lock: bool = True) -> LinkRow | None:
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
            read_time(row[4]),  # type: ignore[arg-type]
            read_time(row[5]),
            read_time(row[6]),
            row[7],
            row[8],
            read_json(row[9]),
        )

    def mark_opened(self, cursor: Any, invitation_id: int, now: datetime) -> bool:
        """Record the first open; False if the invitation closed meanwhile."""
        at = self.driver.time(now)
        cursor.execute(self._mark_opened, (at, invitation_id, at))
        return bool(cursor.rowcount == 1)

    def store_response(
        self, cursor: Any, row: LinkRow, answers: dict[str, Any], status: str, now: datetime
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

    def update_invitation(self, cursor: Any, invitation_id: int, changes: dict[str, Any]) -> None:
        """Set the given columns (status and its timestamps) of one invitation."""
        columns = tuple(sorted(changes))
        values = [
            self.driver.time(changes[c]) if isinstance(changes[c], datetime) else changes[c]
            for c in columns
        ]
        cursor.execute(_update_sql(self.driver.mark, columns), (*values, invitation_id))


@cache
def _update_sql(mark: str, columns: tuple[str, ...]) -> str:
    unknown = set(columns) - INVITATION_COLUMNS
    if unknown:  # column names are written into the SQL: only known ones
        raise ValueError(f"not an invitation column this path sets: {sorted(unknown)}")
    assignments = ", ".join(f"{column} = {mark}" for column in columns)
    return f"UPDATE invitation SET {assignments} WHERE id = {mark}"
