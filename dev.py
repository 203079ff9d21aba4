#!/usr/bin/env python3
"""Bootstrap and run: `python3 dev.py demo` or `python3 dev.py test [pytest args]`.

The tests run in one process per core (pytest-xdist); pass `-n 0` for a single process.

Needs only Python 3.11+. Creates `.venv` beside this file on first use (and again whenever
pyproject.toml changes), installs the project with its test extra, then runs the command.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed-from"

COMMANDS = {
    "demo": ["survey", "demo"],
    "serve": ["survey", "serve"],
    "test": ["python", "-m", "pytest", "-n", "auto"],  # `-n 0` after it: one process
    "lint": ["ruff", "check", "."],
}


def ensure_environment() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036  (dev.py runs on any python3)
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.create(VENV, with_pip=True)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    print("installing the project and its test tools into .venv ...", flush=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[test]"], check=True, cwd=ROOT)
    STAMP.write_text(wanted + "\n")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python3 dev.py {{{'|'.join(COMMANDS)}}} [arguments...]", file=sys.stderr)
        return 2
    ensure_environment()
    program, *rest = COMMANDS[argv[0]]
    command = [str(BIN / program), *rest, *argv[1:]]
    return subprocess.call(command, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
