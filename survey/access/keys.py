"""Who is calling: bearer keys resolved to a `Principal`, and the rules of what each may do."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from survey.access import store
from survey.errors import NotAuthenticated
from survey.kernel.credentials import key_hash
from survey.kernel.principal import SESSION_LABEL, SESSION_LIFETIME, Principal
from survey.models import ApiKey


class KeyResolver:
    """Resolves bearer keys, with a short cache so ingestion does not look a key up per request.

    A revoked key stops working within `ttl_seconds`.
    """

    def __init__(self, factory: sessionmaker[Session], ttl_seconds: float = 5.0) -> None:
        self._factory = factory
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._sessions: dict[str, tuple[float, tuple[Principal, datetime] | None]] = {}
        self._lock = threading.Lock()

    def resolve(self, authorization: str | None) -> Principal:
        if not authorization:
            raise NotAuthenticated(
                "missing Authorization header: send 'Authorization: Bearer <key>'"
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated("the Authorization header must be 'Bearer <key>'")
        digest = key_hash(token)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            principal = cached[1]
        else:
            principal = self._lookup(digest)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now + self._ttl, principal)
        if principal is None:
            raise NotAuthenticated("unknown or revoked API key")
        return principal

    def resolve_session(self, token: str, *, now: datetime) -> Principal:
        """The staff member of a browser session cookie; NotAuthenticated when it has expired,
        was signed out, or its user was deactivated."""
        digest = key_hash(token.strip())
        mono = time.monotonic()
        with self._lock:
            cached = self._sessions.get(digest)
        if cached is not None and cached[0] > mono:
            found = cached[1]
        else:
            found = self._lookup_session(digest)
            with self._lock:
                if len(self._sessions) > 10_000:
                    self._sessions.clear()
                self._sessions[digest] = (mono + self._ttl, found)
        if found is None or found[1] + SESSION_LIFETIME <= now:
            raise NotAuthenticated(
                "your session has ended; sign in again at /login "
                "(or send 'Authorization: Bearer <token>')"
            )
        return found[0]

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
            self._sessions.clear()

    def _lookup(self, digest: str) -> Principal | None:
        with self._factory() as session:
            key = store.active_key(session, digest)
            if key is None or key.label == SESSION_LABEL:  # sessions only come as cookies
                return None
            if key.agency_id is not None:
                agency = store.agency_by_id(session, key.agency_id)
                if agency is None:
                    return None
                return Principal(
                    kind="agency",
                    name=agency.code,
                    agency_id=agency.id,
                    agency_code=agency.code,
                    key_id=key.id,
                )
            if key.user_id is not None:
                return _staff_principal(session, key)
            return None

    def _lookup_session(self, digest: str) -> tuple[Principal, datetime] | None:
        with self._factory() as session:
            key = store.open_session_key(session, digest)
            if key is None or key.user_id is None:
                return None
            principal = _staff_principal(session, key)
            return (principal, key.created_at) if principal is not None else None


def _staff_principal(session: Session, key: ApiKey) -> Principal | None:
    user = store.user_by_id(session, key.user_id)
    if user is None or not user.active:
        return None
    agency_code = None
    if user.agency_id is not None:
        agency = store.agency_by_id(session, user.agency_id)
        agency_code = agency.code if agency else None
    return Principal(
        kind="staff",
        name=user.username,
        role=user.role,
        agency_id=user.agency_id,
        agency_code=agency_code,
        user_id=user.id,
        key_id=key.id,
    )
