"""Staff users and their API tokens.

A token is shown once, when it is issued; only its SHA-256 is stored, in `ApiKey` with the
user's id. Roles: `admin` (everything), `statistician` (registry, plans, questionnaires),
`agency` (the operator of one agency: sees only that agency), `viewer` (reads).
A user may also have a password (argon2, see survey.access.sessions) to sign in on `/login`.
Every change to a user is in the audit log; password hashes never are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from survey.access import sessions, store
from survey.errors import Conflict, InvalidInput, NotFound, Problem
from survey.kernel import audit, credentials
from survey.kernel.credentials import ONCE, IssuedKey
from survey.kernel.db import transaction
from survey.kernel.principal import Principal
from survey.models import ROLES, ApiKey, AppUser

if TYPE_CHECKING:
    from survey.context import AppContext

__all__ = [
    "USERNAME_PATTERN",
    "AccountChange",
    "NewToken",
    "NewUser",
    "UserChanged",
    "UserList",
    "UserView",
    "add_staff",
    "add_user",
    "change_account",
    "change_password",
    "issue_staff_token",
    "issue_token",
    "list_staff",
    "list_users",
    "set_active",
    "set_password",
    "unlock",
]

USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{1,79}$")


@dataclass(frozen=True, slots=True)
class UserView:
    username: str
    display_name: str
    role: str
    agency: str | None
    active: bool
    active_tokens: int
    created_at: datetime
    has_password: bool = False
    locked_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class UserList:
    users: list[UserView]


@dataclass(frozen=True, slots=True)
class UserChanged:
    user: UserView


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user just added and their first API token (shown this once)."""

    user: UserView
    token: str
    note: str = f"the token is {ONCE}"


@dataclass(frozen=True, slots=True)
class NewToken:
    """A new API token of the user named `user` (shown this once)."""

    user: str
    token: str
    note: str = f"the token is {ONCE}"


AccountChange = Literal["activate", "deactivate", "unlock"]


# -- each in a transaction of its own (the API's way in) ------------------------------------


def list_staff(context: AppContext) -> UserList:
    with context.read_sessions() as session:
        return UserList(list_users(session))


def add_staff(
    context: AppContext,
    principal: Principal,
    *,
    username: str,
    role: str,
    agency: str | None = None,
    display_name: str = "",
    password: str | None = None,
) -> NewUser:
    """`add_user` committed: the user and their first token."""
    with transaction(context.sessions) as session:
        user, issued = add_user(
            session,
            principal,
            username=username,
            role=role,
            agency=agency,
            display_name=display_name,
            password=password,
        )
    return NewUser(user, issued.key)


def issue_staff_token(context: AppContext, principal: Principal, username: str) -> NewToken:
    """`issue_token` committed."""
    with transaction(context.sessions) as session:
        issued = issue_token(session, principal, username)
    return NewToken(username, issued.key)


def change_password(
    context: AppContext, principal: Principal, username: str, password: str
) -> UserChanged:
    """`set_password` committed; the user's cached sessions are forgotten."""
    with transaction(context.sessions) as session:
        view = set_password(session, principal, username, password, now=context.clock())
    context.keys.forget()
    return UserChanged(view)


def change_account(
    context: AppContext, principal: Principal, username: str, change: AccountChange
) -> UserChanged:
    """Activate, deactivate (every token and session stops working) or unlock a user."""
    now = context.clock()
    with transaction(context.sessions) as session:
        if change == "unlock":
            view = unlock(session, principal, username, now=now)
        else:
            view = set_active(session, principal, username, change == "activate", now=now)
    context.keys.forget()
    return UserChanged(view)


# -- in the caller's transaction -------------------------------------------------------------


def add_user(
    session: Session,
    principal: Principal,
    *,
    username: str,
    role: str,
    agency: str | None = None,
    display_name: str = "",
    password: str | None = None,
) -> tuple[UserView, IssuedKey]:
    """Create a staff user and issue a first API token (and set a password when given).

    Role `agency` needs the agency it operates for; other roles must not name one.
    """
    problems = []
    if not USERNAME_PATTERN.match(username or ""):
        problems.append(
            Problem(
                "must be 2-80 lower-case Latin letters, digits, '.', '-' or '_', starting with a "
                f"letter; got {username!r}",
                field="username",
            )
        )
    if role not in ROLES:
        problems.append(Problem(f"must be one of {', '.join(ROLES)}; got {role!r}", field="role"))
    agency_row = None
    if role == "agency" and not agency:
        problems.append(Problem("role 'agency' needs the agency it works for", field="agency"))
    elif agency and role in ROLES and role != "agency":
        problems.append(
            Problem(
                f"only users with role 'agency' belong to an agency; got role {role!r}",
                field="agency",
            )
        )
    elif agency:
        agency_row = store.agency_by_code(session, agency)
        if agency_row is None:
            problems.append(Problem(f"no agency with code {agency!r}", field="agency"))
    if len(display_name) > 200:
        problems.append(
            Problem(f"must be at most 200 characters; got {len(display_name)}", field="name")
        )
    if password is not None:
        try:
            sessions.check_password_rules(password)
        except InvalidInput as exc:
            problems.extend(exc.problems)
    if problems:
        raise InvalidInput("the user cannot be added", problems)
    if store.username_taken(session, username):
        raise Conflict(f"a user named {username!r} already exists")
    user = AppUser(
        username=username,
        display_name=display_name.strip(),
        role=role,
        agency_id=agency_row.id if agency_row else None,
        password_hash=sessions.hash_password(password) if password is not None else None,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a user named {username!r} was added at the same time") from None
    audit.record(
        session,
        principal,
        "user.add",
        "user",
        username,
        after={
            "username": username,
            "role": role,
            "agency": agency,
            "name": user.display_name,
            "password": password is not None,
        },
    )
    issued = _issue(session, principal, user, label="first token")
    return _view(session, user), issued


def issue_token(session: Session, principal: Principal, username: str) -> IssuedKey:
    """A new API token for the user; earlier tokens stay valid until revoked."""
    user = store.find_user(session, username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    if not user.active:
        raise InvalidInput(f"user {username!r} is deactivated; no token can be issued")
    return _issue(session, principal, user, label="issued")


def set_password(
    session: Session, principal: Principal, username: str, password: str, *, now: datetime
) -> UserView:
    """Set (or replace) a user's password; ends their open browser sessions and any lockout."""
    user = _user(session, username)
    had = user.password_hash is not None
    user.password_hash = sessions.hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    ended = sessions.end_sessions(session, user.id or 0, now=now)
    audit.record(
        session,
        principal,
        "user.password.set",
        "user",
        username,
        before={"password": had},
        after={"password": True, "sessions_ended": ended},
        at=now,
    )
    return _view(session, user)


def set_active(
    session: Session, principal: Principal, username: str, active: bool, *, now: datetime
) -> UserView:
    """Deactivate (every token and session stops working) or reactivate a user."""
    user = _user(session, username)
    if principal.kind == "staff" and principal.user_id == user.id and not active:
        raise InvalidInput("you cannot deactivate your own account")
    before = user.active
    user.active = active
    ended = 0 if active else sessions.end_sessions(session, user.id or 0, now=now)
    audit.record(
        session,
        principal,
        "user.activate" if active else "user.deactivate",
        "user",
        username,
        before={"active": before},
        after={"active": active, "sessions_ended": ended},
        at=now,
    )
    return _view(session, user)


def unlock(session: Session, principal: Principal, username: str, *, now: datetime) -> UserView:
    """Lift a lockout after failed sign-ins before it runs out."""
    user = _user(session, username)
    before = {
        "locked_until": user.locked_until.isoformat() if user.locked_until else None,
        "failed_logins": user.failed_logins,
    }
    user.locked_until = None
    user.failed_logins = 0
    audit.record(
        session,
        principal,
        "user.unlock",
        "user",
        username,
        before=before,
        after={"locked_until": None, "failed_logins": 0},
        at=now,
    )
    return _view(session, user)


def _user(session: Session, username: str) -> AppUser:
    user = store.find_user(session, username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def list_users(session: Session) -> list[UserView]:
    return [_view(session, user) for user in store.all_users(session)]


def _issue(session: Session, principal: Principal, user: AppUser, *, label: str) -> IssuedKey:
    key = credentials.new_key("staff")
    prefix = credentials.display_prefix(key)
    session.add(
        ApiKey(key_hash=credentials.key_hash(key), prefix=prefix, user_id=user.id, label=label)
    )
    audit.record(
        session, principal, "user.token.issue", "user", user.username, after={"prefix": prefix}
    )
    return IssuedKey(owner=user.username, key=key, prefix=prefix)


def _view(session: Session, user: AppUser) -> UserView:
    agency = store.agency_by_id(session, user.agency_id) if user.agency_id else None
    tokens = store.active_token_count(session, user.id)
    return UserView(
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        agency=agency.code if agency else None,
        active=user.active,
        active_tokens=tokens,
        created_at=user.created_at,
        has_password=user.password_hash is not None,
        locked_until=user.locked_until,
    )
