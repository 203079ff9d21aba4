"""What every sub-command shares: settings from the environment, a migrated database."""

from __future__ import annotations

import argparse

from survey import db
from survey.config import Settings
from survey.context import AppContext


def load_settings() -> Settings:
    return Settings.from_env()


def open_context(args: argparse.Namespace | None = None, *, migrate: bool = True) -> AppContext:
    """The service's context on the configured database, migrated to the latest schema."""
    settings = load_settings()
    if migrate:
        db.upgrade(settings)
    return AppContext.build(settings)
