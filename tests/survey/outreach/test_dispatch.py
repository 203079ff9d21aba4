"""The dispatcher: invitations, quiet hours, rate, retries, crash recovery, racing dispatchers,
reminders and expiry; every check through the public services on a real database."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from survey.context import AppContext
from survey.kernel.tokens import token_for, token_hash
from survey.models import Invitation, OutboxMessage, QuestionnaireVersion, SampledUnit
from survey.outreach import outbox
from survey.outreach.dispatcher import Dispatcher, DispatchOptions, Pacer
from survey.outreach.gateways.base import GatewayUnavailable, MessageRejected
from survey.outreach.gateways.console import ConsoleGateway
from survey.outreach.gateways.memory import MemoryGateway
from survey.outreach.schedule import RetryPolicy
from tests.survey.sms_builders import SmsWorld

PHONE = "+989121234567"
TEHRAN = timedelta(hours=3, minutes=30)


class FakeTime:
    """Monotonic time that only moves when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _dispatcher(
    context: AppContext, gateway: MemoryGateway | ConsoleGateway, **options: Any
) -> Dispatcher:
    fake = FakeTime()
    opts = DispatchOptions(**options)
    pacer = Pacer(opts.rate_per_second, monotonic=fake.monotonic, sleep=fake.sleep)
    return Dispatcher(context, gateway, options=opts, pacer=pacer, worker_id="w1")


def _tehran(clock, hour: int, minute: int = 0) -> datetime:
    local_day = (clock.now + TEHRAN).date()
    return (
        datetime(local_day.year, local_day.month, local_day.day, hour, minute, tzinfo=UTC) - TEHRAN
    )


def test_a_sampled_unit_becomes_one_invitation_with_its_first_message(context, clock) -> None:
    world = SmsWorld(context)
    world.unit(PHONE)
    gateway = MemoryGateway()
    report = _dispatcher(context, gateway).run_once()
    assert report.invited == 1 and report.sent == 1

    [invitation] = world.rows(Invitation)
    assert invitation.token_hash == token_hash(
        token_for(context.settings.secret_key, invitation.id)
    )
    assert invitation.status == "sent" and invitation.sent_at == clock.now
    assert invitation.expires_at == clock.now + timedelta(days=7)
    assert invitation.reminder_due_at == clock.now + timedelta(hours=48)
    assert [u.status for u in world.rows(SampledUnit)] == ["invited"]
    [version] = world.rows(QuestionnaireVersion, qid="sms-short")
    assert version.first_used_at == clock.now
    [sms] = gateway.sent
    assert sms.to == PHONE and sms.kind == "invite" and sms.local_id == f"inv{invitation.id}-invite"
    assert sms.text.endswith("لغو۱۱") and "ثبت احوال" in sms.text
    assert _dispatcher(context, gateway).run_once().sent == 0  # nothing is sent twice


def test_link_invitation_carries_the_token_link(context, clock) -> None:
    world = SmsWorld(context)
    world.unit(PHONE, mode="sms_link", qid="core-transaction", language="en")
    gateway = MemoryGateway()
    _dispatcher(context, gateway).run_once()
    [invitation] = world.rows(Invitation)
    token = token_for(context.settings.secret_key, invitation.id)
    [sms] = gateway.sent
    assert f"https://survey.example.ir/s/{token}" in sms.text
    assert sms.text.endswith("STOP: 11")


def test_a_message_due_in_quiet_hours_goes_at_eight_tehran(context, clock) -> None:
    world = SmsWorld(context, quiet_hours=["21:00", "08:00"])
    clock.now = _tehran(clock, 22, 30)
    world.unit(PHONE)
    gateway = MemoryGateway()
    dispatcher = _dispatcher(context, gateway)
    dispatcher.run_once()
    [invitation] = world.rows(Invitation)
    eight = _tehran(clock, 8) + timedelta(days=1)
    assert invitation.due_at == eight
    assert invitation.expires_at == eight + timedelta(days=7)
    assert gateway.sent == []
    clock.now = eight - timedelta(minutes=1)
    dispatcher.run_once()
    assert gateway.sent == []
    clock.now = eight
    dispatcher.run_once()
    assert len(gateway.sent) == 1


def test_a_retry_that_falls_in_quiet_hours_waits_for_the_morning(context, clock) -> None:
    world = SmsWorld(context, quiet_hours=["21:00", "08:00"])
    clock.now = _tehran(clock, 20, 59)
    world.unit(PHONE)
    gateway = MemoryGateway()
    gateway.fail_next(1, GatewayUnavailable("provider down"))
    _dispatcher(context, gateway).run_once()
    [row] = world.rows(OutboxMessage)
    assert row.status == "queued"
    assert row.next_attempt_at == _tehran(clock, 8) + timedelta(days=1)


def test_no_quiet_hours_when_the_plan_says_null(context, clock) -> None:
    world = SmsWorld(context, quiet_hours=None)
    clock.now = _tehran(clock, 23, 45)
    world.unit(PHONE)
    gateway = MemoryGateway()
    _dispatcher(context, gateway).run_once()
    assert len(gateway.sent) == 1


def test_sends_are_paced_at_the_configured_rate(context, clock) -> None:
    world = SmsWorld(context)
    for i in range(10):
        world.unit(f"+98912000{i:04d}")
    fake = FakeTime()
    gateway = MemoryGateway()
    dispatcher = Dispatcher(
        context,
        gateway,
        options=DispatchOptions(rate_per_second=5, batch_size=4),
        pacer=Pacer(5, monotonic=fake.monotonic, sleep=fake.sleep),
    )
    assert dispatcher.run_once().sent == 10
    assert fake.now == pytest.approx(9 / 5)  # 10 sends, 0.2 s apart
    assert all(s == pytest.approx(0.2) for s in fake.sleeps)


def test_retries_back_off_and_never_duplicate(context, clock) -> None:
    world = SmsWorld(context)
    world.unit(PHONE)
    gateway = MemoryGateway()
    gateway.fail_next(2, GatewayUnavailable("provider down"))
    dispatcher = _dispatcher(context, gateway, retry=RetryPolicy(base=timedelta(minutes=1)))
    start = clock.now
    assert dispatcher.run_once().retried == 1
    [row] = world.rows(OutboxMessage)
    assert (row.status, row.attempts, row.next_attempt_at) == (
        "queued",
        1,
        start + timedelta(minutes=1),
    )
    clock.now = start + timedelta(seconds=59)
    assert dispatcher.run_once().retried == 0  # not due yet
    clock.now = start + timedelta(minutes=1)
    assert dispatcher.run_once().retried == 1
    [row] = world.rows(OutboxMessage)
    assert row.next_attempt_at == clock.now + timedelta(minutes=2)  # doubled
    clock.now += timedelta(minutes=2)
    assert dispatcher.run_once().sent == 1
    [row] = world.rows(OutboxMessage)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
    assert len(gateway.sent) == 1
    assert row.local_id in gateway.status_calls  # asked before each retry


def test_a_message_fails_for_good_after_max_attempts(context, clock) -> None:
    world = SmsWorld(context)
    world.unit(PHONE)
    gateway = MemoryGateway()
    gateway.fail_next(3, GatewayUnavailable("provider down"))
    dispatcher = _dispatcher(context, gateway, retry=RetryPolicy(max_attempts=3))
    for _ in range(3):
        dispatcher.run_once()
        clock.now += timedelta(hours=1)
    [row] = world.rows(OutboxMessage)
    [invitation] = world.rows(Invitation)
    assert (row.status, row.attempts) == ("failed", 3)
    assert invitation.status == "failed" and invitation.failed_at is not None
    dispatcher.run_once()
    assert gateway.sent == []


def test_a_rejected_message_is_not_retried(context, clock) -> None:
    world = SmsWorld(context)
    world.unit(PHONE)
    gateway = MemoryGateway()
    gateway.fail_next(1, MessageRejected("invalid receptor"))
    report = _dispatcher(context, gateway).run_once()
    assert report.failed == 1
    [row] = world.rows(OutboxMessage)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "invalid receptor")


def test_an_ambiguous_failure_after_the_provider_got_it_is_not_resent(context, clock) -> None:
    world = SmsWorld(context)
    world.unit(PHONE)
    gateway = MemoryGateway()

    def lost_answer(_sms: object) -> None:
        raise GatewayUnavailable("read timeout")

    gateway.after_send(lost_answer)
    dispatcher = _dispatcher(context, gateway)
    assert dispatcher.run_once().retried == 1
    gateway.after_send(None)
    clock.now += timedelta(hours=1)
    assert dispatcher.run_once().recovered == 1
    assert len(gateway.sent) == 1
    [row] = world.rows(OutboxMessage)
    assert row.status == "sent"


def _crash_after_claim(context: AppContext) -> outbox.ClaimedMessage:
    """A dispatcher claims (commits `sending`) and dies before anything else."""
    [claimed] = outbox.claim_due(
        context.sessions, worker="dead", now=context.clock(), limit=10, lease=timedelta(minutes=10)
    )
    return claimed


def test_crash_between_claim_and_gateway_call_sends_once_after_the_lease(context, clock) -> None:
    world = SmsWorld(context)
    world.unit(PHONE)
    gateway = MemoryGateway()
    dispatcher = _dispatcher(context, gateway)
    dispatcher.create_invitations()
    _crash_after_claim(context)
    clock.now += timedelta(minutes=9)
    dispatcher.run_once()
    assert gateway.sent == []  # the lease still holds
    clock.now += timedelta(minutes=2)
    report = dispatcher.run_once()
    assert report.sent == 1 and len(gateway.sent) == 1
    [row] = world.rows(OutboxMessage)
    assert (row.status, row.attempts, row.claimed_by) == ("sent", 2, "w1")
    assert gateway.status_calls == [row.local_id]  # asked before resending


def test_crash_after_gateway_call_is_recovered_without_resending(context, clock) -> None:
    world = SmsWorld(context)
    world.unit(PHONE)
    gateway = MemoryGateway()
    dispatcher = _dispatcher(context, gateway)
    dispatcher.create_invitations()
    claimed = _crash_after_claim(context)
    from survey.outreach.gateways.base import OutgoingSms

    gateway.send(
        OutgoingSms(PHONE, claimed.body, claimed.local_id, claimed.invitation_id, "invite")
    )
    clock.now += timedelta(minutes=11)
    report = dispatcher.run_once()
    assert (report.sent, report.recovered) == (0, 1)
    assert len(gateway.sent) == 1
    [row] = world.rows(OutboxMessage)
    [invitation] = world.rows(Invitation)
    assert row.status == "sent" and invitation.status == "sent"


def test_two_dispatchers_racing_send_every_message_exactly_once(
    context, clock, migrated_settings
) -> None:
    """Two dispatchers with their own engines race on one PostgreSQL database through
    invitation creation, sending, and (two days later) reminders."""
    if migrated_settings.is_sqlite:
        pytest.skip("racing dispatchers need PostgreSQL (SKIP LOCKED); SQLite has one writer")
    world = SmsWorld(context)
    for i in range(120):
        world.unit(f"+98912100{i:04d}")
    gateway = MemoryGateway()  # records every call, duplicates included
    contexts = [AppContext.build(migrated_settings, clock=clock) for _ in range(2)]
    errors: list[BaseException] = []

    def race() -> None:
        barrier = threading.Barrier(2)

        def run(ctx: AppContext, name: str) -> None:
            try:
                barrier.wait()
                Dispatcher(
                    ctx,
                    gateway,
                    options=DispatchOptions(rate_per_second=1e6, batch_size=5, invitation_batch=10),
                    worker_id=name,
                ).run_once()
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(c, f"w{i}")) for i, c in enumerate(contexts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    try:
        race()
        clock.now += timedelta(hours=48)
        race()
    finally:
        for ctx in contexts:
            ctx.close()
    assert errors == []
    assert len(world.rows(Invitation)) == 120
    ids = gateway.local_ids()
    assert len(ids) == 240 and len(set(ids)) == 240  # 120 invitations + 120 reminders, once each
    rows = world.rows(OutboxMessage)
    assert {r.status for r in rows} == {"sent"} and len(rows) == 240
    assert {r.claimed_by for r in rows} == {"w0", "w1"}  # both took part


def test_one_reminder_when_there_is_no_answer(context, clock) -> None:
    world = SmsWorld(context, reminder_after_hours=48)
    world.unit(PHONE, mode="sms_link", qid="core-transaction")
    world.unit("+989121110000", mode="sms_link", qid="core-transaction")
    gateway = MemoryGateway()
    dispatcher = _dispatcher(context, gateway)
    dispatcher.run_once()
    answered = world.rows(Invitation)[1]
    with context.sessions.begin() as session:
        session.get(Invitation, answered.id).status = "completed"
    clock.now += timedelta(hours=47)
    assert dispatcher.run_once().reminders == 0
    clock.now += timedelta(hours=1)
    assert dispatcher.run_once().reminders == 1
    clock.now += timedelta(hours=24)
    assert dispatcher.run_once().reminders == 0
    kinds = [(m.to, m.kind) for m in gateway.sent]
    assert kinds.count((PHONE, "reminder")) == 1
    assert ("+989121110000", "reminder") not in kinds
    reminder = next(m for m in gateway.sent if m.kind == "reminder")
    assert reminder.text.startswith("ثبت احوال: یادآوری") and reminder.text.endswith("لغو۱۱")
    assert "«شناسنامه»" in reminder.text  # the service (and the day) where they fit
    assert world.rows(Invitation)[0].reminded_at == clock.now - timedelta(hours=24)


def test_invitations_expire_and_their_reminders_are_cancelled(context, clock) -> None:
    world = SmsWorld(
        context, reminder_after_hours=1, expires_after_days=2, quiet_hours=["21:00", "08:00"]
    )
    world.unit(PHONE)
    gateway = MemoryGateway()
    dispatcher = _dispatcher(context, gateway)
    dispatcher.run_once()
    clock.now = _tehran(clock, 22)  # reminder due, but quiet hours hold it until 08:00
    assert dispatcher.run_once().reminders == 1
    clock.now = world.rows(Invitation)[0].expires_at
    assert dispatcher.run_once().expired == 1
    [invitation] = world.rows(Invitation)
    assert invitation.status == "expired" and invitation.expired_at == clock.now
    assert [(r.kind, r.status) for r in world.rows(OutboxMessage)] == [
        ("invite", "sent"),
        ("reminder", "cancelled"),
    ]
    assert [m.kind for m in gateway.sent] == ["invite"]


def test_an_opted_out_number_gets_no_invitation(context, clock) -> None:
    from survey.models import OptOut

    world = SmsWorld(context)
    world.unit(PHONE)
    with context.sessions.begin() as session:
        session.add(OptOut(phone_hash=context.vault.phone_hash(PHONE), source="sms"))
    gateway = MemoryGateway()
    _dispatcher(context, gateway).run_once()
    [invitation] = world.rows(Invitation)
    assert invitation.status == "opted_out" and gateway.sent == []
    assert world.rows(OutboxMessage) == []


def test_no_phone_in_logs(context, clock, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    world = SmsWorld(context)
    world.unit(PHONE, mode="sms_link", qid="core-transaction")
    gateway = ConsoleGateway()
    dispatcher = _dispatcher(context, gateway)
    dispatcher.run_once()
    assert "inv1-invite" in caplog.text
    assert "9121234567" not in caplog.text and "/s/<token>" in caplog.text
    token = token_for(context.settings.secret_key, 1)
    assert token not in caplog.text


def test_run_forever_stops_on_the_event(context, clock) -> None:
    world = SmsWorld(context)
    world.unit(PHONE)
    gateway = MemoryGateway()
    stop = threading.Event()
    dispatcher = _dispatcher(context, gateway, poll_seconds=0.05)
    thread = threading.Thread(target=dispatcher.run_forever, args=(stop,))
    thread.start()
    for _ in range(100):
        if gateway.sent:
            break
        threading.Event().wait(0.05)
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and len(gateway.sent) == 1


def test_a_stop_mid_batch_gives_the_unsent_messages_back_at_once(context, clock) -> None:
    world = SmsWorld(context)
    for i in range(6):
        world.unit(f"+98912444{i:04d}")
    gateway = MemoryGateway()
    stop = threading.Event()
    gateway.after_send(lambda _: stop.set())  # SIGTERM while the first message goes out
    first = _dispatcher(context, gateway, batch_size=6, poll_seconds=60)
    thread = threading.Thread(target=first.run_forever, args=(stop,))
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "the dispatcher kept sending its batch after the stop"
    assert len(gateway.sent) == 1
    rows = world.rows(OutboxMessage)
    assert sorted(r.status for r in rows) == ["queued"] * 5 + ["sent"]
    assert all(r.attempts == 0 and r.claimed_by is None for r in rows if r.status == "queued")
    # The next dispatcher sends the rest at once (no lease to wait for), each exactly once,
    # without asking the gateway first (none of them was ever handed to it).
    gateway.after_send(None)
    second = Dispatcher(context, gateway, options=DispatchOptions(), worker_id="w2")
    assert second.run_once().sent == 5
    assert sorted(m.to for m in gateway.sent) == [f"+98912444{i:04d}" for i in range(6)]
    assert gateway.status_calls == []


def test_one_pass_handles_more_than_a_batch(context, clock) -> None:
    world = SmsWorld(context, reminder_after_hours=1, expires_after_days=1)
    for i in range(5):
        world.unit(f"+98912333{i:04d}")
    gateway = MemoryGateway()
    dispatcher = _dispatcher(context, gateway, invitation_batch=2, batch_size=2)
    report = dispatcher.run_once()
    assert (report.invited, report.sent) == (5, 5)
    clock.now += timedelta(hours=1)
    report = dispatcher.run_once()
    assert (report.reminders, report.sent) == (5, 5)
    clock.now += timedelta(days=1)
    assert dispatcher.run_once().expired == 5
    assert {i.status for i in world.rows(Invitation)} == {"expired"}


def test_a_queued_reminder_is_dropped_once_the_citizen_starts_answering(context, clock) -> None:
    world = SmsWorld(context, reminder_after_hours=1, quiet_hours=["21:00", "08:00"])
    world.unit(PHONE, mode="sms_link", qid="core-transaction")
    gateway = MemoryGateway()
    dispatcher = _dispatcher(context, gateway)
    dispatcher.run_once()
    clock.now = _tehran(clock, 22)  # the reminder is queued for 08:00
    assert dispatcher.run_once().reminders == 1
    with context.sessions.begin() as session:
        session.get(Invitation, 1).status = "partial"  # answered part of the web form at night
    clock.now = _tehran(clock, 8) + timedelta(days=1)
    dispatcher.run_once()
    assert [m.kind for m in gateway.sent] == ["invite"]
    assert [r.status for r in world.rows(OutboxMessage)] == ["sent", "cancelled"]
