"""Agencies' short SMS names, one per language (issue 17)

Every invitation, reminder and SMS dialogue opening names the agency; a full name such as
«مرکز خدمات الکترونیک قضایی قوه قضاییه» does not fit two SMS parts beside the link, so each
agency may have a short name for SMS (`survey agencies sms-name`). Null: the full name, or
where it is too long, its first words (survey.kernel.sms.agency_names).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agency") as batch:
        batch.add_column(sa.Column("sms_name_fa", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("sms_name_en", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agency") as batch:
        batch.drop_column("sms_name_en")
        batch.drop_column("sms_name_fa")
