"""The service's tables (SQLModel). Alembic migrations in `survey/migrations` create them.

Naming: a table per domain noun; times are timezone-aware UTC (`UTCDateTime`); personal data
(phone numbers) lives only in `SampledUnit`, encrypted, with a keyed hash beside it for the
contact rule and opt-outs. Nothing here is ever returned to a client directly: the web layer
maps rows to explicit response schemas.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from survey.kernel.locale import DEFAULT_LANGUAGE

CHANNELS: tuple[str, ...] = ("in_person", "online", "phone", "kiosk")
ROLES: tuple[str, ...] = ("admin", "statistician", "agency", "viewer")
MODES: tuple[str, ...] = ("sms_link", "sms_dialog")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: the same on SQLite (no time zones) and PostgreSQL."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def _json(nullable: bool = False) -> Any:
    return Field(default=None, sa_type=sa.JSON, nullable=nullable)


class Province(SQLModel, table=True):
    """Iran's provinces; seeded by the first migration."""

    code: str = Field(primary_key=True, max_length=40)
    name_fa: str = Field(max_length=100)
    name_en: str = Field(max_length=100)


class Channel(SQLModel, table=True):
    """How a service was delivered; seeded by the first migration."""

    code: str = Field(primary_key=True, max_length=20)
    name_fa: str = Field(max_length=100)
    name_en: str = Field(max_length=100)


class Agency(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True, index=True)
    name_fa: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    # The short names every invitation starts with (survey.kernel.sms); None: a fallback.
    sms_name_fa: str | None = Field(default=None, max_length=40)
    sms_name_en: str | None = Field(default=None, max_length=40)
    parent_id: int | None = Field(default=None, foreign_key="agency.id")
    province_code: str | None = Field(default=None, foreign_key="province.code", max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Service(SQLModel, table=True):
    """A service as listed in the national service catalogue, delivered by one agency."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=60, unique=True, index=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    name_fa: str = Field(max_length=300)
    name_en: str = Field(max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AppUser(SQLModel, table=True):
    """A member of staff. Roles: admin, statistician, agency (operator of one agency), viewer."""

    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=80, unique=True, index=True)
    display_name: str = Field(default="", max_length=200)
    role: str = Field(max_length=20)
    agency_id: int | None = Field(default=None, foreign_key="agency.id")
    password_hash: str | None = Field(default=None, max_length=255)
    failed_logins: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    """A bearer credential: an agency's ingestion key or a staff member's API token.

    Only a SHA-256 of the key is stored (keys carry 256 bits of randomness, so a plain hash is
    enough); `prefix` lets staff recognise a key without revealing it.
    """

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16)
    agency_id: int | None = Field(default=None, foreign_key="agency.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    label: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditLog(SQLModel, table=True):
    """Append-only record of consequential acts: who, what, when, before and after."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=120)
    action: str = Field(max_length=80, index=True)
    entity: str = Field(max_length=60)
    entity_id: str = Field(default="", max_length=120)
    before: dict[str, Any] | None = _json(nullable=True)
    after: dict[str, Any] | None = _json(nullable=True)


class QuestionnaireVersion(SQLModel, table=True):
    """A questionnaire as registered from a file; immutable once used for any invitation."""

    __tablename__ = "questionnaire_version"
    __table_args__ = (sa.UniqueConstraint("qid", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    qid: str = Field(max_length=80, index=True)
    version: int
    title_fa: str = Field(max_length=300)
    title_en: str = Field(max_length=300)
    content: dict[str, Any] = _json()
    content_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    first_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SamplingPlan(SQLModel, table=True):
    """One version of the sampling plan; the version in force at a time is the one with the
    latest `starts` on or before it. Older versions keep their frame counts."""

    __tablename__ = "sampling_plan"

    id: int | None = Field(default=None, primary_key=True)
    version: int = Field(unique=True)
    name: str = Field(max_length=120)
    starts: date = Field(index=True)
    seed: str = Field(max_length=64)
    strata: list[str] = _json()
    default_rate: float
    rates: list[dict[str, Any]] = _json()
    contact_rule_days: int
    quiet_hours: list[str] | None = _json(nullable=True)
    reminder_after_hours: float | None = None
    expires_after_days: float
    questionnaires: list[dict[str, Any]] = _json()
    source: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(default="", max_length=120)


class ServiceTransaction(SQLModel, table=True):
    """A reported transaction. Never holds a phone number: only sampled units do."""

    __tablename__ = "service_transaction"
    __table_args__ = (sa.UniqueConstraint("agency_id", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id")
    external_id: str = Field(max_length=120)
    service_id: int = Field(foreign_key="service.id")
    channel: str = Field(max_length=20)
    completed_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    province_code: str | None = Field(default=None, max_length=40)
    office: str | None = Field(default=None, max_length=120)
    language: str = Field(default=DEFAULT_LANGUAGE, max_length=2)
    plan_id: int | None = Field(default=None, foreign_key="sampling_plan.id", index=True)
    stratum: str = Field(default="", max_length=300)
    outcome: str = Field(max_length=20)  # sampled | not_sampled | ineligible | no_plan


class FrameCount(SQLModel, table=True):
    """Exact counts per plan version, day (Tehran), service, channel and province.

    Strata are unions of these cells, so stratum totals and calibration margins are sums.
    `province_code` is '' when the agency did not report one (keeps the unique key simple).
    """

    __tablename__ = "frame_count"
    __table_args__ = (
        sa.UniqueConstraint("plan_id", "day", "service_id", "channel", "province_code"),
    )

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="sampling_plan.id")
    day: date
    stratum: str = Field(max_length=300, index=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    service_id: int = Field(foreign_key="service.id")
    channel: str = Field(max_length=20)
    province_code: str = Field(default="", max_length=40)
    reported: int = 0
    duplicates: int = 0
    eligible: int = 0
    ineligible: int = 0
    sampled: int = 0


class SampledUnit(SQLModel, table=True):
    """A sampled transaction: the invitation-to-be, with its inclusion probability."""

    __tablename__ = "sampled_unit"

    id: int | None = Field(default=None, primary_key=True)
    transaction_id: int = Field(foreign_key="service_transaction.id", unique=True)
    plan_id: int = Field(foreign_key="sampling_plan.id", index=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    service_id: int = Field(foreign_key="service.id")
    channel: str = Field(max_length=20)
    province_code: str = Field(default="", max_length=40)
    stratum: str = Field(max_length=300)
    day: date
    inclusion_probability: float
    phone_ciphertext: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    phone_key_id: str = Field(default="", max_length=16)
    phone_hash: str = Field(max_length=64, index=True)
    language: str = Field(default=DEFAULT_LANGUAGE, max_length=2)
    questionnaire_qid: str | None = Field(default=None, max_length=80)
    mode: str | None = Field(default=None, max_length=20)
    status: str = Field(default="pending", max_length=20, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Contact(SQLModel, table=True):
    """Contact history by phone hash: the contact rule's memory."""

    __table_args__ = (sa.Index("ix_contact_phone_time", "phone_hash", "contacted_at"),)

    id: int | None = Field(default=None, primary_key=True)
    phone_hash: str = Field(max_length=64)
    contacted_at: datetime = Field(sa_type=UTCDateTime)
    sampled_unit_id: int | None = Field(default=None, foreign_key="sampled_unit.id")


class OptOut(SQLModel, table=True):
    """A phone (by keyed hash) that asked never to be contacted; `active` False after opt-in."""

    __tablename__ = "opt_out"

    phone_hash: str = Field(primary_key=True, max_length=64)
    active: bool = True
    changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    source: str = Field(default="", max_length=20)


class Invitation(SQLModel, table=True):
    """A sampled unit's invitation and its life: pending -> sent -> delivered/failed -> opened ->
    partial -> completed / expired / opted_out (each step's time kept).

    The web token is never stored: it is derived from the server secret and the invitation id
    when a message is sent, and only its SHA-256 is kept here for look-ups.
    """

    id: int | None = Field(default=None, primary_key=True)
    sampled_unit_id: int = Field(foreign_key="sampled_unit.id", unique=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    status: str = Field(default="pending", max_length=20, index=True)
    mode: str = Field(max_length=20)
    language: str = Field(default=DEFAULT_LANGUAGE, max_length=2)
    questionnaire_version_id: int = Field(foreign_key="questionnaire_version.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    reminder_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    failed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    opened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    partial_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    opted_out_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    dialog_position: int = 0
    reprompted: bool = False


class OutboxMessage(SQLModel, table=True):
    """One SMS to send, exactly once. `local_id` is unique per logical message, so enqueueing
    twice is impossible and a provider can be asked about it after a crash."""

    __tablename__ = "outbox_message"

    id: int | None = Field(default=None, primary_key=True)
    invitation_id: int = Field(foreign_key="invitation.id", index=True)
    kind: str = Field(max_length=20)  # invite | reminder | question | thanks | error
    local_id: str = Field(max_length=80, unique=True)
    body: str = Field(sa_type=sa.Text)
    parts: int = 1
    status: str = Field(default="queued", max_length=20, index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime, index=True)
    claimed_by: str | None = Field(default=None, max_length=80)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    provider_id: str | None = Field(default=None, max_length=120)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Response(SQLModel, table=True):
    """A citizen's answers to one invitation, by item id; saved as they go."""

    id: int | None = Field(default=None, primary_key=True)
    invitation_id: int = Field(foreign_key="invitation.id", unique=True)
    questionnaire_version_id: int = Field(foreign_key="questionnaire_version.id")
    answers: dict[str, Any] = _json()
    status: str = Field(default="partial", max_length=20)  # partial | completed
    channel: str = Field(max_length=10)  # web | sms
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class InboundMessage(SQLModel, table=True):
    """An SMS reply already processed, by the provider's message id: a webhook delivered twice
    is processed once. Holds no phone and no text."""

    __tablename__ = "inbound_message"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=120, unique=True)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Release(SQLModel, table=True):
    """A publication of the indices for one period: a draft until published, then never changed.

    `content` is the canonical JSON snapshot (tables, names, methodology, versions) and
    `content_hash` its SHA-256, so anyone can check a published release was not altered.
    A correction is a new row for the same period (`number` + 1) that `supersedes_id` the old.
    """

    __tablename__ = "release"
    __table_args__ = (sa.UniqueConstraint("period", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=10, index=True)
    period_start: date
    period_end: date  # exclusive
    number: int
    status: str = Field(default="draft", max_length=20)  # draft | published
    supersedes_id: int | None = Field(default=None, foreign_key="release.id")
    change_note: str = Field(default="", sa_type=sa.Text)
    content: str = Field(sa_type=sa.Text)
    content_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(max_length=120)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    published_by: str | None = Field(default=None, max_length=120)
