"""Builders of answering, rates and export test data: real rows in the test's own database.

`AnswerWorld(context)` inserts agencies, services, a plan, bundled questionnaires (as
`QuestionnaireVersion` rows whose content is `Questionnaire.to_dict()`), sampled units with
encrypted phones, their invitations (token hash derived by survey.kernel.tokens) and frame counts.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from questionnaires.loading import load_library
from survey.context import AppContext
from survey.kernel.credentials import display_prefix, key_hash, new_key
from survey.kernel.tokens import token_for, token_hash
from survey.models import (
    Agency,
    ApiKey,
    AppUser,
    FrameCount,
    Invitation,
    QuestionnaireVersion,
    Response,
    SampledUnit,
    SamplingPlan,
    Service,
    ServiceTransaction,
)


@dataclass(frozen=True)
class Invited:
    """An invitation as a test knows it: ids, the link token and the (plain) phone."""

    invitation_id: int
    sampled_unit_id: int
    token: str
    phone: str


class AnswerWorld:
    def __init__(self, context: AppContext) -> None:
        self.context = context
        self._agencies: dict[str, int] = {}
        self._services: dict[str, int] = {}
        self._questionnaires: dict[str, int] = {}
        self._phones = itertools.count(1000)
        self._external = itertools.count(1)
        self.plan_id = self._insert(
            SamplingPlan(
                version=1,
                name="test plan",
                starts=date(2026, 1, 1),
                seed="seed",
                strata=["agency", "service", "channel"],
                default_rate=0.1,
                rates=[],
                contact_rule_days=90,
                quiet_hours=None,
                reminder_after_hours=None,
                expires_after_days=7,
                questionnaires=[],
                source="",
            )
        )

    # -- reference rows -------------------------------------------------------------------
    def _insert(self, row: Any) -> int:
        with self.context.sessions() as session, session.begin():
            session.add(row)
            session.flush()
            return int(row.id)

    def agency(self, code: str) -> int:
        if code not in self._agencies:
            self._agencies[code] = self._insert(
                Agency(code=code, name_fa=f"دستگاه {code}", name_en=f"Agency {code}")
            )
        return self._agencies[code]

    def service(self, code: str, agency: str) -> int:
        if code not in self._services:
            self._services[code] = self._insert(
                Service(
                    code=code,
                    agency_id=self.agency(agency),
                    name_fa=f"خدمت {code}",
                    name_en=f"Service {code}",
                )
            )
        return self._services[code]

    def questionnaire(self, qid: str = "core-transaction") -> int:
        if qid not in self._questionnaires:
            q = load_library()[qid]
            self._questionnaires[qid] = self._insert(
                QuestionnaireVersion(
                    qid=q.id,
                    version=q.version,
                    title_fa=q.title.fa,
                    title_en=q.title.en,
                    content=q.to_dict(),
                    content_hash=q.content_hash(),
                )
            )
        return self._questionnaires[qid]

    def staff_key(self, role: str, *, agency: str | None = None) -> str:
        """A staff member with `role` and a bearer key for them (the key is returned)."""
        key = new_key("staff")
        agency_id = self.agency(agency) if agency else None
        user_id = self._insert(
            AppUser(username=f"{role}-{uuid.uuid4().hex[:6]}", role=role, agency_id=agency_id)
        )
        self._insert(ApiKey(key_hash=key_hash(key), prefix=display_prefix(key), user_id=user_id))
        return key

    @staticmethod
    def stratum(agency: str, service: str, channel: str) -> str:
        return f"agency={agency}|service={service}|channel={channel}"

    # -- sampled units and invitations ----------------------------------------------------
    def invite(
        self,
        *,
        agency: str = "TAX",
        service: str = "TAX-01",
        channel: str = "in_person",
        province: str = "tehran",
        day: date = date(2026, 3, 8),
        inclusion_probability: float = 0.1,
        language: str = "fa",
        status: str = "sent",
        qid: str = "core-transaction",
        created: datetime | None = None,
        expires_in: timedelta = timedelta(days=7),
        mode: str = "sms_link",
        with_invitation: bool = True,
        **timestamps: datetime | None,
    ) -> Invited:
        """One sampled unit and its invitation; `timestamps` set Invitation's *_at columns.
        `with_invitation=False`: the sampled unit alone (invitation id 0, no token)."""
        now = created or self.context.clock()
        phone = f"0912{next(self._phones):07d}"
        vault = self.context.vault
        service_id = self.service(service, agency)
        qv_id = self.questionnaire(qid)
        with self.context.sessions() as session, session.begin():
            tx = ServiceTransaction(
                agency_id=self.agency(agency),
                external_id=f"tx-{next(self._external)}",
                service_id=service_id,
                channel=channel,
                completed_at=now,
                province_code=province,
                language=language,
                plan_id=self.plan_id,
                stratum=self.stratum(agency, service, channel),
                outcome="sampled",
            )
            session.add(tx)
            session.flush()
            unit = SampledUnit(
                transaction_id=tx.id,
                plan_id=self.plan_id,
                agency_id=self.agency(agency),
                service_id=service_id,
                channel=channel,
                province_code=province,
                stratum=self.stratum(agency, service, channel),
                day=day,
                inclusion_probability=inclusion_probability,
                phone_ciphertext=vault.encrypt(phone),
                phone_key_id=vault.key_id,
                phone_hash=vault.phone_hash(phone),
                language=language,
                questionnaire_qid=qid,
                mode=mode,
                status="invited",
            )
            session.add(unit)
            session.flush()
            if not with_invitation:
                return Invited(0, int(unit.id), "", phone)
            invitation = Invitation(
                sampled_unit_id=unit.id,
                token_hash=f"pending-{uuid.uuid4().hex}",
                status=status,
                mode=mode,
                language=language,
                questionnaire_version_id=qv_id,
                created_at=now,
                due_at=now,
                expires_at=now + expires_in,
                **{k: v for k, v in timestamps.items()},
            )
            session.add(invitation)
            session.flush()
            token = token_for(self.context.settings.secret_key, int(invitation.id))
            invitation.token_hash = token_hash(token)
            return Invited(int(invitation.id), int(unit.id), token, phone)

    def frame_count(
        self,
        *,
        agency: str = "TAX",
        service: str = "TAX-01",
        channel: str = "in_person",
        province: str = "tehran",
        day: date = date(2026, 3, 8),
        eligible: int,
        sampled: int = 0,
    ) -> None:
        self._insert(
            FrameCount(
                plan_id=self.plan_id,
                day=day,
                stratum=self.stratum(agency, service, channel),
                agency_id=self.agency(agency),
                service_id=self.service(service, agency),
                channel=channel,
                province_code=province,
                reported=eligible,
                eligible=eligible,
                sampled=sampled,
            )
        )

    def respond(
        self,
        invited: Invited,
        answers: dict[str, Any],
        *,
        status: str = "completed",
        channel: str = "web",
        at: datetime | None = None,
    ) -> int:
        """Store a response directly (for rates and export tests), moving the invitation on."""
        when = at or self.context.clock()
        with self.context.sessions() as session, session.begin():
            invitation = session.get(Invitation, invited.invitation_id)
            assert invitation is not None
            row = Response(
                invitation_id=invited.invitation_id,
                questionnaire_version_id=invitation.questionnaire_version_id,
                answers=answers,
                status=status,
                channel=channel,
                started_at=when,
                updated_at=when,
                completed_at=when if status == "completed" else None,
            )
            session.add(row)
            invitation.status = status
            invitation.opened_at = invitation.opened_at or when
            invitation.partial_at = invitation.partial_at or when
            if status == "completed":
                invitation.completed_at = when
            session.flush()
            return int(row.id)

    def invitation(self, invitation_id: int) -> Invitation:
        with self.context.read_sessions() as session:
            row = session.get(Invitation, invitation_id)
            assert row is not None
            return row

    def response_of(self, invitation_id: int) -> Response | None:
        with self.context.read_sessions() as session:
            return session.scalar(
                sa.select(Response).where(Response.invitation_id == invitation_id)
            )
