"""No survey token at rest: a dump of every table holds no working link, while the SMS the
gateway gets carries the link that opens the citizen's form. Rows written before the change
are rewritten by migration 0006."""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import command
from litestar.testing import TestClient

from survey.context import AppContext
from survey.kernel import db
from survey.kernel.sms import count_parts
from survey.kernel.tokens import TOKEN_MASK, token_for
from survey.models import Invitation, OutboxMessage
from survey.outreach.dispatcher import Dispatcher, DispatchOptions
from survey.outreach.gateways.memory import MemoryGateway
from tests.survey.sms_builders import SmsWorld

LINK = re.compile(r"/s/([a-z2-7]{16})(?![a-z2-7])")


def _dump(context: AppContext) -> str:
    """Every text and JSON value of every table, as a database dump would show it."""
    values: list[str] = []
    with context.engine.connect() as connection:
        for table in sa.inspect(connection).get_table_names():
            for row in connection.execute(sa.text(f'SELECT * FROM "{table}"')):
                values.extend(str(value) for value in row if value is not None)
    return "\n".join(values)


def _send_all(context: AppContext, world: SmsWorld) -> MemoryGateway:
    for n, mode in enumerate(("sms_link", "sms_link", "sms_dialog")):
        world.unit(f"+98912123456{n}", mode=mode, qid="core-transaction", language="en")
    gateway = MemoryGateway()
    Dispatcher(context, gateway, options=DispatchOptions(), worker_id="w1").run_once()
    return gateway


def test_no_working_link_is_stored_but_the_sms_carries_it(
    context: AppContext, client: TestClient
) -> None:
    world = SmsWorld(context)
    gateway = _send_all(context, world)
    sent_tokens = {m for sms in gateway.sent for m in LINK.findall(sms.text)}
    invitations = world.rows(Invitation)
    expected = {
        token_for(context.settings.secret_key, i.id) for i in invitations if i.mode == "sms_link"
    }
    assert sent_tokens == expected and len(expected) == 2
    for token in sent_tokens:
        assert client.get(f"/s/{token}").status_code == 200  # the link the citizen got works
    dump = _dump(context)
    assert not LINK.search(dump)
    assert all(token not in dump for token in sent_tokens)
    assert f"/s/{TOKEN_MASK}" in dump  # the stored texts keep their shape, token masked
    # The parts counted on the stored text are those of the SMS that went out.
    sent = {sms.local_id: count_parts(sms.text).parts for sms in gateway.sent}
    stored = {m.local_id: m.parts for m in world.rows(OutboxMessage)}
    assert stored == sent and len(stored) == 3


def test_the_migration_masks_links_stored_before(context: AppContext) -> None:
    world = SmsWorld(context)
    _send_all(context, world)
    invitation = next(i for i in world.rows(Invitation) if i.mode == "sms_link")
    token = token_for(context.settings.secret_key, invitation.id)
    legacy = f"Please answer: https://survey.example.ir/s/{token} STOP: 11"
    with context.engine.begin() as connection:  # a row as the service wrote it before
        connection.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.invitation_id == invitation.id)  # type: ignore[arg-type]
            .values(body=legacy)
        )
    assert token in _dump(context)
    config = db.alembic_config(context.settings)
    command.downgrade(config, "0005")
    command.upgrade(config, "head")
    dump = _dump(context)
    assert token not in dump and not LINK.search(dump)
    assert f"Please answer: https://survey.example.ir/s/{TOKEN_MASK} STOP: 11" in dump
