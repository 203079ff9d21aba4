"""The ``questionnaires`` command with real files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from questionnaires import library_path, load, read_xlsform
from questionnaires.cli import main

CORE = library_path() / "core-transaction.yaml"


def test_validate_ok(capsys):
    files = sorted(str(p) for p in library_path().glob("*.yaml"))
    assert main(["validate", *files]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(": OK (" in line for line in lines)


def test_validate_lists_every_problem(base, write_yaml, capsys):
    base["items"][1]["type"] = "likert7"
    base["sms"] = ["q_why"]
    bad = write_yaml(base, "bad.yaml")
    assert main(["validate", str(CORE), str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"{CORE}: OK" in captured.out
    assert "[unknown-type]" in captured.err and "[sms-not-digit]" in captured.err
    assert "2 problems" in captured.err


def test_preview_to_file_and_stdout(tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["preview", str(CORE), "--lang", "fa", "--out", str(out)]) == 0
    assert 'dir="rtl"' in out.read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["preview", str(CORE), "--lang", "en", "--answer", "q_outcome=4"]) == 0
    page = capsys.readouterr().out
    assert 'lang="en"' in page and 'name="q_next_steps"' in page


def test_convert_both_ways(tmp_path):
    xlsx, yaml_file, json_file = tmp_path / "c.xlsx", tmp_path / "c.yaml", tmp_path / "c.json"
    assert main(["convert", str(CORE), "--out", str(xlsx)]) == 0
    assert main(["convert", str(xlsx), "--out", str(yaml_file)]) == 0
    assert main(["convert", str(yaml_file), "--out", str(json_file)]) == 0
    original = load(CORE)
    assert read_xlsform(xlsx) == original == load(yaml_file) == load(json_file)


def test_convert_reports_problems(base, write_yaml, tmp_path, capsys):
    base["items"][0]["text"] = {"fa": "فقط فارسی"}
    assert main(["convert", str(write_yaml(base)), "--out", str(tmp_path / "x.xlsx")]) == 1
    assert "[missing-translation]" in capsys.readouterr().err
    assert not (tmp_path / "x.xlsx").exists()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["validate"],
        ["preview", str(CORE), "--lang", "de"],
        ["preview", str(CORE), "--answer", "novalue"],
        ["convert", str(CORE)],
        ["convert", str(CORE), "--out", "x.txt"],
        ["frobnicate"],
    ],
)
def test_bad_usage_exits_2_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_console_entry_point_runs(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "questionnaires.cli", "validate", str(CORE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "core-transaction v1" in result.stdout


def test_validate_a_folder(capsys):
    assert main(["validate", str(library_path())]) == 0
    assert capsys.readouterr().out.count(": OK (") == 3
