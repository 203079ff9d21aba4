"""Rows the SMS tests need: a registry, a plan, registered questionnaires and sampled units
with encrypted phones, written straight to a real database."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from questionnaires.loading import load_library
from survey.context import AppContext
from survey.kernel.db import transaction
from survey.models import (
    Agency,
    QuestionnaireVersion,
    SampledUnit,
    SamplingPlan,
    Service,
    ServiceTransaction,
)


class SmsWorld:
    """One agency, one service, one plan; `unit(phone, ...)` adds a sampled unit."""

    def __init__(
        self,
        context: AppContext,
        *,
        quiet_hours: list[str] | None = None,
        reminder_after_hours: float | None = 48,
        expires_after_days: float = 7,
    ) -> None:
        self.context = context
        self._next_tx = 0
        with transaction(context.sessions) as session:
            agency = Agency(code="REG", name_fa="ثبت احوال", name_en="Civil Registry")
            session.add(agency)
            session.flush()
            service = Service(
                code="REG-01", agency_id=agency.id, name_fa="شناسنامه", name_en="Birth cert"
            )
            plan = SamplingPlan(
                version=1,
                name="test",
                starts=date(2026, 1, 1),
                seed="00" * 32,
                strata=["agency", "service", "channel"],
                default_rate=1.0,
                rates=[],
                contact_rule_days=90,
                quiet_hours=quiet_hours,
                reminder_after_hours=reminder_after_hours,
                expires_after_days=expires_after_days,
                questionnaires=[
                    {"service": "REG-01", "questionnaire": "sms-short", "mode": "sms_dialog"}
                ],
                source="test",
            )
            session.add_all([service, plan])
            library = load_library()
            for qid in ("sms-short", "core-transaction"):
                q = library[qid]
                session.add(
                    QuestionnaireVersion(
                        qid=qid,
                        version=q.version,
                        title_fa=q.title.fa,
                        title_en=q.title.en,
                        content=q.to_dict(),
                        content_hash=q.content_hash(),
                    )
                )
            session.flush()
            self.agency_id, self.service_id, self.plan_id = agency.id, service.id, plan.id

    def unit(
        self,
        phone: str,
        *,
        mode: str = "sms_dialog",
        qid: str = "sms-short",
        language: str = "fa",
        created_at: datetime | None = None,
    ) -> int:
        vault = self.context.vault
        self._next_tx += 1
        with transaction(self.context.sessions) as session:
            tx = ServiceTransaction(
                agency_id=self.agency_id,
                external_id=f"tx-{self._next_tx}",
                service_id=self.service_id,
                channel="in_person",
                completed_at=self.context.clock(),
                outcome="sampled",
                plan_id=self.plan_id,
            )
            session.add(tx)
            session.flush()
            unit = SampledUnit(
                transaction_id=tx.id,
                plan_id=self.plan_id,
                agency_id=self.agency_id,
                service_id=self.service_id,
                channel="in_person",
                stratum="REG|REG-01|in_person",
                day=self.context.clock().date(),
                inclusion_probability=1.0,
                phone_ciphertext=vault.encrypt(phone),
                phone_key_id=vault.key_id,
                phone_hash=vault.phone_hash(phone),
                language=language,
                questionnaire_qid=qid,
                mode=mode,
                created_at=created_at or self.context.clock(),
            )
            session.add(unit)
            session.flush()
            return int(unit.id)  # type: ignore[arg-type]

    def rows(self, model: type, **where: Any) -> list[Any]:
        with self.context.sessions() as session:
            query = session.query(model)
            for key, value in where.items():
                query = query.filter(getattr(model, key) == value)
            return list(query.order_by(*sa.inspect(model).primary_key).all())
