"""What a running service holds: settings, database, keys, clock. Built once, passed down."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from survey.access.keys import KeyResolver
from survey.config import Settings
from survey.kernel import db
from survey.kernel.crypto import PhoneVault, derive_key
from survey.models import utcnow

Clock = Callable[[], datetime]


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    vault: PhoneVault
    sampling_key: bytes = field(repr=False)
    keys: KeyResolver
    clock: Clock = utcnow

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None) -> AppContext:
        if clock is None:
            clock = utcnow if settings.clock_start is None else running_from(settings.clock_start)
        engine = db.create_db_engine(settings)
        sessions = db.session_factory(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            read_sessions=db.read_session_factory(engine),
            vault=PhoneVault.from_secrets(settings.secret_keys),
            sampling_key=derive_key(settings.secret_key, "sampling"),
            keys=KeyResolver(sessions),
            clock=clock,
        )

    def close(self) -> None:
        self.engine.dispose()


def running_from(start: datetime) -> Clock:
    """A clock that reads `start` when the process begins and runs on in real time."""
    began = time.monotonic()

    def now() -> datetime:
        return start + timedelta(seconds=time.monotonic() - began)

    return now


def load_settings() -> Settings:
    """The settings of a console command: the environment, read once."""
    return Settings.from_env()


def open_context(_args: object = None, *, migrate: bool = True) -> AppContext:
    """The service's context on the configured database, migrated to the latest schema (the
    console commands' way in)."""
    settings = load_settings()
    if migrate:
        db.upgrade(settings)
    return AppContext.build(settings)
