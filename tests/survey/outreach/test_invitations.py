"""Invitations: tokens derived from the secret, rows created from sampled units."""

from __future__ import annotations

from datetime import timedelta

import pytest

from survey.kernel.sms import count_parts
from survey.kernel.tokens import TOKEN_LENGTH, looks_like_token, token_for, token_hash
from survey.models import Agency, Invitation, OutboxMessage, QuestionnaireVersion, SampledUnit
from survey.outreach.invitations import create_invitations
from tests.survey.sms_builders import SmsWorld

SECRET = bytes(range(32))


def test_token_is_stable_short_and_case_insensitive() -> None:
    token = token_for(SECRET, 42)
    assert token == token_for(SECRET, 42)
    assert len(token) == TOKEN_LENGTH == 16
    assert looks_like_token(token) and looks_like_token(token.upper())
    assert token_hash(token) == token_hash(token.upper()) == token_hash(f" {token} ")
    assert len(token_hash(token)) == 64


def test_tokens_differ_by_invitation_and_by_secret() -> None:
    tokens = {token_for(SECRET, i) for i in range(1, 2001)}
    assert len(tokens) == 2000
    assert token_for(SECRET, 1) != token_for(bytes(32), 1)


@pytest.mark.parametrize("bad", [0, -1, True, "7"])
def test_token_refuses_ids_that_are_not_invitation_ids(bad: object) -> None:
    with pytest.raises(ValueError, match="invitation_id"):
        token_for(SECRET, bad)  # type: ignore[arg-type]  # wrong types on purpose


@pytest.mark.parametrize("candidate", ["", "short", "0" * 16, "uycuxjh5qmbgxym!", "a" * 17])
def test_shape_check_rejects_non_tokens(candidate: str) -> None:
    assert not looks_like_token(candidate)


# -- invitations from sampled units ------------------------------------------------------------

PHONE = "+989121234567"


def _create(context, limit: int = 500):
    return create_invitations(
        context.sessions,
        secret_key=context.settings.secret_key,
        public_base_url=context.settings.public_base_url,
        now=context.clock(),
        limit=limit,
    )


def test_invitation_times_follow_the_plan(context, clock) -> None:
    world = SmsWorld(
        context, quiet_hours=["21:00", "08:00"], reminder_after_hours=24, expires_after_days=3
    )
    world.unit(PHONE)
    assert _create(context).invited == 1
    [invitation] = world.rows(Invitation)
    assert invitation.due_at == clock.now  # 13:00 in Tehran: not quiet
    assert invitation.reminder_due_at == clock.now + timedelta(hours=24)
    assert invitation.expires_at == clock.now + timedelta(days=3)
    assert (invitation.status, invitation.mode, invitation.language) == (
        "pending",
        "sms_dialog",
        "fa",
    )
    [message] = world.rows(OutboxMessage)
    assert (message.kind, message.status, message.next_attempt_at) == (
        "invite",
        "queued",
        clock.now,
    )
    assert message.parts == count_parts(message.body).parts <= 2


def test_no_reminder_when_the_plan_has_none(context) -> None:
    world = SmsWorld(context, reminder_after_hours=None)
    world.unit(PHONE)
    _create(context)
    assert world.rows(Invitation)[0].reminder_due_at is None


def test_each_unit_is_invited_once_and_batches_are_bounded(context) -> None:
    world = SmsWorld(context)
    for i in range(5):
        world.unit(f"+98912555{i:04d}")
    assert _create(context, limit=3).invited == 3
    assert _create(context, limit=3).invited == 2
    assert _create(context, limit=3).total == 0
    assert len(world.rows(Invitation)) == 5 and len(world.rows(OutboxMessage)) == 5
    assert {u.status for u in world.rows(SampledUnit)} == {"invited"}


def test_units_wait_until_their_questionnaire_is_registered(context) -> None:
    world = SmsWorld(context)
    world.unit(PHONE, qid="not-registered-yet")
    assert _create(context).total == 0
    assert [u.status for u in world.rows(SampledUnit)] == ["pending"]


def test_the_plans_questionnaire_version_is_used_and_marked(context, clock) -> None:
    world = SmsWorld(context)
    world.unit(PHONE, mode="sms_link", qid="core-transaction", language="en")
    _create(context)
    [version] = world.rows(QuestionnaireVersion, qid="core-transaction")
    [invitation] = world.rows(Invitation)
    assert invitation.questionnaire_version_id == version.id
    assert version.first_used_at == clock.now
    assert world.rows(QuestionnaireVersion, qid="sms-short")[0].first_used_at is None
    assert world.rows(OutboxMessage)[0].body.endswith("STOP: 11")


def test_an_unknown_language_falls_back_to_persian(context) -> None:
    world = SmsWorld(context)
    world.unit(PHONE, language="de")
    _create(context)
    assert world.rows(Invitation)[0].language == "fa"
    assert world.rows(OutboxMessage)[0].body.endswith("لغو۱۱")


def test_a_dialog_without_sms_items_is_marked_unsendable(context) -> None:
    world = SmsWorld(context)
    with context.sessions.begin() as session:
        from questionnaires.loading import load_library

        content = load_library()["core-transaction"].to_dict()
        content.pop("sms", None)
        session.add(
            QuestionnaireVersion(
                qid="no-sms",
                version=1,
                title_fa="x",
                title_en="x",
                content={**content, "id": "no-sms"},
                content_hash="h",
            )
        )
    world.unit(PHONE, qid="no-sms")
    assert _create(context).unsendable == 1
    assert [u.status for u in world.rows(SampledUnit)] == ["unsendable"]
    assert world.rows(Invitation) == []


def test_each_invitation_names_the_agency_by_its_sms_name_the_service_and_the_day(
    context, clock
) -> None:
    world = SmsWorld(context)
    with context.sessions.begin() as session:
        agency = session.get(Agency, world.agency_id)
        agency.sms_name_fa, agency.sms_name_en = "ثبت احوال کشور", "Civil Registration"
    world.unit(PHONE, mode="sms_link", qid="core-transaction")
    world.unit("+989121234568", mode="sms_link", qid="core-transaction", language="en")
    world.unit("+989121234569")  # an SMS dialogue
    assert _create(context).invited == 3
    link_fa, link_en, dialog = (m.body for m in world.rows(OutboxMessage))
    day_fa = "۱۹ اسفند"  # the test clock's day, 2026-03-10
    assert link_fa.startswith(f"ثبت احوال کشور: نظرتان درباره «شناسنامه» در {day_fa}")
    assert link_en.startswith(
        'Civil Registration: your opinion of "Birth cert" on 19 Esfand (10 Mar)'
    )
    assert dialog.startswith(f"ثبت احوال کشور «شناسنامه» {day_fa}: از خدمتی که گرفتید")
    assert all(count_parts(text).parts <= 2 for text in (link_fa, link_en, dialog))


def test_without_an_sms_name_a_long_full_name_is_shortened_not_dropped(context) -> None:
    world = SmsWorld(context)
    with context.sessions.begin() as session:
        agency = session.get(Agency, world.agency_id)
        agency.name_fa = "مرکز خدمات الکترونیک قضایی قوه قضاییه استان تهران بزرگ"
    world.unit(PHONE, mode="sms_link", qid="core-transaction")
    assert _create(context).invited == 1
    [message] = world.rows(OutboxMessage)
    assert message.body.startswith("مرکز خدمات الکترونیک")
    assert "…:" in message.body and message.parts == count_parts(message.body).parts == 2
