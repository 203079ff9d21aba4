"""The audit log is append-only: the database refuses UPDATE and DELETE on audit_log (issue 8)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 16:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Nothing in the service changes or deletes an audit row; these triggers make the database
# refuse it too, whatever code (or person at a SQL prompt) tries.
MESSAGE = "the audit log is append-only: entries are never changed or deleted"
SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
)
POSTGRES_TRIGGER = (
    f"""CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit entry %: {MESSAGE}', OLD.id;
    END
    $$""",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
)


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    for statement in POSTGRES_TRIGGER if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
