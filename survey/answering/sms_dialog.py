"""The two-way SMS questionnaire: each reply answers the current SMS item and gets the next.

An `sms_dialog` invitation asks the questionnaire's first SMS item. A reply is matched to the
sender's open invitation by the keyed hash of their number (the newest open one), then:

- a valid digit for the current item is saved in `Response.answers` (channel `sms`), the
  invitation becomes `partial` and the next item is sent; after the last item the response and
  the invitation are `completed` and a thank-you goes out;
- anything else gets ONE re-prompt for the item (the question again, with "we did not
  understand"); after that, further unusable replies are not answered (so an auto-responder
  cannot start a ping-pong), while a valid digit is still accepted at any time;
- `11`, `لغو`, `STOP` and their variants opt the number out at once: an `OptOut` row by phone
  hash, every open invitation of the number `opted_out`, its queued messages cancelled, and one
  confirmation (kind `notice`); `12` opts back in (confirmed the same way);
- a reply after completion or expiry gets one short polite answer per invitation; a reply to
  an `sms_link` invitation gets the link once; numbers we never invited get no answer.

Inbound messages are processed once each, by the provider's `message_id` (`inbound_message`).
All of it runs in one write transaction that locks the invitation row (`FOR UPDATE` on
PostgreSQL, `BEGIN IMMEDIATE` on SQLite), so two replies arriving together cannot both answer
the same item. Replies are queued in the outbox and leave with the dispatcher's next pass;
they are conversation, so quiet hours do not hold them.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from questionnaires.schema import Questionnaire
from survey.answering import sms_replies, store
from survey.context import AppContext
from survey.kernel import audit
from survey.kernel.db import transaction, writer_queue
from survey.kernel.phones import InvalidPhone, normalise_mobile
from survey.kernel.sms import count_parts, render
from survey.models import InboundMessage, Invitation, OptOut, Response
from survey.outreach import outbox
from survey.outreach.invitations import stored_link

__all__ = ["InboundOutcome", "InboundResult", "handle_inbound"]

log = logging.getLogger("survey.sms.dialog")

OPEN_STATUSES = ("pending", "sent", "delivered", "failed", "opened", "partial")
ANSWERABLE_STATUSES = ("sent", "delivered", "opened", "partial")  # a reply answers these


class InboundOutcome(StrEnum):
    duplicate = "duplicate"
    unknown_sender = "unknown_sender"
    opted_out = "opted_out"
    opted_in = "opted_in"
    answered = "answered"
    completed = "completed"
    reprompted = "reprompted"
    ignored = "ignored"
    closed = "closed"
    use_link = "use_link"


@dataclass(frozen=True, slots=True)
class InboundResult:
    outcome: InboundOutcome
    invitation_id: int | None = None


def handle_inbound(
    context: AppContext, *, sender: str, text: str, message_id: str
) -> InboundResult:
    """Process one inbound SMS (idempotent by `message_id`)."""
    now = context.clock()
    try:
        phone_hashes: tuple[str, ...] | None = context.vault.phone_hashes(normalise_mobile(sender))
    except InvalidPhone:
        phone_hashes = None
    reply = sms_replies.parse_reply(text)
    try:
        # SQLite: workers' writers queue without polling (survey.kernel.db.WriterQueue).
        with writer_queue(context.engine), transaction(context.sessions) as session:
            if store.inbound_message_id(session, message_id):
                return InboundResult(InboundOutcome.duplicate)
            session.add(InboundMessage(message_id=message_id, received_at=now))
            session.flush()
            if phone_hashes is None:
                return InboundResult(InboundOutcome.unknown_sender)
            result = _Conversation(context, session, phone_hashes, message_id, now).handle(reply)
    except IntegrityError:  # the same message id processed concurrently
        return InboundResult(InboundOutcome.duplicate)
    log.info("inbound SMS %s: %s (invitation %s)", message_id, result.outcome, result.invitation_id)
    return result


def _audit_id(invitation: Invitation | None) -> int | str:
    """The audit log's entity id for an invitation ("" when there is none)."""
    return "" if invitation is None or invitation.id is None else invitation.id


class _Conversation:
    def __init__(
        self,
        context: AppContext,
        session: Session,
        phone_hashes: tuple[str, ...],
        message_id: str,
        now: datetime,
    ) -> None:
        self.context = context
        self.session = session
        # Current key first; earlier keys' hashes still find rows stored before a rotation.
        self.phone_hash = phone_hashes[0]
        self.phone_hashes = phone_hashes
        self.message_id = message_id
        self.now = now

    # -- dispatch on the reply -------------------------------------------------------------
    def handle(self, reply: sms_replies.Reply) -> InboundResult:
        if isinstance(reply, sms_replies.OptOut):
            return self._opt_out()
        if isinstance(reply, sms_replies.OptIn):
            return self._opt_in()
        invitation = self._open_invitation()
        if invitation is None:
            return self._after_close()
        assert invitation.id is not None
        if invitation.mode != "sms_dialog":
            url = stored_link(self.context.settings.public_base_url)  # no token at rest
            sent = self._reply(
                invitation, "error", f"inv{invitation.id}-use-link", "use_link", url=url
            )
            return InboundResult(
                InboundOutcome.use_link if sent else InboundOutcome.ignored, invitation.id
            )
        return self._answer(invitation, reply)

    def _answer(self, invitation: Invitation, reply: sms_replies.Reply) -> InboundResult:
        assert invitation.id is not None
        questionnaire = self._questionnaire(invitation.questionnaire_version_id)
        position = invitation.dialog_position
        if position >= len(questionnaire.sms):  # answered in full already
            return self._after_close(invitation)
        item = questionnaire.item(questionnaire.sms[position])
        if not (isinstance(reply, sms_replies.Answer) and reply.digit in item.codes):
            if invitation.reprompted:
                return InboundResult(InboundOutcome.ignored, invitation.id)
            invitation.reprompted = True
            self._reply(
                invitation,
                "question",
                f"inv{invitation.id}-q{position}-reprompt",
                "reprompt",
                question=self._prompt(questionnaire, position, invitation.language),
            )
            return InboundResult(InboundOutcome.reprompted, invitation.id)

        response = store.lock_response(self.session, invitation.id)
        if response is None:
            response = Response(
                invitation_id=invitation.id,
                questionnaire_version_id=invitation.questionnaire_version_id,
                answers={},
                channel="sms",
                started_at=self.now,
                updated_at=self.now,
            )
            self.session.add(response)
        response.answers = {**(response.answers or {}), item.id: reply.digit}
        response.updated_at = self.now
        invitation.dialog_position = position + 1
        invitation.reprompted = False
        invitation.partial_at = invitation.partial_at or self.now
        if position + 1 < len(questionnaire.sms):
            invitation.status = "partial"
            self._reply(
                invitation,
                "question",
                f"inv{invitation.id}-q{position + 1}",
                "question",
                question=self._prompt(questionnaire, position + 1, invitation.language),
            )
            return InboundResult(InboundOutcome.answered, invitation.id)
        response.status, response.completed_at = "completed", self.now
        invitation.status, invitation.completed_at = "completed", self.now
        outbox.cancel_queued(self.session, [invitation.id], kinds=("reminder",))
        self._reply(invitation, "thanks", f"inv{invitation.id}-thanks", "thanks")
        return InboundResult(InboundOutcome.completed, invitation.id)

    def _after_close(self, invitation: Invitation | None = None) -> InboundResult:
        latest = invitation or self._latest_invitation()
        if latest is None:
            return InboundResult(InboundOutcome.unknown_sender)
        assert latest.id is not None
        if latest.status == "completed":
            key = "already_completed"
        elif latest.status == "expired" or latest.expires_at <= self.now:
            key = "closed"
        else:  # opted out, or never reached them: say nothing
            return InboundResult(InboundOutcome.ignored, latest.id)
        sent = self._reply(latest, "error", f"inv{latest.id}-after-close", key)
        return InboundResult(InboundOutcome.closed if sent else InboundOutcome.ignored, latest.id)

    def _opt_out_row(self) -> OptOut | None:
        for phone_hash in self.phone_hashes:
            row = store.lock_opt_out(self.session, phone_hash)
            if row is not None:
                return row
        return None

    def _opt_out(self) -> InboundResult:
        row = self._opt_out_row()
        was_active = row is not None and row.active
        if row is None:
            self.session.add(
                OptOut(phone_hash=self.phone_hash, active=True, changed_at=self.now, source="sms")
            )
        else:
            row.active, row.changed_at, row.source = True, self.now, "sms"
        open_ids = store.invitation_ids_for_phone(self.session, self.phone_hashes, OPEN_STATUSES)
        if open_ids:
            store.close_opted_out_invitations(self.session, open_ids, self.now)
            outbox.cancel_queued(self.session, open_ids)
        latest = self._latest_invitation()
        audit.record(
            self.session,
            audit.CITIZEN_SMS,
            "optout.add",
            "invitation",
            _audit_id(latest),
            before={"opt_out": was_active},
            after={"opt_out": True, "source": "sms", "invitations_closed": len(open_ids)},
            at=self.now,
        )
        if latest is not None:
            self._notice(latest, "opted_out")
        return InboundResult(InboundOutcome.opted_out, latest.id if latest else None)

    def _opt_in(self) -> InboundResult:
        row = self._opt_out_row()
        latest = self._latest_invitation()
        if row is not None and row.active:
            row.active, row.changed_at, row.source = False, self.now, "sms"
            audit.record(
                self.session,
                audit.CITIZEN_SMS,
                "optout.remove",
                "invitation",
                _audit_id(latest),
                before={"opt_out": True},
                after={"opt_out": False, "source": "sms"},
                at=self.now,
            )
        if latest is not None and row is not None:
            self._notice(latest, "opted_in")
        return InboundResult(InboundOutcome.opted_in, latest.id if latest else None)

    # -- look-ups ----------------------------------------------------------------------------
    def _open_invitation(self) -> Invitation | None:
        return store.lock_open_invitation_for_phone(
            self.session, self.phone_hashes, ANSWERABLE_STATUSES, self.now
        )

    def _latest_invitation(self) -> Invitation | None:
        return store.latest_invitation_for_phone(self.session, self.phone_hashes)

    def _questionnaire(self, version_id: int) -> Questionnaire:
        content = store.questionnaire_version_content(self.session, version_id)
        return Questionnaire.from_dict(content or {})

    @staticmethod
    def _prompt(questionnaire: Questionnaire, position: int, lang: str) -> str:
        from questionnaires.rendering import sms_prompt

        return sms_prompt(questionnaire, questionnaire.sms[position], lang)

    # -- replies -----------------------------------------------------------------------------
    def _reply(
        self, invitation: Invitation, kind: str, local_id: str, key: str, **values: str
    ) -> bool:
        """Queue one reply; False when that reply (by local id) was already queued."""
        assert invitation.id is not None
        text = render(key, invitation.language, **values)
        return outbox.enqueue(
            self.session,
            invitation_id=invitation.id,
            kind=kind,
            local_id=local_id,
            body=text,
            due_at=self.now,
            parts=count_parts(text).parts,
            now=self.now,
        )

    def _notice(self, invitation: Invitation, key: str) -> None:
        digest = hashlib.sha256(self.message_id.encode()).hexdigest()[:32]
        self._reply(invitation, "notice", f"in-{digest}", key)
