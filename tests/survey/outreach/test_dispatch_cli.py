"""`survey dispatch --once` end to end through the file gateway, and the dispatcher thread that
runs inside the server."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from survey.app import create_app
from survey.cli import main
from survey.config import Settings
from survey.errors import ConfigurationError
from survey.outreach.background import dispatcher_lifespan, wanted_in_serve
from tests.survey.sms_builders import SmsWorld

PHONE = "+989121234567"


def test_dispatch_once_sends_through_the_file_gateway(
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


def test_dispatch_refuses_a_bad_rate(monkeypatch, migrated_settings, capsys) -> None:
    monkeypatch.setenv("SURVEY_DATABASE_URL", migrated_settings.database_url)
    monkeypatch.setenv("SURVEY_SECRET_KEY", migrated_settings.secret_key.hex())
    assert main(["dispatch", "--once", "--rate", "0"]) == 2
    assert "--rate must be positive" in capsys.readouterr().err


def _dispatcher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sms-dispatcher" and t.is_alive()]


def test_the_served_app_runs_and_stops_a_dispatcher(context, tmp_path: Path) -> None:
    """`survey serve` serves `create_app(settings)`: its lifespan starts the dispatcher, which
    sends the pending invitation, and stops it again on shutdown."""
    settings = context.settings.with_overrides(env="development")
    serving = dataclasses.replace(context, settings=settings)
    world = SmsWorld(serving)
    world.unit(PHONE)
    out = Path(settings.sms_gateway.removeprefix("file:"))
    with TestClient(create_app(settings, context=serving)) as client:
        assert len(_dispatcher_threads()) == 1
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not out.exists():
            time.sleep(0.05)
        assert client.get("/healthz").status_code == 200
    assert _dispatcher_threads() == []  # stopped before the app (and its database) closed
    lines = out.read_text("utf-8").splitlines()
    assert [json.loads(x)["kind"] for x in lines] == ["invite"]


def test_the_test_environment_runs_no_dispatcher(context) -> None:
    assert not wanted_in_serve(context.settings)
    world = SmsWorld(context)
    world.unit(PHONE)
    out = Path(context.settings.sms_gateway.removeprefix("file:"))
    with TestClient(create_app(context.settings, context=context)) as client:
        assert _dispatcher_threads() == []
        time.sleep(0.3)
        assert client.get("/healthz").status_code == 200
    assert not out.exists()  # nothing was sent


def test_a_bare_lifespan_stops_its_dispatcher_too(context) -> None:
    settings = context.settings.with_overrides(env="demo")
    app = Litestar(
        route_handlers=[],
        lifespan=[dispatcher_lifespan(dataclasses.replace(context, settings=settings))],
    )
    with TestClient(app):
        assert len(_dispatcher_threads()) == 1
    assert _dispatcher_threads() == []


@pytest.mark.parametrize(
    ("env", "wanted"), [("development", True), ("demo", True), ("test", False)]
)
def test_dispatcher_in_serve_by_environment(context, env: str, wanted: bool) -> None:
    assert wanted_in_serve(context.settings.with_overrides(env=env)) is wanted


@pytest.mark.parametrize(
    ("env", "flag", "wanted"),
    [("development", "0", False), ("production", "off", False), ("test", "1", True),
     ("development", "", True)],
)  # fmt: skip
def test_survey_dispatch_in_serve_overrides_the_environment(
    tmp_path: Path, env: str, flag: str, wanted: bool
) -> None:
    environ = {
        "SURVEY_ENV": env,
        "SURVEY_DISPATCH_IN_SERVE": flag,
        "SURVEY_VAR_DIR": str(tmp_path),
        "SURVEY_DATABASE_URL": "sqlite:///x.db",
        "SURVEY_SECRET_KEY": "ab" * 32,
        "SURVEY_SMS_WEBHOOK_SECRET": "w" * 32,
        "SURVEY_PUBLIC_BASE_URL": "https://survey.example.ir",  # production needs https
    }
    assert wanted_in_serve(Settings.from_env(environ)) is wanted


def test_survey_dispatch_in_serve_refuses_nonsense(tmp_path: Path) -> None:
    environ = {"SURVEY_DISPATCH_IN_SERVE": "maybe", "SURVEY_VAR_DIR": str(tmp_path)}
    with pytest.raises(ConfigurationError, match="SURVEY_DISPATCH_IN_SERVE must be"):
        Settings.from_env(environ)


def test_options_read_the_optional_settings(context) -> None:
    from types import SimpleNamespace

    from survey.outreach.dispatcher import DispatchOptions

    assert DispatchOptions.from_settings(context.settings).rate_per_second == 10
    given = SimpleNamespace(sms_rate_per_second="2.5", sms_max_attempts=3)
    options = DispatchOptions.from_settings(given, rate_per_second=None)
    assert options.rate_per_second == 2.5 and options.retry.max_attempts == 3
    assert DispatchOptions.from_settings(given, rate_per_second=7).rate_per_second == 7
    with pytest.raises(ValueError, match="rate_per_second must be positive; got 0"):
        DispatchOptions(rate_per_second=0)
