"""Database engine, sessions and migrations: the only place that knows the database URL."""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.orm import Session, sessionmaker

from survey.config import Settings

SQLITE_LOCK_TIMEOUT = 30.0  # seconds: SQLite's writers take turns, so they wait longer
POSTGRES_LOCK_TIMEOUT = 5.0


def create_db_engine(settings: Settings) -> Engine:
    """An engine tuned per backend: SQLite in WAL mode with a busy timeout; psycopg 3 elsewhere.

    Nothing waits without bound: a statement waits at most the lock timeout for a lock (and
    on PostgreSQL runs at most the statement timeout), a request waits at most the pool
    timeout for a connection; past that the request is answered 503 with Retry-After
    (survey.app) and its transaction rolls back, so nothing half-done is acknowledged."""
    url = normalise_url(settings.database_url)
    pool = {"pool_size": settings.db_pool_size, "pool_timeout": settings.db_pool_timeout}
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        lock_timeout = settings.db_lock_timeout or SQLITE_LOCK_TIMEOUT
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": lock_timeout},
            max_overflow=settings.db_pool_size,
            **pool,
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas(lock_timeout))
        sa.event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    lock_ms = round((settings.db_lock_timeout or POSTGRES_LOCK_TIMEOUT) * 1000)
    statement_ms = round(settings.db_statement_timeout * 1000)
    # libpq options given in the URL (a search_path, say) are kept; the timeouts follow them.
    given = sa.engine.make_url(url).query.get("options") or ""
    given_text = given if isinstance(given, str) else " ".join(given)
    options = f"{given_text} -c lock_timeout={lock_ms} -c statement_timeout={statement_ms}"
    return sa.create_engine(
        url,
        connect_args={"options": options.strip(), "connect_timeout": 5},
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        **pool,
    )


class WriterQueue:
    """A queue for the heavy writers of one SQLite file across worker processes.

    SQLite lets one writer in at a time, and a writer that finds the file locked polls: its busy
    handler sleeps 1, 2, 5 ... 100 ms between tries, so with two worker processes the lock
    often stands idle while the waiting one sleeps. An exclusive `flock` on a file beside the
    database wakes the next writer the moment the lock is released. Threads of one process
    queue on a lock of their own first (flock does not order the threads of one process).
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._thread_lock = threading.Lock()
        self._fd: int | None = None

    def __enter__(self) -> WriterQueue:
        import fcntl

        self._thread_lock.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                self._closer = weakref.finalize(self, os.close, self._fd)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        import fcntl

        try:
            assert self._fd is not None
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        if self._fd is not None:
            self._closer()
            self._fd = None


_QUEUES: weakref.WeakKeyDictionary[Engine, WriterQueue] = weakref.WeakKeyDictionary()
_QUEUES_GUARD = threading.Lock()


def writer_queue(engine: Engine) -> AbstractContextManager[object]:
    """The engine's one `WriterQueue` on a SQLite file database; nothing (a null context)
    anywhere else: PostgreSQL's row and advisory locks let writers wait without polling and
    independent writers run at once, and an in-memory SQLite lives in one process. Hot writers
    hold it around their write transaction (`with queue, engine.begin()`); it is not
    re-entrant, so such a transaction must not open another write transaction."""
    database = engine.url.database
    in_memory = not database or database == ":memory:"
    if engine.dialect.name != "sqlite" or in_memory or os.name != "posix":
        return nullcontext()
    with _QUEUES_GUARD:
        queue = _QUEUES.get(engine)
        if queue is None:
            queue = _QUEUES[engine] = WriterQueue(f"{database}-writers.lock")
        return queue


def normalise_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(lock_timeout: float) -> Callable[[sqlite3.Connection, object], None]:
    def configure(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Take control of transactions so that BEGIN IMMEDIATE below is what starts them.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(lock_timeout * 1000)}")
        cursor.close()

    return configure


def _sqlite_begin_immediate(connection: sa.Connection) -> None:
    """Writers take the write lock at BEGIN, so concurrent writers queue (busy timeout) instead
    of failing mid-way with 'database is locked' when a read tries to upgrade to a write.
    Sessions from `read_session_factory` begin deferred, so readers never wait for writers."""
    if connection.get_execution_options().get("read_only"):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for work that writes."""
    return sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for pages and listings that only read (no write lock on SQLite)."""
    return sessionmaker(engine.execution_options(read_only=True), expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE executed through a session changed."""
    # `Session.execute` is typed to return a plain Result; for DML it is a CursorResult.
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("survey") / "migrations"))
    # configparser treats % as interpolation: escape it (URLs carry %-encoded options).
    config.set_main_option(
        "sqlalchemy.url", normalise_url(settings.database_url).replace("%", "%%")
    )
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Apply migrations up to `revision` (idempotent)."""
    command.upgrade(alembic_config(settings), revision)


def current_revision(settings: Settings) -> str | None:
    engine = create_db_engine(settings)
    try:
        with engine.connect() as connection:
            from alembic.runtime.migration import MigrationContext

            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


_SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open database", "disk i/o error")


def is_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database cannot serve now (a lock or statement timeout, no
    free connection, no connection at all), as opposed to a bug in a statement: the first is
    a 503 to retry, the second a 500 to fix."""
    if isinstance(exc, sa.exc.TimeoutError | sa.exc.DisconnectionError):
        return True  # the pool had no free connection in time
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return exc.orig is not None and is_unavailable(exc.orig)
    if isinstance(exc, sqlite3.OperationalError):
        return any(text in str(exc).lower() for text in _SQLITE_UNAVAILABLE)
    try:
        import psycopg
    except ImportError:  # pragma: no cover  (psycopg is a dependency)
        return False
    # Connection failures, lock_timeout (55P03), statement_timeout (57014), shutdowns.
    return isinstance(exc, psycopg.OperationalError)


# The tables the service's requests need: a lock on one of them stops the service (api_key:
# every authenticated call; contact: the contact rule of every batch).
HOT_TABLES = (
    "api_key",
    "contact",
    "service_transaction",
    "frame_count",
    "sampled_unit",
    "invitation",
    "response",
    "outbox_message",
)
PROBE_TIMEOUT_MS = 1000


def write_probe(engine: Engine) -> str | None:
    """Whether a writer could write now: None, or what stops it. Takes the locks an ordinary
    writer takes (PostgreSQL: ROW EXCLUSIVE on the hot tables, which no other writer's lock
    conflicts with; SQLite: the write lock) and gives them back at once, waiting a second at
    most, so a table locked by maintenance or a stuck transaction shows up in /readyz."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            if engine.dialect.name == "sqlite":
                cursor.execute("PRAGMA busy_timeout")
                row = cursor.fetchone()
                usual = int(row[0]) if row else round(SQLITE_LOCK_TIMEOUT * 1000)
                cursor.execute(f"PRAGMA busy_timeout={PROBE_TIMEOUT_MS}")
                try:
                    cursor.execute("BEGIN IMMEDIATE")
                    cursor.execute("ROLLBACK")
                finally:
                    cursor.execute(f"PRAGMA busy_timeout={usual}")
            else:
                cursor.execute(f"SET LOCAL lock_timeout = {PROBE_TIMEOUT_MS}")
                for table in HOT_TABLES:
                    cursor.execute(f"LOCK TABLE {table} IN ROW EXCLUSIVE MODE")
                raw.rollback()
        finally:
            cursor.close()
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        raw.rollback()
        return f"database busy: a writer cannot take the write lock ({type(exc).__name__})"
    finally:
        raw.close()
    return None
