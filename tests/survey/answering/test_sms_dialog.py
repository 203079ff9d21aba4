"""Two-way SMS answering through the real webhook and the real dispatcher: answers in every
digit form, re-prompt, completion, opt-out/opt-in, replies after completion or expiry."""

from __future__ import annotations

import itertools
import json
import re
from datetime import timedelta

import pytest

from survey.answering.api import signature_for
from survey.kernel.sms import count_parts
from survey.models import InboundMessage, Invitation, OptOut, OutboxMessage, Response
from survey.outreach.dispatcher import Dispatcher, DispatchOptions
from survey.outreach.gateways.memory import MemoryGateway
from tests.survey.sms_builders import SmsWorld

PHONE = "+989121234567"
_ids = itertools.count(1)


class Citizen:
    """Sends replies through the webhook and reads what the gateway sent back."""

    def __init__(self, client, context, gateway: MemoryGateway, phone: str = PHONE) -> None:  # type: ignore[no-untyped-def]
        self.client, self.context, self.gateway, self.phone = client, context, gateway, phone
        self.dispatcher = Dispatcher(
            context, gateway, options=DispatchOptions(rate_per_second=1e6), worker_id="w"
        )

    def reply(self, text: str, *, sender: str | None = None, message_id: str | None = None) -> str:
        body = json.dumps(
            {
                "from": sender or "0" + self.phone[3:],  # providers send the national form
                "to": "3000123",
                "text": text,
                "message_id": message_id or f"m{next(_ids)}",
            },
            ensure_ascii=False,
        ).encode()
        secret = self.context.settings.sms_webhook_secret
        response = self.client.post(
            "/api/v1/sms/inbound",
            content=body,
            headers={"X-Survey-Signature": signature_for(secret, body)},
        )
        assert response.status_code == 200, response.text
        self.dispatcher.run_once()
        return str(response.json()["outcome"])

    def inbox(self) -> list[str]:
        return self.gateway.texts_to(self.phone)


@pytest.fixture
def world(context):  # type: ignore[no-untyped-def]
    return SmsWorld(context)


@pytest.fixture
def citizen(client, context, world) -> Citizen:  # type: ignore[no-untyped-def]
    world.unit(PHONE)
    person = Citizen(client, context, MemoryGateway())
    person.dispatcher.run_once()
    assert len(person.inbox()) == 1
    return person


def test_a_full_dialog_in_persian_digits(citizen: Citizen, world: SmsWorld, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level("DEBUG")
    first = citizen.inbox()[0]
    assert "از خدمتی که گرفتید چقدر راضی بودید؟" in first and first.endswith("لغو۱۱")
    assert first.startswith("ثبت احوال، نظرسنجی «شناسنامه»")  # who asks, about which service
    assert citizen.reply("۴") == "answered"
    assert "با احترام" in citizen.inbox()[-1]
    assert citizen.reply("٥") == "answered"  # Arabic-Indic
    assert "سرعتی" in citizen.inbox()[-1]
    assert citizen.reply("جواب\u200cم ۳ است") == "completed"  # ZWNJ and words around
    assert "سپاسگزاریم" in citizen.inbox()[-1]
    [response] = world.rows(Response)
    assert response.answers == {"q_overall": 4, "q_respect": 5, "q_speed": 3}
    assert (response.status, response.channel) == ("completed", "sms")
    [invitation] = world.rows(Invitation)
    assert invitation.status == "completed" and invitation.completed_at is not None
    assert len(citizen.inbox()) == 4  # invite, two questions, thanks
    assert "inbound SMS" in caplog.text and "1234567" not in caplog.text  # no phone in logs


@pytest.mark.parametrize("text", ["۴", "٤", "\u200cامتیاز: 4!"])
def test_each_digit_form_answers(citizen: Citizen, world: SmsWorld, text: str) -> None:
    assert citizen.reply(text) == "answered"
    assert world.rows(Response)[0].answers == {"q_overall": 4}


def test_an_invalid_reply_gets_one_reprompt_then_silence(citizen: Citizen, world: SmsWorld) -> None:
    assert citizen.reply("عالی بود") == "reprompted"
    reprompt = citizen.inbox()[-1]
    assert reprompt.startswith("پاسخ را متوجه نشدیم") and "راضی بودید" in reprompt
    assert citizen.reply("7") == "ignored"  # out of range for 1-5, already re-prompted
    assert citizen.reply("45") == "ignored"
    assert len(citizen.inbox()) == 2
    assert citizen.reply("5") == "answered"  # a valid digit still counts
    assert citizen.reply("x") == "reprompted"  # a fresh re-prompt for the next item
    assert world.rows(Response)[0].answers == {"q_overall": 5}


def test_a_reply_after_completion_gets_one_polite_answer(citizen: Citizen) -> None:
    for digit in "345":
        citizen.reply(digit)
    assert citizen.reply("2") == "closed"
    assert "پیش‌تر ثبت شده" in citizen.inbox()[-1]
    assert citizen.reply("2") == "ignored"
    assert len(citizen.inbox()) == 5


def test_a_reply_after_expiry_gets_a_polite_answer(
    citizen: Citizen, world: SmsWorld, clock
) -> None:  # type: ignore[no-untyped-def]
    assert citizen.reply("4") == "answered"
    clock.now += timedelta(days=8)
    citizen.dispatcher.run_once()
    assert world.rows(Invitation)[0].status == "expired"
    assert citizen.reply("3") == "closed"
    assert "به پایان رسیده" in citizen.inbox()[-1]
    assert world.rows(Response)[0].answers == {"q_overall": 4}


@pytest.mark.parametrize("word", ["لغو۱۱", "۱۱", "STOP", "انصراف"])
def test_opt_out_words_stop_everything_at_once(
    citizen: Citizen,
    world: SmsWorld,
    context,
    word: str,  # type: ignore[no-untyped-def]
) -> None:
    assert citizen.reply(word) == "opted_out"
    [invitation] = world.rows(Invitation)
    assert invitation.status == "opted_out" and invitation.opted_out_at is not None
    [row] = world.rows(OptOut)
    assert row.phone_hash == context.vault.phone_hash(PHONE) and row.active
    assert "دیگر پیامک نظرسنجی برای شما نمی‌فرستیم" in citizen.inbox()[-1]
    assert count_parts(citizen.inbox()[-1]).parts == 1
    assert citizen.reply("4") == "ignored"  # no more questions
    assert len(citizen.inbox()) == 2
    assert world.rows(Response) == []


def test_twelve_opts_back_in(citizen: Citizen, world: SmsWorld) -> None:
    citizen.reply("11")
    assert citizen.reply("۱۲") == "opted_in"
    [row] = world.rows(OptOut)
    assert row.active is False
    assert "دوباره" in citizen.inbox()[-1]


def test_opt_out_cancels_a_queued_reminder_and_future_invitations(
    citizen: Citizen,
    world: SmsWorld,
    clock,  # type: ignore[no-untyped-def]
) -> None:
    clock.now += timedelta(hours=48)
    citizen.dispatcher.enqueue_reminders()  # queued, not yet sent
    citizen.reply("stop")
    assert ("reminder", "cancelled") in [(r.kind, r.status) for r in world.rows(OutboxMessage)]
    world.unit(PHONE)  # sampled again later
    citizen.dispatcher.run_once()
    assert [i.status for i in world.rows(Invitation)] == ["opted_out", "opted_out"]
    assert not any(m.kind == "reminder" for m in citizen.gateway.sent)


def test_a_duplicate_webhook_is_processed_once(citizen: Citizen, world: SmsWorld) -> None:
    assert citizen.reply("4", message_id="dup-1") == "answered"
    assert citizen.reply("5", message_id="dup-1") == "duplicate"
    assert world.rows(Response)[0].answers == {"q_overall": 4}
    assert len(world.rows(InboundMessage)) == 1


def test_strangers_get_no_answer(citizen: Citizen, world: SmsWorld) -> None:
    assert citizen.reply("4", sender="09350000000") == "unknown_sender"
    assert citizen.reply("4", sender="not a phone") == "unknown_sender"
    assert len(world.rows(OutboxMessage)) == 1


def test_a_reply_to_a_link_invitation_gets_the_link(client, context, world: SmsWorld) -> None:  # type: ignore[no-untyped-def]
    world.unit(PHONE, mode="sms_link", qid="core-transaction")
    person = Citizen(client, context, MemoryGateway())
    person.dispatcher.run_once()
    assert person.reply("5") == "use_link"
    links = [re.findall(r"https://survey\.example\.ir/s/[a-z2-7]{16}", t) for t in person.inbox()]
    assert links[-1] and links[-1] == links[0]  # the same working link as the invitation
    stored = world.rows(OutboxMessage)[-1].body
    assert "/s/****************" in stored and links[0][0] not in stored  # none at rest
    assert person.reply("5") == "ignored"
