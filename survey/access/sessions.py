"""Staff sign-in: argon2 password checks, lockout after repeated failures, server-side sessions.

A browser session is a random token in an HTTP-only cookie. Like API tokens, only its SHA-256
is stored, as an `ApiKey` row of the user labelled `web session`; the row's `created_at` plus
`SESSION_LIFETIME` is when it expires, and signing out revokes it (`revoked_at`). Keeping
sessions server-side means signing out, deactivating a user or changing their password ends
every session at once, which a signed cookie cannot do.

Failures: each wrong password adds one to `app_user.failed_logins`; the `MAX_FAILURES`th locks
the account until `locked_until` (`LOCKOUT` later). A correct password resets the count. An
unknown username costs the same argon2 work as a known one, so timing does not tell them apart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from survey.access import store
from survey.errors import InvalidInput, NotAuthenticated, Problem
from survey.kernel import audit, credentials
from survey.kernel.crypto import derive_key
from survey.kernel.db import transaction
from survey.kernel.principal import SESSION_LABEL, SESSION_LIFETIME, Principal
from survey.models import ApiKey

if TYPE_CHECKING:
    from survey.context import AppContext

__all__ = [
    "LOCKOUT",
    "MAX_FAILURES",
    "SESSION_LABEL",
    "SESSION_LIFETIME",
    "AccountLocked",
    "LoginFailed",
    "SignedIn",
    "WhoAmI",
    "attempt_sign_in",
    "check_password_rules",
    "csrf_token_for",
    "end_session",
    "hash_password",
    "sign_in",
    "sign_out",
    "signed_in_as",
]

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SESSION_PREFIX = "ses_"
PASSWORD_MIN = 12
PASSWORD_MAX = 1024


REFUSED = (
    "wrong username or password, or too many failed attempts (an account is then locked "
    f"for {LOCKOUT.seconds // 60} minutes)"
)


class LoginFailed(NotAuthenticated):
    """Wrong username or password, or a locked account: one message for all three, so it never
    tells whether a username exists (an unknown one could otherwise be told from a known one
    by the lockout message after a few tries)."""

    def __init__(self) -> None:
        super().__init__(REFUSED)


class AccountLocked(LoginFailed):
    """Too many failed attempts: the account is locked until `until` (for the audit log and
    the administrators' listing; the person signing in sees LoginFailed's message)."""

    def __init__(self, until: datetime) -> None:
        super().__init__()
        self.until = until


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: the cookie value (shown once) and when it expires."""

    token: str
    username: str
    role: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class WhoAmI:
    """Who is calling and how; with a session cookie also the CSRF token for changes."""

    username: str
    role: str | None
    agency: str | None
    via: str  # "bearer" | "session"
    csrf_token: str | None

    @classmethod
    def of(cls, principal: Principal, *, csrf_token: str | None, bearer: bool) -> WhoAmI:
        return cls(
            username=principal.name,
            role=principal.role,
            agency=principal.agency_code,
            via="bearer" if bearer else "session",
            csrf_token=None if bearer else csrf_token,
        )


CHEAP_HASHING = "cheapest-for-tests"  # SURVEY_PASSWORD_HASHING; refused in production


@cache
def _hasher() -> PasswordHasher:
    """RFC 9106 low-memory profile (t=3, m=64 MiB, p=4): about 0.16 s per hash, on purpose.
    The test suite hashes with argon2's cheapest profile instead (as Django's tests swap their
    hasher), set by `SURVEY_PASSWORD_HASHING`, which `Settings.from_env` refuses in
    production; a hash made either way verifies either way."""
    if os.environ.get("SURVEY_PASSWORD_HASHING") == CHEAP_HASHING:
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def check_password_rules(password: str) -> None:
    """InvalidInput when the password is too short or too long."""
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(
            "the password is too weak",
            [
                Problem(
                    f"must be at least {PASSWORD_MIN} characters; got {len(password)}",
                    field="password",
                )
            ],
        )
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(
            "the password is too long",
            [
                Problem(
                    f"must be at most {PASSWORD_MAX} characters; got {len(password)}",
                    field="password",
                )
            ],
        )


def hash_password(password: str) -> str:
    check_password_rules(password)
    return _hasher().hash(password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher().verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def sign_in(
    session: Session, username: str, password: str, *, now: datetime, client: str = ""
) -> SignedIn:
    """Check the password and open a session; LoginFailed or AccountLocked otherwise.

    The caller commits the transaction in both cases (a failure is counted and audited).
    """
    user = store.lock_user(session, username.strip().lower())
    if user is None or not user.active:
        _verify(None, password)
        raise LoginFailed()
    actor = Principal(kind="staff", name=user.username, role=user.role, user_id=user.id)
    if user.locked_until is not None and user.locked_until > now:
        _verify(None, password)
        raise AccountLocked(user.locked_until)
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
            audit.record(
                session,
                actor,
                "user.lockout",
                "user",
                user.username,
                after={"locked_until": user.locked_until.isoformat(), "client": client},
                at=now,
            )
        raise LoginFailed()
    if _hasher().check_needs_rehash(user.password_hash or ""):
        user.password_hash = _hasher().hash(password)
    user.failed_logins = 0
    user.locked_until = None
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            key_hash=credentials.key_hash(token),
            prefix=token[:10],
            user_id=user.id,
            label=SESSION_LABEL,
            created_at=now,
        )
    )
    audit.record(
        session, actor, "user.login", "user", user.username, after={"client": client}, at=now
    )
    return SignedIn(token, user.username, user.role, now + SESSION_LIFETIME)


def attempt_sign_in(
    context: AppContext, username: str, password: str, *, client: str = ""
) -> SignedIn | NotAuthenticated:
    """`sign_in` in a transaction of its own that commits either way: a refusal is returned,
    not raised, so the failure count and its audit row are kept."""
    now = context.clock()
    with transaction(context.sessions) as session:
        try:
            return sign_in(session, username, password, now=now, client=client)
        except NotAuthenticated as exc:
            return exc


def end_session(context: AppContext, token: str) -> None:
    """`sign_out` committed; the resolver forgets the session at once."""
    now = context.clock()
    with transaction(context.sessions) as session:
        sign_out(session, token, now=now)
    context.keys.forget()


def signed_in_as(context: AppContext, token: str | None) -> str | None:
    """The username of the open session with this cookie value, or None."""
    if not token:
        return None
    try:
        return context.keys.resolve_session(token, now=context.clock()).name
    except NotAuthenticated:
        return None


def sign_out(session: Session, token: str, *, now: datetime) -> bool:
    """Revoke the session with this cookie value; False when it was not an open session."""
    row = store.open_session_key(session, credentials.key_hash(token))
    if row is None:
        return False
    row.revoked_at = now
    user = store.user_by_id(session, row.user_id) if row.user_id else None
    if user is not None:
        actor = Principal(kind="staff", name=user.username, role=user.role, user_id=user.id)
        audit.record(session, actor, "user.logout", "user", user.username, at=now)
    return True


def end_sessions(session: Session, user_id: int, *, now: datetime) -> int:
    """Revoke every open session of a user (password change, deactivation)."""
    return store.revoke_user_sessions(session, user_id, at=now)


def csrf_token_for(secret_key: bytes, session_token: str) -> str:
    """The CSRF token of a session: forms and scripts send it back with unsafe requests.

    It is an HMAC of the session token, so another site can neither read nor compute it.
    """
    key = derive_key(secret_key, "staff-csrf")
    return hmac.new(key, session_token.encode(), hashlib.sha256).hexdigest()
