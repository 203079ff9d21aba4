"""Stored SMS texts carry no survey token: links in outbox_message.body are masked (issue 15)

The dispatcher now puts the token (derived from the secret, see survey.kernel.tokens) into
the link only in the SMS it hands to the gateway; rows written before keep a working link in
their text, which a database dump or backup would open. This rewrites them to the mask.
Messages still queued are sent with the right token all the same: it is recomputed at send.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TOKEN_IN_LINK = re.compile(r"/s/[a-z2-7]{16}(?![a-z2-7])", re.IGNORECASE)
MASKED = "/s/" + "*" * 16  # survey.kernel.tokens.TOKEN_MASK (migrations keep their own copy)


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":  # one statement, also as offline SQL
        op.execute(
            "UPDATE outbox_message SET body = regexp_replace(body, "
            f"'/s/[a-z2-7]{{16}}(?![a-z2-7])', '{MASKED}', 'gi') "
            "WHERE body ~* '/s/[a-z2-7]{16}(?![a-z2-7])'"
        )
        return
    connection = op.get_bind()
    outbox = sa.table("outbox_message", sa.column("id", sa.Integer), sa.column("body", sa.Text))
    rows = connection.execute(
        sa.select(outbox.c.id, outbox.c.body).where(outbox.c.body.like("%/s/%"))
    ).all()
    changed = [
        {"row_id": row.id, "masked": TOKEN_IN_LINK.sub(MASKED, row.body)}
        for row in rows
        if TOKEN_IN_LINK.search(row.body)
    ]
    if changed:
        connection.execute(
            outbox.update()
            .where(outbox.c.id == sa.bindparam("row_id"))
            .values(body=sa.bindparam("masked")),
            changed,
        )


def downgrade() -> None:
    """Nothing to restore: the tokens are derived from the secret whenever a message is sent."""
