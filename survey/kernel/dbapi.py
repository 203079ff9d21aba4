"""SQL at the DBAPI level for the hottest paths (ingestion, web answering).

SQLAlchemy Core spends tens of microseconds of Python per statement (execution context, events,
type processing) and as much again per transaction; the hot paths run a few fixed statements
per request, so they hand them to the driver themselves. Values are written as SQLAlchemy
writes them (naive UTC times, on SQLite as text 'YYYY-MM-DD HH:MM:SS.ffffff'; JSON as text),
so the ORM and Core read these rows exactly like their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.engine import Engine

__all__ = ["Driver", "naive_utc", "read_json", "read_time", "sqlite_time"]


def sqlite_time(value: datetime) -> str:
    """SQLAlchemy's SQLite text form of a UTC time, 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def read_time(value: datetime | str | None) -> datetime | None:
    """A stored time (text on SQLite, naive on PostgreSQL) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def read_json(value: Any) -> Any:
    """A stored JSON value: text on SQLite, already decoded by psycopg on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def _same(value: Any) -> Any:
    return value


class Driver:
    """One engine's dialect details for hand-written SQL: the parameter mark, how times, days
    and JSON are passed, and a write transaction on a pooled DBAPI connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.mark = "?" if self.sqlite else "%s"
        # psycopg passes a str as text, which PostgreSQL does not turn into json by itself.
        self.json_mark = "?" if self.sqlite else "CAST(%s AS JSON)"
        self.time = sqlite_time if self.sqlite else naive_utc
        self.day: Any = date.isoformat if self.sqlite else _same

    @staticmethod
    def json(value: Any) -> str:
        return json.dumps(value)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A DBAPI cursor inside one write transaction (SQLite: BEGIN IMMEDIATE, so the write
        lock is taken up front), committed on success and rolled back on any error."""
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            if self.sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
        finally:
            connection.close()  # back to the pool
