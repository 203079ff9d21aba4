"""Turn sampled units into invitations, each with its first message in the outbox.

For every pending sampled unit whose questionnaire is registered:
- `due_at`: now, or the end of the plan's quiet hours (Tehran) when now falls inside them;
- `expires_at`: `due_at` + the plan's `expires_after_days`;
- `reminder_due_at`: `due_at` + `reminder_after_hours` (None when the plan has no reminder);
  moved later by the same amount if the invitation itself goes out late;
- the token (derived, see survey.kernel.tokens) is stored only as its hash;
- the first message (`inv<ID>-invite`): the link for `sms_link`, the first SMS question for
  `sms_dialog`, in the unit's language, starting with the agency's SMS name (and, where they
  fit, the service and the day of the transaction) and ending with the opt-out hint, at most
  two SMS parts (survey.kernel.sms);
- the questionnaire version's `first_used_at` is set (it is immutable from then on).

A unit whose number opted out since it was sampled gets an invitation in status `opted_out`
and no message (it still counts for response rates). A unit whose texts cannot fit in two
parts (a plan that skipped validation) is marked `unsendable` and logged, never sent cut.
Units whose questionnaire is not registered yet wait as `pending`.

Concurrent dispatchers take disjoint units (`FOR UPDATE SKIP LOCKED`; SQLite: one writer),
and `invitation.sampled_unit_id` is unique besides.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from questionnaires.schema import Questionnaire
from survey.kernel.db import transaction
from survey.kernel.locale import language_or_default
from survey.kernel.sms import (
    MessageTooLong,
    Sender,
    agency_names,
    count_parts,
    render_invitation,
)
from survey.kernel.tokens import TOKEN_MASK, token_for, token_hash
from survey.models import Agency, QuestionnaireVersion, SampledUnit, SamplingPlan, Service
from survey.outreach import store
from survey.outreach.schedule import next_allowed

__all__ = [
    "CreatedInvitations",
    "answer_url",
    "create_invitations",
    "invitation_text",
    "sender_of",
    "stored_link",
    "with_link",
]

log = logging.getLogger("survey.invitations")


@dataclass(frozen=True, slots=True)
class CreatedInvitations:
    invited: int = 0
    opted_out: int = 0
    unsendable: int = 0

    @property
    def total(self) -> int:
        return self.invited + self.opted_out + self.unsendable


def answer_url(public_base_url: str, token: str) -> str:
    """The short link an invitation carries."""
    return f"{public_base_url.rstrip('/')}/s/{token}"


def stored_link(public_base_url: str) -> str:
    """The link as a stored message carries it: the token masked (survey.kernel.tokens)."""
    return answer_url(public_base_url, TOKEN_MASK)


def with_link(body: str, token: str) -> str:
    """A stored message's text as the citizen gets it: the token where the mask is."""
    return body.replace(f"/s/{TOKEN_MASK}", f"/s/{token}")


def invitation_text(
    kind: str,
    *,
    mode: str,
    lang: str,
    questionnaire: Questionnaire,
    url: str,
    sender: Sender,
    position: int = 0,
) -> str:
    """The invite or reminder text: the link (`sms_link`) or SMS item `position` (`sms_dialog`),
    from `sender` (the agency's names, the service, the day)."""
    from questionnaires.rendering import sms_prompt

    question = None
    if mode == "sms_dialog":
        if not questionnaire.sms:
            raise MessageTooLong(
                f"questionnaire {questionnaire.id!r} has no SMS items; it cannot be answered "
                "in mode sms_dialog"
            )
        question = sms_prompt(questionnaire, questionnaire.sms[position], lang)
    return render_invitation(
        kind, mode, lang, sender=sender, url=url if mode == "sms_link" else None, question=question
    )


def sender_of(agency: Agency, service: Service | None, day: date | None, lang: str) -> Sender:
    """Who is asking about what, in `lang`: the agency's SMS name (or its fallbacks), the
    service's name and the transaction's day."""
    names = (
        agency_names(agency.sms_name_fa, agency.name_fa)
        if lang == "fa"
        else agency_names(agency.sms_name_en, agency.name_en)
    )
    service_name = None
    if service is not None:
        service_name = service.name_fa if lang == "fa" else service.name_en
    return Sender(names, service_name, day)


def create_invitations(
    session_factory: Any,
    *,
    secret_key: bytes,
    public_base_url: str,
    now: datetime,
    limit: int = 500,
) -> CreatedInvitations:
    """Create invitations for up to `limit` pending units in one transaction.

    Set-wise: one query for the units, one for their opt-outs, one multi-row INSERT ...
    RETURNING for the invitations, one for their messages, one UPDATE each for tokens and units.
    """
    with transaction(session_factory) as session:
        units = store.lock_pending_units(session, limit)
        if not units:
            return CreatedInvitations()
        lookups = _Lookups(session)
        opted_out = store.opted_out_hashes(session, {unit.phone_hash for unit in units})
        planned = [
            _plan_invitation(lookups, unit, public_base_url, now, opted_out) for unit in units
        ]
        ready = [(p, p.row) for p in planned if p.row is not None]
        unit_status = [{"id": p.unit_id, "status": p.outcome} for p in planned]
        if ready:
            created = store.insert_invitations(session, [row for _, row in ready])
            tokens, messages = [], []
            for (plan, row), (invitation_id, unit_id) in zip(ready, created, strict=True):
                assert plan.unit_id == unit_id and invitation_id is not None
                token = token_for(secret_key, invitation_id)
                tokens.append({"id": invitation_id, "token_hash": token_hash(token)})
                if plan.outcome != "invited":
                    continue
                text = plan.text  # the token masked: no token at rest
                assert text is not None
                messages.append(
                    {
                        "invitation_id": invitation_id,
                        "kind": "invite",
                        "local_id": f"inv{invitation_id}-invite",
                        "body": text,
                        "parts": count_parts(text).parts,
                        "status": "queued",
                        "attempts": 0,
                        "next_attempt_at": row["due_at"],
                        "created_at": now,
                    }
                )
            store.set_token_hashes(session, tokens)
            if messages:
                store.insert_messages(session, messages)
            for version in lookups.versions.values():
                if version.first_used_at is None and any(
                    row["questionnaire_version_id"] == version.id for _, row in ready
                ):
                    version.first_used_at = now
        store.set_unit_statuses(session, unit_status)
    counts = {"invited": 0, "opted_out": 0, "unsendable": 0}
    for plan in planned:
        counts[plan.outcome] += 1
    return CreatedInvitations(**counts)


@dataclass
class _Planned:
    """One unit's invitation row to insert and how to write its first message."""

    unit_id: int
    outcome: str  # invited | opted_out | unsendable
    row: dict[str, Any] | None = None
    text: str | None = None  # the first message, its link's token masked


class _Lookups:
    """Plans, questionnaires and agencies of one batch, each read once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.plans: dict[int, SamplingPlan] = {}
        self.versions: dict[tuple[int, str], QuestionnaireVersion] = {}
        self.questionnaires: dict[int, Questionnaire] = {}
        self.senders: dict[tuple[int, int, date, str], Sender] = {}
        self.texts: dict[tuple[int, str, str, Sender], str | None] = {}

    def plan(self, plan_id: int) -> SamplingPlan:
        if plan_id not in self.plans:
            plan = store.get_plan(self.session, plan_id)
            assert plan is not None  # foreign key
            self.plans[plan_id] = plan
        return self.plans[plan_id]

    def version(self, plan: SamplingPlan, qid: str) -> QuestionnaireVersion:
        key = (plan.id or 0, qid)
        if key not in self.versions:
            wanted = next(
                (
                    choice.get("version")
                    for choice in plan.questionnaires or ()
                    if choice.get("questionnaire") == qid and choice.get("version") is not None
                ),
                None,
            )
            row = store.questionnaire_version(
                self.session, qid, None if wanted is None else int(wanted)
            )
            if row is None:  # the plan's version is not registered: the latest one
                row = store.latest_questionnaire_version(self.session, qid)
            self.versions[key] = row
        return self.versions[key]

    def questionnaire(self, version: QuestionnaireVersion) -> Questionnaire:
        assert version.id is not None
        if version.id not in self.questionnaires:
            self.questionnaires[version.id] = Questionnaire.from_dict(version.content)
        return self.questionnaires[version.id]

    def sender(self, unit: SampledUnit, lang: str) -> Sender:
        key = (unit.agency_id, unit.service_id, unit.day, lang)
        if key not in self.senders:
            agency = store.get_agency(self.session, unit.agency_id)
            assert agency is not None  # foreign key
            service = store.get_service(self.session, unit.service_id)
            self.senders[key] = sender_of(agency, service, unit.day, lang)
        return self.senders[key]


def _plan_invitation(
    lookups: _Lookups,
    unit: SampledUnit,
    public_base_url: str,
    now: datetime,
    opted_out: set[str],
) -> _Planned:
    assert unit.id is not None
    plan = lookups.plan(unit.plan_id)
    version = lookups.version(plan, unit.questionnaire_qid or "")
    questionnaire = lookups.questionnaire(version)
    lang = language_or_default(unit.language)
    mode = unit.mode or "sms_link"
    sender = lookups.sender(unit, lang)
    key = (version.id or 0, mode, lang, sender)
    if key not in lookups.texts:  # one text per questionnaire, mode, language, agency, service, day
        try:
            lookups.texts[key] = invitation_text(
                "invite",
                mode=mode,
                lang=lang,
                questionnaire=questionnaire,
                url=stored_link(public_base_url),  # the token masked, at its real length
                sender=sender,
            )
        except MessageTooLong as exc:
            log.error(
                "questionnaire %s in mode %s (%s) cannot be sent: %s",
                version.qid,
                mode,
                lang,
                exc.message,
            )
            lookups.texts[key] = None
    text = lookups.texts[key]
    if text is None:
        log.error(
            "sampled unit %s cannot be invited: its texts do not fit in two SMS parts", unit.id
        )
        return _Planned(unit.id, "unsendable")

    due_at = next_allowed(now, plan.quiet_hours)
    row: dict[str, Any] = {
        "sampled_unit_id": unit.id,
        "token_hash": hashlib.sha256(f"unassigned:{unit.id}".encode()).hexdigest(),
        "status": "pending",
        "mode": mode,
        "language": lang,
        "questionnaire_version_id": version.id,
        "created_at": now,
        "due_at": due_at,
        "expires_at": due_at + timedelta(days=plan.expires_after_days),
        "reminder_due_at": (
            due_at + timedelta(hours=plan.reminder_after_hours)
            if plan.reminder_after_hours is not None
            else None
        ),
        "dialog_position": 0,
        "reprompted": False,
    }
    if unit.phone_hash in opted_out:
        row["status"], row["opted_out_at"] = "opted_out", now
        return _Planned(unit.id, "opted_out", row)
    return _Planned(unit.id, "invited", row, text)
