"""Only configured proxies may set a client's address: a client that rotates X-Forwarded-For
cannot escape the per-address limits of `survey serve`, and behind a trusted proxy each
citizen counts as themselves.

A real `survey serve` on a free port (uvicorn would otherwise believe X-Forwarded-For from
any loopback client, which is where the test client connects from).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from survey.config import ConfigurationError, Settings
from tests.survey.test_operations import _free_port, _wait_ready

LOGIN_BURST = 10  # survey.http.security: the login bucket per client address


@contextmanager
def serving(settings: Settings, tmp_path: Path, **extra: str) -> Iterator[int]:
    port = _free_port()
    log = tmp_path / f"serve-{port}.log"
    env = {
        **os.environ,
        "SURVEY_ENV": "test",
        "SURVEY_DATABASE_URL": settings.database_url,
        "SURVEY_SECRET_KEY": settings.secret_key.hex(),
        "SURVEY_VAR_DIR": str(tmp_path / "var"),
        **extra,
    }
    serve = "import sys; from survey.cli import main; sys.exit(main(sys.argv[1:]))"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", serve, "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        _wait_ready(port, process, log)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)


def _sign_in_from(port: int, forwarded_for: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(
        "POST",
        "/login",
        body="username=nobody&password=wrong",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Forwarded-For": forwarded_for,
        },
    )
    return conn.getresponse().status


def test_a_rotated_forwarded_for_does_not_escape_the_limit(
    migrated_settings: Settings, tmp_path: Path
) -> None:
    with serving(migrated_settings, tmp_path) as port:
        statuses = [_sign_in_from(port, f"203.0.113.{n}") for n in range(LOGIN_BURST + 2)]
    assert 429 not in statuses[:LOGIN_BURST]
    assert statuses[LOGIN_BURST:] == [429, 429]  # one address, whatever the header says


def test_behind_a_trusted_proxy_each_client_counts_as_itself(
    migrated_settings: Settings, tmp_path: Path
) -> None:
    with serving(migrated_settings, tmp_path, SURVEY_TRUSTED_PROXIES="127.0.0.1") as port:
        statuses = [_sign_in_from(port, f"203.0.113.{n}") for n in range(LOGIN_BURST + 2)]
        repeated = [_sign_in_from(port, "198.51.100.7") for _ in range(LOGIN_BURST + 1)]
    assert 429 not in statuses
    assert repeated[-1] == 429 and 429 not in repeated[:LOGIN_BURST]


def test_trusted_proxies_are_checked_addresses() -> None:
    secret = {"SURVEY_SECRET_KEY": "ab" * 32, "SURVEY_DATABASE_URL": "sqlite:///x.db"}
    settings = Settings.from_env({**secret, "SURVEY_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16"})
    assert settings.trusted_proxies == ("10.0.0.5", "10.1.0.0/16")
    assert Settings.from_env(secret).trusted_proxies == ()
    with pytest.raises(ConfigurationError, match="'nginx' is not an IP address"):
        Settings.from_env({**secret, "SURVEY_TRUSTED_PROXIES": "nginx"})
