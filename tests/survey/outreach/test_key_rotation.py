"""Rotating SURVEY_SECRET_KEY: stored phones stay readable and every look-up by phone keeps
matching (contact rule, opt-outs, inbound SMS, survey links), before and after
`survey keys rotate` moves the rows to the new key."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient
from sqlmodel import col

from survey.answering.api import signature_for
from survey.app import create_app
from survey.cli import main
from survey.config import Settings
from survey.context import AppContext
from survey.kernel.crypto import PhoneVault
from survey.models import OptOut, SampledUnit
from survey.outreach.dispatcher import Dispatcher, DispatchOptions
from survey.outreach.gateways.memory import MemoryGateway
from survey.outreach.key_rotation import key_status
from tests.survey.builders import AgencyFixture, add_agency, add_plan, transaction_record
from tests.survey.sms_builders import SmsWorld

NEW_SECRET = bytes(range(100, 132))
LINK = re.compile(r"https://survey\.example\.ir/s/([a-z2-7]{16})")


class Node:
    """One running service under some settings: its context, app client and dispatcher."""

    def __init__(self, settings: Settings, clock, gateway: MemoryGateway) -> None:
        self.context = AppContext.build(settings, clock=clock)
        self.client = TestClient(create_app(settings, context=self.context))
        self.client.__enter__()
        self.gateway = gateway
        self.dispatcher = Dispatcher(
            self.context, gateway, options=DispatchOptions(rate_per_second=1e6), worker_id="w"
        )

    def ingest(self, agency: AgencyFixture, n: int, ext: str, service: str) -> str:
        record = transaction_record(n, service=service, external_id=ext)
        response = self.client.post(
            "/api/v1/transactions", json=record, headers={"Authorization": f"Bearer {agency.key}"}
        )
        assert response.status_code == 200, response.text
        with self.context.engine.connect() as conn:
            return str(
                conn.exec_driver_sql(
                    f"SELECT outcome FROM service_transaction WHERE external_id = '{ext}'"
                ).scalar_one()
            )

    def sms(self, phone: str, text: str, message_id: str) -> str:
        body = json.dumps(
            {"from": phone, "to": "3000", "text": text, "message_id": message_id},
            ensure_ascii=False,
        ).encode()
        secret = self.context.settings.sms_webhook_secret
        response = self.client.post(
            "/api/v1/sms/inbound",
            content=body,
            headers={"X-Survey-Signature": signature_for(secret, body)},
        )
        assert response.status_code == 200, response.text
        self.dispatcher.run_once()
        return str(response.json()["outcome"])

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.context.close()


@pytest.fixture
def nodes(migrated_settings: Settings, clock) -> Iterator[list[Node]]:
    made: list[Node] = []
    yield made
    for node in made:
        node.close()


def _phone(n: int) -> str:
    return f"0912{n:07d}"


def _e164(n: int) -> str:
    return f"+98912{n:07d}"


def test_rotation_keeps_phones_hashes_and_links_working(
    migrated_settings: Settings,
    context: AppContext,
    clock,
    nodes: list[Node],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    SmsWorld(context)  # registers the questionnaires
    tax = add_agency(context, "TAX", ("TAX-01", "TAX-02"))
    add_plan(context, version=2, default_rate=1.0, rates=[])
    gateway = MemoryGateway()

    old = Node(migrated_settings, clock, gateway)
    nodes.append(old)
    assert old.ingest(tax, 1, "a-1", "TAX-01") == "sampled"  # link invitation
    assert old.ingest(tax, 2, "a-2", "TAX-02") == "sampled"  # SMS dialog
    old.dispatcher.run_once()
    [link_sms] = gateway.texts_to(_e164(1))
    found = LINK.search(link_sms)
    assert found is not None
    old_token = found[1]
    assert old.sms(_phone(2), "لغو", "m-1") == "opted_out"
    old_key_id = old.context.vault.key_id

    # Deploy the new secret with the old one as previous: everything keeps matching.
    rotated = migrated_settings.with_overrides(
        secret_key=NEW_SECRET, previous_secret_keys=(migrated_settings.secret_key,)
    )
    new = Node(rotated, clock, gateway)
    nodes.append(new)
    assert new.context.vault.key_id != old_key_id
    assert new.ingest(tax, 1, "b-1", "TAX-01") == "ineligible"  # contact rule, old hash
    assert new.ingest(tax, 2, "b-2", "TAX-02") == "ineligible"  # opted out, old hash
    assert new.ingest(tax, 3, "b-3", "TAX-01") == "sampled"
    assert new.client.get(f"/s/{old_token}").status_code == 200
    assert new.sms(_phone(1), "5", "m-2") == "use_link"  # inbound found the old unit
    assert old_token in gateway.texts_to(_e164(1))[-1]  # the reply repeats the sent link
    new.dispatcher.run_once()
    assert len(gateway.texts_to(_e164(3))) == 1  # a new-key phone is sent
    assert key_status(new.context).phones_by_key == {old_key_id: 2, new.context.vault.key_id: 1}

    # Re-encrypt with the CLI.
    monkeypatch.setenv("SURVEY_DATABASE_URL", migrated_settings.database_url)
    monkeypatch.setenv("SURVEY_SECRET_KEY", NEW_SECRET.hex())
    monkeypatch.setenv("SURVEY_PREVIOUS_SECRET_KEYS", migrated_settings.secret_key.hex())
    monkeypatch.setenv("SURVEY_VAR_DIR", str(tmp_path / "var"))
    assert main(["keys", "rotate", "--batch-size", "1"]) == 0
    assert main(["keys", "status"]) == 0
    assert main(["keys", "rotate"]) == 0  # nothing left: harmless

    # Now even without the old secret the stored rows all match the new key.
    alone = Node(migrated_settings.with_overrides(secret_key=NEW_SECRET), clock, gateway)
    nodes.append(alone)
    vault = PhoneVault.from_secret(NEW_SECRET)
    with alone.context.engine.connect() as conn:
        units = conn.execute(
            sa.select(
                col(SampledUnit.phone_ciphertext),
                col(SampledUnit.phone_key_id),
                col(SampledUnit.phone_hash),
            )
        ).all()
        opt_outs = conn.execute(sa.select(col(OptOut.phone_hash))).scalars().all()
    assert {row.phone_key_id for row in units} == {vault.key_id}
    phones = sorted(vault.decrypt(row.phone_ciphertext) for row in units)
    assert phones == [_e164(1), _e164(2), _e164(3)]
    assert {row.phone_hash for row in units} == {vault.phone_hash(p) for p in phones}
    assert opt_outs == [vault.phone_hash(_e164(2))]
    assert alone.ingest(tax, 1, "c-1", "TAX-01") == "ineligible"
    assert alone.ingest(tax, 2, "c-2", "TAX-02") == "ineligible"
    assert alone.ingest(tax, 3, "c-3", "TAX-01") == "ineligible"
    assert alone.sms(_phone(1), "لغو", "m-3") == "opted_out"
    with alone.context.engine.connect() as conn:
        status = conn.exec_driver_sql("SELECT status FROM invitation WHERE id = 1").scalar_one()
    assert status == "opted_out"  # the inbound SMS found phone 1's invitation by its new hash


def test_settings_read_previous_keys_and_refuse_short_ones() -> None:
    env = {
        "SURVEY_DATABASE_URL": "sqlite:///x.db",
        "SURVEY_SECRET_KEY": NEW_SECRET.hex(),
        "SURVEY_PREVIOUS_SECRET_KEYS": f" {bytes(32).hex()} , {NEW_SECRET.hex()},",
    }
    settings = Settings.from_env(env)
    assert settings.previous_secret_keys == (bytes(32),)  # the current one is not repeated
    assert settings.secret_keys == (NEW_SECRET, bytes(32))
    from survey.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="SURVEY_PREVIOUS_SECRET_KEYS"):
        Settings.from_env({**env, "SURVEY_PREVIOUS_SECRET_KEYS": "abcd"})


def test_a_ciphertext_under_an_unknown_key_is_reported_not_lost(
    context: AppContext,
    migrated_settings: Settings,
    clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = SmsWorld(context)
    world.unit(_e164(7))
    monkeypatch.setenv("SURVEY_DATABASE_URL", migrated_settings.database_url)
    monkeypatch.setenv("SURVEY_SECRET_KEY", NEW_SECRET.hex())
    monkeypatch.delenv("SURVEY_PREVIOUS_SECRET_KEYS", raising=False)
    assert main(["keys", "rotate"]) == 1  # the old secret was not configured
    assert main(["keys", "status"]) == 1
    with context.engine.connect() as conn:
        blob = conn.execute(sa.select(col(SampledUnit.phone_ciphertext))).scalar_one()
    assert blob is not None
    assert context.vault.decrypt(blob) == _e164(7)  # untouched, still readable with the old key
