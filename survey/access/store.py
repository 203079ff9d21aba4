"""Access's SQL: the staff users, the API keys and browser sessions (`ApiKey` rows), and the
agencies they belong to.

The services of this domain (keys, sessions, users) decide, validate, audit and hold the
transaction; every statement they need is one small function here, run on the caller's
`Session`, so the queries can be read (and their indexes checked) in one place. Bearer keys and
session cookies are looked up by their SHA-256 (`ApiKey.key_hash`, unique), so a key look-up is
one indexed row; `KeyResolver` caches the answer for a few seconds on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.kernel.db import rows_changed
from survey.kernel.principal import SESSION_LABEL
from survey.models import Agency, ApiKey, AppUser

__all__ = [
    "active_key",
    "active_token_count",
    "agency_by_code",
    "agency_by_id",
    "all_users",
    "find_user",
    "lock_user",
    "open_session_key",
    "revoke_user_sessions",
    "user_by_id",
    "username_taken",
]


# -- keys and sessions -----------------------------------------------------------------------


def active_key(session: Session, digest: str) -> ApiKey | None:
    """The unrevoked key (of any kind, sessions included) whose SHA-256 is `digest`."""
    return session.scalar(
        sa.select(ApiKey).where(col(ApiKey.key_hash) == digest, col(ApiKey.revoked_at).is_(None))
    )


def open_session_key(session: Session, digest: str) -> ApiKey | None:
    """The unrevoked browser session (`SESSION_LABEL` key) whose SHA-256 is `digest`."""
    return session.scalar(
        sa.select(ApiKey).where(
            col(ApiKey.key_hash) == digest,
            col(ApiKey.label) == SESSION_LABEL,
            col(ApiKey.revoked_at).is_(None),
        )
    )


def revoke_user_sessions(session: Session, user_id: int, *, at: datetime) -> int:
    """Mark every open browser session of the user revoked at `at`; how many were open."""
    result = session.execute(
        sa.update(ApiKey)
        .where(
            col(ApiKey.user_id) == user_id,
            col(ApiKey.label) == SESSION_LABEL,
            col(ApiKey.revoked_at).is_(None),
        )
        .values(revoked_at=at)
    )
    return rows_changed(result)


def active_token_count(session: Session, user_id: int | None) -> int:
    """The user's unrevoked API tokens (browser sessions not counted)."""
    tokens = session.scalar(
        sa.select(sa.func.count())
        .select_from(ApiKey)
        .where(
            col(ApiKey.user_id) == user_id,
            col(ApiKey.revoked_at).is_(None),
            col(ApiKey.label) != SESSION_LABEL,
        )
    )
    return int(tokens or 0)


# -- users -----------------------------------------------------------------------------------


def find_user(session: Session, username: str) -> AppUser | None:
    """The user with exactly this username, or None."""
    return session.scalar(sa.select(AppUser).where(col(AppUser.username) == username))


def lock_user(session: Session, username: str) -> AppUser | None:
    """The user with this username, its row locked (FOR UPDATE) until the transaction ends, so
    concurrent sign-ins count failures one after the other."""
    return session.scalar(
        sa.select(AppUser).where(col(AppUser.username) == username).with_for_update()
    )


def username_taken(session: Session, username: str) -> bool:
    taken = sa.select(col(AppUser.id)).where(col(AppUser.username) == username)
    return session.scalar(taken) is not None


def user_by_id(session: Session, user_id: int | None) -> AppUser | None:
    return session.get(AppUser, user_id)


def all_users(session: Session) -> Sequence[AppUser]:
    """Every user, by username."""
    return session.scalars(sa.select(AppUser).order_by(col(AppUser.username))).all()


# -- agencies (as users and keys refer to them) ----------------------------------------------


def agency_by_id(session: Session, agency_id: int | None) -> Agency | None:
    return session.get(Agency, agency_id)


def agency_by_code(session: Session, code: str) -> Agency | None:
    return session.scalar(sa.select(Agency).where(col(Agency.code) == code))
