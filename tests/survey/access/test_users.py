"""Staff users and their tokens (survey.access.users), through the service functions."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from survey.access import users
from survey.context import AppContext
from survey.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from survey.kernel.credentials import key_hash
from survey.kernel.db import transaction
from survey.kernel.principal import CLI_PRINCIPAL
from survey.models import ApiKey, AppUser, AuditLog
from survey.registry import agencies as registry
from tests.survey.admin_builders import add_tax_agency


def test_an_agency_operator_belongs_to_one_agency_and_sees_only_it(context: AppContext) -> None:
    add_tax_agency(context)
    with transaction(context.sessions) as session:
        registry.add_agency(
            session, CLI_PRINCIPAL, code="SSO", name_fa="تأمین اجتماعی", name_en="SSO"
        )
        user, issued = users.add_user(
            session,
            CLI_PRINCIPAL,
            username="tax-op",
            role="agency",
            agency="TAX",
            display_name="Ali",
        )
    assert (user.username, user.role, user.agency, user.active_tokens) == (
        "tax-op",
        "agency",
        "TAX",
        1,
    )
    principal = context.keys.resolve(f"Bearer {issued.key}")
    assert (principal.kind, principal.role, principal.agency_code) == ("staff", "agency", "TAX")
    with context.read_sessions() as session:
        assert [a.code for a in registry.list_agencies(session, principal)] == ["TAX"]
        assert {s.agency for s in registry.list_services(session, principal)} == {"TAX"}
        assert [a.code for a in registry.list_agencies(session, CLI_PRINCIPAL)] == ["SSO", "TAX"]


def test_every_problem_of_a_new_user_is_named(context: AppContext) -> None:
    with transaction(context.sessions) as session, pytest.raises(InvalidInput) as caught:
        users.add_user(session, CLI_PRINCIPAL, username="A b", role="chief", display_name="x" * 201)
    assert {(p.field, p.message.split(";")[0]) for p in caught.value.problems} == {
        (
            "username",
            "must be 2-80 lower-case Latin letters, digits, '.', '-' or '_', "
            "starting with a letter",
        ),
        ("role", "must be one of admin, statistician, agency, viewer"),
        ("name", "must be at most 200 characters"),
    }
    with transaction(context.sessions) as session, pytest.raises(InvalidInput) as caught:
        users.add_user(session, CLI_PRINCIPAL, username="viewer1", role="viewer", agency="TAX")
    assert [p.field for p in caught.value.problems] == ["agency"]
    with transaction(context.sessions) as session, pytest.raises(InvalidInput) as caught:
        users.add_user(session, CLI_PRINCIPAL, username="op", role="agency", agency="GHOST")
    assert str(caught.value.problems[0]) == "agency: no agency with code 'GHOST'"


def test_tokens_are_stored_hashed_and_stop_with_the_user(context: AppContext) -> None:
    with transaction(context.sessions) as session:
        _, first = users.add_user(session, CLI_PRINCIPAL, username="mina", role="viewer")
        second = users.issue_token(session, CLI_PRINCIPAL, "mina")
    with context.sessions() as session:
        stored = set(session.scalars(sa.select(ApiKey.key_hash)))
        audit = session.scalars(sa.select(AuditLog.action).order_by(AuditLog.id)).all()
    assert stored == {key_hash(first.key), key_hash(second.key)}
    assert audit == ["user.add", "user.token.issue", "user.token.issue"]
    with transaction(context.sessions) as session:
        session.execute(sa.update(AppUser).where(AppUser.username == "mina").values(active=False))
    context.keys.forget()
    with pytest.raises(NotAuthenticated):
        context.keys.resolve(f"Bearer {second.key}")
    with transaction(context.sessions) as session, pytest.raises(InvalidInput, match="deactivated"):
        users.issue_token(session, CLI_PRINCIPAL, "mina")
    with transaction(context.sessions) as session, pytest.raises(NotFound):
        users.issue_token(session, CLI_PRINCIPAL, "nobody")
    with transaction(context.sessions) as session, pytest.raises(Conflict):
        users.add_user(session, CLI_PRINCIPAL, username="mina", role="admin")
