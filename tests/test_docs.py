"""Every ```sh and ```python block in README.md and docs/ runs, on a demo database.

Each document is one test: its blocks run in order in one working folder (a block may use the
files an earlier one wrote), in a copy of a database the demo seeded (`survey demo --no-serve`),
with `survey`, `questionnaires` and `python` from this venv on the PATH, and, when a block talks
to http://127.0.0.1:8000, a `survey serve` of that database in place of it. Blocks see
`$TOKEN` (the demo's admin API token), `$AGENCY_KEY` (its TAX ingestion key) and
`$SURVEY_SMS_WEBHOOK_SECRET` as a reader would after running the demo, and the service's
clock starts on the day the examples were written (`SURVEY_CLOCK_START`), so that the periods
they name hold the demo's data on any day the suite runs. `curl` fails on an HTTP
error, so an example that answers 401 fails here.

A block that cannot run in a test (it serves until stopped, or creates database roles) is
preceded by `<!-- not run: REASON -->`; the reason is checked to be there and the list kept short.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(
    r"(?P<marker><!-- not run: (?P<reason>[^>]*?) -->\s*\n)?^```(?P<lang>sh|python)[ \t]*\n"
    r"(?P<body>.*?)^```[ \t]*$",
    re.S | re.M,
)
DEMO_PORT = "127.0.0.1:8000"
SECRET = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
WEBHOOK_SECRET = "docs-webhook-secret-0123456789abcdef"
BIN = Path(sys.executable).parent
# The day the documentation's examples were written on: periods they name hold demo data.
CLOCK_START = "2026-12-04T12:00:00+03:30"
MOST_NOT_RUN = 6


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    lang: str
    body: str
    not_run: str | None

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def blocks_of(document: Path) -> list[Block]:
    text = document.read_text(encoding="utf-8")
    found = []
    for match in BLOCK.finditer(text):
        fence = match.start("lang") - 3
        found.append(
            Block(
                document=document,
                line=text.count("\n", 0, fence) + 1,
                lang=match["lang"],
                body=match["body"],
                not_run=match["reason"],
            )
        )
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Demo:
    database: Path
    var_dir: Path
    token: str
    agency_key: str
    output: str


def _base_env(database: Path, var_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "SURVEY_ENV": "test",
        "SURVEY_DATABASE_URL": f"sqlite:///{database.as_posix()}",
        "SURVEY_SECRET_KEY": SECRET,
        "SURVEY_VAR_DIR": str(var_dir),
        "SURVEY_SMS_GATEWAY": f"file:{var_dir / 'sms.jsonl'}",
        "SURVEY_SMS_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SURVEY_DISPATCH_IN_SERVE": "0",
        "PYTHONPATH": str(ROOT),
        "SURVEY_CLOCK_START": CLOCK_START,
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    var_dir = tmp_path_factory.mktemp("demo-var")
    database = var_dir / "survey.db"
    env = _base_env(database, var_dir)
    env.pop("SURVEY_SMS_GATEWAY")
    done = subprocess.run(
        [str(BIN / "survey"), "demo", "--no-serve", "--transactions", "20000", "--days", "62"],
        env=env, capture_output=True, text=True, timeout=300, cwd=var_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    token = re.search(r"^(stk_\S+)$", done.stdout, re.M)
    key = re.search(r"ingestion key[^:]*: (agk_\S+)", done.stdout)
    assert token and key, done.stdout[-2000:]
    return Demo(database, var_dir, token[1], key[1], done.stdout)


class Server:
    """`survey serve` on a free port for the blocks that call the HTTP API."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        self.env = {**env, "SURVEY_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}"}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [str(BIN / "survey"), "serve", "--port", str(self.port)],
                env=self.env, stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("server did not start:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture
def workspace(demo: Demo, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], list[Server]]]:
    var_dir = tmp_path / "var"
    shutil.copytree(demo.var_dir, var_dir)
    work = tmp_path / "work"
    work.mkdir()
    for folder in ("questionnaires", "bench"):  # as in a checkout, where the docs run
        (work / folder).symlink_to(ROOT / folder, target_is_directory=True)
    env = {
        **_base_env(var_dir / "survey.db", var_dir),
        "TOKEN": demo.token,
        "AGENCY_KEY": demo.agency_key,
    }
    servers: list[Server] = []
    yield work, env, servers
    for server in servers:
        server.stop()


def _run_python(
    block: Block, body: str, work: Path, env: dict[str, str], namespace: dict[str, object]
) -> None:
    """A document's python blocks run one after another in one namespace, as a reader
    pastes them into one session, in the document's working folder and environment."""
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    os.environ.update(env)
    os.chdir(work)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(body, block.where, "exec"), namespace)  # our own docs
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _run(
    block: Block,
    work: Path,
    env: dict[str, str],
    servers: list[Server],
    namespace: dict[str, object],
) -> None:
    body = block.body
    if DEMO_PORT in body:
        if not servers:
            servers.append(Server(env, work.parent / "server.log"))
            servers[0].start()
        body = body.replace(DEMO_PORT, f"127.0.0.1:{servers[0].port}")
    if block.lang == "python":
        _run_python(block, body, work, env, namespace)
        return
    script = (
        "set -euo pipefail\n"
        "curl() { command curl --silent --show-error --fail-with-body \"$@\"; }\n" + body
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True,
        timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, (
        f"{block.where}: exit {done.returncode}\n--- block\n{block.body}\n--- stdout\n"
        f"{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )


def test_the_blocks_not_run_say_why_and_are_few() -> None:
    not_run = [b for d in DOCUMENTS for b in blocks_of(d) if b.not_run is not None]
    assert all(len((b.not_run or "").strip()) >= 10 for b in not_run), [b.where for b in not_run]
    assert len(not_run) <= MOST_NOT_RUN, [f"{b.where}: {b.not_run}" for b in not_run]
    assert sum(len(blocks_of(d)) for d in DOCUMENTS) >= 20


@pytest.mark.parametrize(
    "document",
    [d for d in DOCUMENTS if any(b.not_run is None for b in blocks_of(d))],
    ids=lambda d: d.name,
)
def test_every_block_of_the_document_runs(
    document: Path, workspace: tuple[Path, dict[str, str], list[Server]]
) -> None:
    work, env, servers = workspace
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in blocks_of(document):
        if block.not_run is None:
            _run(block, work, env, servers, namespace)
