"""``python -m analysis estimate``: results, formats and one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import main

APISTRAT = Path(__file__).resolve().parents[1] / "data" / "api" / "apistrat.csv"
DESIGN = ["--weights", "pw", "--strata", "stype", "--fpc", "fpc"]


def test_estimate_csv_matches_the_api(capsys, dstrat):
    status = main(["estimate", str(APISTRAT), *DESIGN, "--mean", "api00", "--by", "stype"])
    assert status == 0
    table = pd.read_csv(StringIO(capsys.readouterr().out))
    expected = dstrat.mean("api00", by="stype")
    assert list(table["stype"]) == ["E", "H", "M"]
    assert table["se"].to_numpy() == pytest.approx(expected["se"].to_numpy(), rel=1e-12)
    assert set(table["statistic"]) == {"mean"}


def test_estimate_json_with_proportion(tmp_path, capsys):
    frame = pd.read_csv(APISTRAT).assign(satisfied=lambda d: (d["sch.wide"] == "Yes").astype(int))
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False)
    status = main(
        [
            "estimate",
            str(path),
            *DESIGN,
            "--mean",
            "api00",
            "--proportion",
            "satisfied",
            "--by",
            "stype",
            "--format",
            "json",
            "--proportion-method",
            "beta",
        ]
    )
    assert status == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["statistic"] for r in records] == ["mean"] * 3 + ["proportion"] * 3
    assert all(0 <= r["ci_low"] <= r["estimate"] <= r["ci_high"] <= 1 for r in records[3:])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--mean", "api00", "--by", "region"], "by: column 'region' is not in the data"),
        (["--mean", "nope"], "mean: column 'nope' is not in the data"),
        (["--mean", "api00", "--bogus"], "unrecognized arguments: --bogus"),
        (["--proportion", "api00"], "must hold 0/1"),
        ([], "nothing to estimate"),
    ],
)
def test_errors_are_one_line_with_status_2(arguments, message, capsys):
    assert main(["estimate", str(APISTRAT), *DESIGN, *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("analysis: error: ") and message in err
    assert err.count("\n") == 1


def test_missing_file(capsys):
    assert main(["estimate", "/nonexistent.csv", "--mean", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "analysis", "estimate", str(APISTRAT), "--mean", "api00"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "analysis: error: weights: expected a weights column, or fpc columns to derive them "
        "from; got neither"
    )
