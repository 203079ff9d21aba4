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

# A published release is never changed or deleted: the database itself refuses, whatever code
# (or person with a SQL prompt) tries. Drafts may be published (status draft -> published).
MESSAGE = "a published release is never changed; publish a correction instead"
SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER release_published_no_update BEFORE UPDATE ON "release"
    WHEN OLD.status = 'published' BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER release_published_no_delete BEFORE DELETE ON "release"
    WHEN OLD.status = 'published' BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
)
POSTGRES_TRIGGER = (
    f"""CREATE FUNCTION release_published_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.status = 'published' THEN
            RAISE EXCEPTION 'release %: {MESSAGE}', OLD.id;
        END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER release_published_immutable BEFORE UPDATE OR DELETE ON "release"
    FOR EACH ROW EXECUTE FUNCTION release_published_immutable()""",
)


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
    dialect = op.get_context().dialect.name
    for statement in POSTGRES_TRIGGER if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute('DROP TRIGGER IF EXISTS release_published_immutable ON "release"')
        op.execute("DROP FUNCTION IF EXISTS release_published_immutable()")
    else:
        op.execute("DROP TRIGGER IF EXISTS release_published_no_update")
        op.execute("DROP TRIGGER IF EXISTS release_published_no_delete")
    op.drop_index(op.f("ix_release_published_at"), table_name="release")
    op.drop_index(op.f("ix_release_period"), table_name="release")
    op.drop_table("release")
