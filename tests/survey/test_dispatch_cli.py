"""`survey dispatch --once` end to end through the file gateway, and the dispatcher thread that
runs inside the server."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient

from survey.cli import main
from survey.dispatch.background import dispatcher_lifespan, wanted_in_serve

from .sms_builders import SmsWorld

PHONE = "+989121234567"


def test_dispatch_once_sends_through_the_file_gateway(  # type: ignore[no-untyped-def]
    context, migrated_settings, monkeypatch, tmp_path: Path, capsys
) -> None:
    world = SmsWorld(context)
    world.unit(PHONE, mode="sms_link", qid="core-transaction")
    out = tmp_path / "cli-sms.jsonl"
    monkeypatch.setenv("SURVEY_DATABASE_URL", migrated_settings.database_url)
    monkeypatch.setenv("SURVEY_SECRET_KEY", migrated_settings.secret_key.hex())
    monkeypatch.setenv("SURVEY_SMS_GATEWAY", f"file:{out}")
    monkeypatch.setenv("SURVEY_PUBLIC_BASE_URL", "https://survey.example.ir")
    monkeypatch.setenv("SURVEY_VAR_DIR", str(tmp_path / "var"))
    assert main(["dispatch", "--once"]) == 0
    assert "invited 1, sent 1" in capsys.readouterr().out
    [line] = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert line["to"] == PHONE and line["kind"] == "invite" and line["invitation_id"] == 1
    assert line["local_id"] == "inv1-invite" and "https://survey.example.ir/s/" in line["text"]
    assert main(["dispatch", "--once"]) == 0  # nothing new, nothing resent
    assert len(out.read_text("utf-8").splitlines()) == 1


def test_dispatch_refuses_a_bad_rate(monkeypatch, migrated_settings, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SURVEY_DATABASE_URL", migrated_settings.database_url)
    monkeypatch.setenv("SURVEY_SECRET_KEY", migrated_settings.secret_key.hex())
    assert main(["dispatch", "--once", "--rate", "0"]) == 2
    assert "--rate must be positive" in capsys.readouterr().err


def test_the_server_runs_and_stops_a_dispatcher(context, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert not wanted_in_serve(context.settings)  # tests run without one unless asked
    settings = context.settings.with_overrides(env="development")
    serving = dataclasses.replace(context, settings=settings)
    world = SmsWorld(serving)
    world.unit(PHONE)
    app = Litestar(
        route_handlers=[], lifespan=[dispatcher_lifespan], state=State({"context": serving})
    )
    out = Path(settings.sms_gateway.removeprefix("file:"))
    with TestClient(app):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not out.exists():
            time.sleep(0.05)
    lines = out.read_text("utf-8").splitlines()
    assert [json.loads(x)["kind"] for x in lines] == ["invite"]


@pytest.mark.parametrize(
    ("env", "wanted"), [("development", True), ("demo", True), ("test", False)]
)
def test_dispatcher_in_serve_by_environment(context, env: str, wanted: bool) -> None:  # type: ignore[no-untyped-def]
    assert wanted_in_serve(context.settings.with_overrides(env=env)) is wanted


def test_options_read_the_optional_settings(context) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from survey.dispatch.dispatcher import DispatchOptions

    assert DispatchOptions.from_settings(context.settings).rate_per_second == 10
    given = SimpleNamespace(sms_rate_per_second="2.5", sms_max_attempts=3)
    options = DispatchOptions.from_settings(given, rate_per_second=None)
    assert options.rate_per_second == 2.5 and options.retry.max_attempts == 3
    assert DispatchOptions.from_settings(given, rate_per_second=7).rate_per_second == 7
    with pytest.raises(ValueError, match="rate_per_second must be positive; got 0"):
        DispatchOptions(rate_per_second=0)
