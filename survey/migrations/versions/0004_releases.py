"""Releases: immutable published snapshots of the indices per period (issue 7)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 15:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import survey.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("change_note", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", survey.models.UTCDateTime(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("published_at", survey.models.UTCDateTime(), nullable=True),
        sa.Column("published_by", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.ForeignKeyConstraint(["supersedes_id"], ["release.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("period", "number"),
    )
    op.create_index(op.f("ix_release_period"), "release", ["period"], unique=False)
    op.create_index(op.f("ix_release_published_at"), "release", ["published_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_release_published_at"), table_name="release")
    op.drop_index(op.f("ix_release_period"), table_name="release")
    op.drop_table("release")
