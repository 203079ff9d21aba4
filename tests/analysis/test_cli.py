"""``python -m analysis estimate|regress|drivers|sae``: results, formats, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import SurveyDesign, compare_domains, joint_estimates
from analysis.cli import main
from analysis.drivers import key_drivers
from analysis.regression import regress
from analysis.small_areas import small_area_estimates

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


# ---- regress, drivers, sae on an export-shaped file ----------------------------------------
EXPORT_DESIGN = ["--weights", "weight", "--strata", "stratum", "--fpc", "N_h"]


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    """A file with the export's design and score columns: 6 agencies x 8 provinces."""
    rng = np.random.default_rng(11)
    n = 3000
    agency = rng.choice([f"AG{i}" for i in range(6)], n, p=[0.3, 0.25, 0.2, 0.15, 0.07, 0.03])
    channel = rng.choice(["online", "in_person"], n)
    province = rng.integers(1, 9, n)
    level = {f"AG{i}": 55 + 4 * i for i in range(6)}
    base = np.array([level[a] for a in agency]) + 2 * province
    time = np.clip(rng.normal(base, 20), 0, 100)
    courtesy = np.clip(0.5 * time + rng.normal(35, 15, n), 0, 100)
    outcome = np.clip(rng.normal(base + 5, 25), 0, 100)
    overall = np.clip(0.3 * time + 0.1 * courtesy + 0.5 * outcome + rng.normal(5, 10, n), 0, 100)
    frame = pd.DataFrame(
        {
            "agency": agency,
            "channel": channel,
            "province": province,
            "stratum": [
                f"1405-01/v1/agency={a}|channel={c}" for a, c in zip(agency, channel, strict=True)
            ],
            "score_time": time.round(),
            "score_courtesy": courtesy.round(),
            "score_outcome": outcome.round(),
            "score_overall": overall.round(),
        }
    )
    frame.loc[rng.choice(n, 40, replace=False), "score_courtesy"] = np.nan  # not answered
    frame["index"] = frame[["score_time", "score_courtesy", "score_outcome"]].mean(axis=1)
    frame["satisfied"] = (frame["score_overall"] >= 75).astype(int)
    counts = frame.groupby("stratum")["agency"].transform("size")
    frame["N_h"] = counts * 40
    frame["weight"] = frame["N_h"] / counts
    path = tmp_path_factory.mktemp("export") / "responses.csv"
    frame.to_csv(path, index=False)
    return path


def export_design(path: Path) -> SurveyDesign:
    return SurveyDesign(pd.read_csv(path), weights="weight", strata="stratum", fpc="N_h")


def run(capsys, *arguments: str) -> pd.DataFrame:
    status = main(list(arguments))
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return pd.read_csv(StringIO(captured.out))


def test_regress_matches_the_api(export, capsys):
    formula = "score_overall ~ score_time + score_courtesy + score_outcome"
    table = run(capsys, "regress", str(export), *EXPORT_DESIGN, "--formula", formula)
    expected = regress(export_design(export), formula)
    assert table["term"].tolist() == [
        "(Intercept)",
        "score_time",
        "score_courtesy",
        "score_outcome",
    ]
    np.testing.assert_allclose(table["estimate"], expected["estimate"], rtol=1e-12)
    np.testing.assert_allclose(table["se"], expected["se"], rtol=1e-12)
    assert (table["dropped"] == 40).all() and (table["n"] == 2960).all()


def test_regress_logistic_by_agency_as_json(export, capsys):
    status = main(
        [
            "regress",
            str(export),
            *EXPORT_DESIGN,
            "--formula",
            "satisfied ~ score_time + score_outcome",
            "--family",
            "binomial",
            "--by",
            "agency",
            "--format",
            "json",
        ]
    )
    assert status == 0
    records = pd.DataFrame(json.loads(capsys.readouterr().out))
    assert sorted(records["agency"].unique()) == [f"AG{i}" for i in range(6)]
    slopes = records[records["term"] == "score_outcome"]
    assert (slopes["estimate"] > 0).all()
    assert (slopes["ci_low"] < slopes["estimate"]).all()


def test_drivers_match_the_api(export, capsys):
    drivers = ["score_time", "score_courtesy", "score_outcome"]
    arguments = ["--outcome", "score_overall", "--by", "agency", "--replicates", "20"]
    for driver in drivers:
        arguments += ["--driver", driver]
    table = run(capsys, "drivers", str(export), *EXPORT_DESIGN, *arguments)
    expected = key_drivers(
        export_design(export), "score_overall", drivers, by="agency", replicates=20, seed=0
    )
    np.testing.assert_allclose(table["importance"], expected["importance"], rtol=1e-12)
    np.testing.assert_allclose(table["importance_se"], expected["importance_se"], rtol=1e-12)
    national = table[table["scope"] == "national"]
    assert national.loc[national["importance"].idxmax(), "driver"] == "score_outcome"
    # the smallest agency (about 90 responses) is below min_n=100: a note, no numbers
    small = table[table["agency"] == "AG5"]
    assert (
        small["note"].str.startswith("too_few_responses").all() and small["importance"].isna().all()
    )


def test_sae_estimates_every_cell_and_labels_model_based_ones(export, capsys):
    arguments = ["--mean", "index", "--area", "agency", "--area", "province"]
    table = run(capsys, "sae", str(export), *EXPORT_DESIGN, *arguments, "--parent", "agency")
    assert len(table) == 48 and {"eblup", "mse", "estimate", "model_based"} <= set(table)
    # cells that fail the quality rule (n < 30) take the EBLUP; the others keep the direct
    thin = table["n"] < 30
    assert thin.any() and table.loc[thin, "model_based"].all()
    np.testing.assert_allclose(table.loc[thin, "estimate"], table.loc[thin, "eblup"])
    kept = ~table["model_based"]
    np.testing.assert_allclose(table.loc[kept, "estimate"], table.loc[kept, "direct"])
    assert (table["rmse"] < table["direct_se"].where(thin)).sum() >= 0.8 * thin.sum()
    result = small_area_estimates(
        export_design(export), "index", ["agency", "province"], parent="agency"
    )
    np.testing.assert_allclose(table["eblup"], result.table["eblup"], rtol=1e-12)


def test_sae_with_an_auxiliary_file_fills_empty_cells(export, tmp_path, capsys):
    cells = pd.DataFrame(
        [(f"AG{a}", p) for a in range(6) for p in range(1, 10)], columns=["agency", "province"]
    )
    cells["frame_count"] = 500 + 10 * cells.index
    cells["last_year"] = 60 + cells.index % 7
    auxiliary = tmp_path / "cells.csv"
    cells.to_csv(auxiliary, index=False)
    arguments = [
        "--mean",
        "index",
        "--area",
        "agency",
        "--area",
        "province",
        "--auxiliary",
        str(auxiliary),
        "--covariate",
        "last_year",
        "--size",
        "frame_count",
        "--method",
        "ML",
    ]
    table = run(capsys, "sae", str(export), *EXPORT_DESIGN, *arguments)
    assert len(table) == 54  # province 9 has no responses: synthetic estimates
    empty = table[table["province"] == 9]
    assert (empty["n"] == 0).all() and empty["direct"].isna().all()
    np.testing.assert_allclose(empty["estimate"], empty["synthetic"])
    assert empty["model_based"].all() and (empty["mse"] > 0).all()
    coefficients = run(capsys, "sae", str(export), *EXPORT_DESIGN, *arguments, "--coefficients")
    assert coefficients["term"].tolist() == ["(Intercept)", "last_year", "log_size"]
    assert (coefficients["method"] == "ML").all()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["regress", "--formula", "score_overall ~ nope"], "nope"),
        (["regress", "--formula", "score_overall ~ score_time", "--by", "region"], "'region'"),
        (["regress", "--formula", "score_overall ~ score_time", "--family", "gamma"], "gamma"),
        (["regress"], "the following arguments are required: --formula"),
        (["drivers", "--outcome", "score_overall", "--driver", "score_time"], "at least 2"),
        (["drivers", "--outcome", "nope", "--driver", "a", "--driver", "b"], "'nope'"),
        (
            ["drivers", "--outcome", "agency", "--driver", "score_time", "--driver", "channel"],
            "expected numeric scores",
        ),
        (
            [
                "drivers",
                "--outcome",
                "score_overall",
                "--driver",
                "score_time",
                "--driver",
                "score_outcome",
                "--replicates",
                "1",
            ],
            "--replicates",
        ),
        (["sae", "--mean", "index"], "the following arguments are required: --area"),
        (["sae", "--mean", "index", "--area", "district"], "'district'"),
        (["sae", "--mean", "index", "--area", "agency", "--covariate", "x"], "--auxiliary"),
        (["sae", "--mean", "index", "--area", "agency", "--method", "EB"], "invalid choice"),
        (
            [
                "sae",
                "--mean",
                "index",
                "--area",
                "agency",
                "--area",
                "province",
                "--no-log-size",
            ],
            "auxiliary variables: none",
        ),
        (
            [
                "sae",
                "--mean",
                "index",
                "--area",
                "agency",
                "--area",
                "province",
                "--parent",
                "channel",
            ],
            "several values within a cell",
        ),
        (["estimate", "--mean", "index", "--level", "95"], "--level"),
    ],
)
def test_model_command_errors_are_one_line(export, arguments, message, capsys):
    command, *rest = arguments
    assert main([command, str(export), *EXPORT_DESIGN, *rest]) == 2
    err = capsys.readouterr().err
    assert err.startswith("analysis: error: ") and message in err, err
    assert err.count("\n") == 1


def test_sae_auxiliary_errors_are_named(export, tmp_path, capsys):
    auxiliary = tmp_path / "cells.csv"
    pd.DataFrame({"agency": ["AG0"], "province": [1], "x": [1.0]}).to_csv(auxiliary, index=False)
    arguments = ["--mean", "index", "--area", "agency", "--area", "province"]
    assert (
        main(
            [
                "sae",
                str(export),
                *EXPORT_DESIGN,
                *arguments,
                "--auxiliary",
                str(auxiliary),
                "--covariate",
                "x",
            ]
        )
        == 2
    )
    assert "not in the auxiliary table (first: agency=AG0, province=2)" in capsys.readouterr().err
    assert (
        main(
            [
                "sae",
                str(export),
                *EXPORT_DESIGN,
                *arguments,
                "--auxiliary",
                str(tmp_path / "none.csv"),
                "--covariate",
                "x",
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_csv_output_neutralises_spreadsheet_formulas(tmp_path, capsys):  # type: ignore[no-untyped-def]
    """Domain labels come from the data: one that starts a formula is written as text."""
    frame = pd.read_csv(APISTRAT)
    frame["stype"] = frame["stype"].map({"E": "=HYPERLINK(1)", "H": "@SUM(1)", "M": "-2+3"})
    path = tmp_path / "hostile.csv"
    frame.to_csv(path, index=False)
    assert main(["estimate", str(path), *DESIGN, "--mean", "api00", "--by", "stype"]) == 0
    table = pd.read_csv(StringIO(capsys.readouterr().out))
    assert sorted(table["stype"]) == ["'-2+3", "'=HYPERLINK(1)", "'@SUM(1)"]
    assert pd.api.types.is_float_dtype(table["estimate"])  # numbers stay numbers


def test_weights_that_are_not_numbers_are_an_error_message_not_a_traceback(tmp_path, capsys):  # type: ignore[no-untyped-def]
    frame = pd.read_csv(APISTRAT)
    frame["pw"] = frame["pw"].astype(object)
    frame.loc[3, "pw"] = "abc"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    assert main(["estimate", str(path), *DESIGN, "--mean", "api00"]) == 2
    assert "pw: expected numbers; got 'abc'" in capsys.readouterr().err


# ---- quantiles, comparisons, a release's figures ------------------------------------------------
def test_quantiles_with_rule_and_interval(export, capsys):
    table = run(
        capsys, "estimate", str(export), *EXPORT_DESIGN, "--quantile", "score_time",
        "--q", "0.25", "--q", "0.75", "--qrule", "hf7", "--quantile-method", "beta",
        "--by", "agency",
    )  # fmt: skip
    expected = export_design(export).quantile(
        "score_time", [0.25, 0.75], by="agency", qrule="hf7", method="beta"
    )
    assert table.columns[:4].tolist() == ["statistic", "variable", "agency", "q"]
    np.testing.assert_allclose(table["estimate"], expected["estimate"], rtol=1e-12)
    np.testing.assert_allclose(table["ci_high"], expected["ci_high"], rtol=1e-12)
    assert set(table["statistic"]) == {"quantile"}


def test_compare_domains_and_contrasts(export, capsys):
    design = export_design(export)
    table = run(capsys, "compare", str(export), *EXPORT_DESIGN, "--mean", "index", "--by",
                "agency", "--dropna")  # fmt: skip
    expected = compare_domains(design, "mean", "index", "agency", dropna=True)
    np.testing.assert_allclose(table["se"], expected["se"], rtol=1e-12)
    assert table.columns.tolist()[:4] == ["agency", "estimate", "reference", "difference"]
    table = run(capsys, "compare", str(export), *EXPORT_DESIGN, "--proportion", "satisfied",
                "--by", "agency", "--contrast", "AG0 - AG1=AG0:1,AG1:-1")  # fmt: skip
    joint = joint_estimates(design, "proportion", "satisfied", by="agency")
    expected = joint.contrast({"AG0 - AG1": {"AG0": 1, "AG1": -1}})
    assert table["contrast"].tolist() == ["AG0 - AG1"]
    assert table["se"].iloc[0] == pytest.approx(expected["se"].iloc[0], rel=1e-12)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["compare", "--mean", "index", "--by", "agency", "--contrast", "x=AG0"],
         "expected LABEL:COEF terms"),
        (["compare", "--mean", "index", "--by", "agency", "--contrast", "x=AG0:one"],
         "is not a number"),
        (["compare", "--mean", "index", "--by", "agency", "--contrast", "x=AG9:1", "--dropna"],
         "no estimate labelled 'AG9'"),
        (["compare", "--by", "agency"], "give one of --mean COLUMN or --proportion COLUMN"),
        (["estimate", "--mean", "index", "--rules", "r.json"], "give --frame-counts too"),
    ],
)
def test_compare_and_rules_mistakes_are_one_line(export, capsys, arguments, message):
    command, *rest = arguments
    assert main([command, str(export), *EXPORT_DESIGN, *rest]) == 2
    err = capsys.readouterr().err
    assert err.startswith("analysis: error: ") and message in err, err
    assert err.count("\n") == 1


@pytest.fixture(scope="module")
def release_files(tmp_path_factory) -> tuple[Path, Path]:
    """An export and its frame counts in the service's layout (as tests/analysis/test_release)."""
    from tests.analysis.test_release import make_export

    responses, frame_counts = make_export()
    folder = tmp_path_factory.mktemp("release")
    responses.to_csv(folder / "responses.csv", index=False)
    frame_counts.to_csv(folder / "responses.frame_counts.csv", index=False)
    return folder / "responses.csv", folder / "responses.frame_counts.csv"


@pytest.mark.parametrize(
    ("level", "by"),
    [("national", []), ("agency", ["agency"]), ("agency_province", ["agency", "province"])],
)
def test_frame_counts_reproduce_the_release(release_files, capsys, level, by):
    from analysis.release import compute_release
    from tests.analysis.test_release import make_export

    published = compute_release(*make_export()).estimates
    responses, frame_counts = release_files
    arguments = ["estimate", str(responses), "--frame-counts", str(frame_counts),
                 "--mean", "index", "--proportion", "satisfied"]  # fmt: skip
    for column in by:
        arguments += ["--by", column]
    table = run(capsys, *arguments)
    table = table.assign(measure=table["variable"]).fillna({c: "" for c in by})
    expected = published[(published["level"] == level) & (published["n"] > 0)]
    merged = expected.merge(table, on=["measure", *by], suffixes=("", "_cli"), validate="1:1")
    assert len(merged) == len(expected) == len(table)
    for column in ("estimate", "se", "ci_low", "ci_high", "df", "cv"):
        np.testing.assert_allclose(
            merged[f"{column}_cli"], merged[column], rtol=1e-9, equal_nan=True, err_msg=column
        )
    assert (merged["n_cli"] == merged["n"]).all()
    assert (merged["grade_cli"] == merged["grade"]).all()
    assert (merged["suppressed_cli"] == merged["suppressed"]).all()
    if level == "agency":
        pos = table[(table["agency"] == "POS") & (table["variable"] == "index")].iloc[0]
        assert pos["suppressed"] and pos["grade"] == "suppressed" and np.isnan(pos["estimate"])


def test_frame_counts_take_a_release_s_rules(release_files, capsys, tmp_path):
    responses, frame_counts = release_files
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(json.dumps({"min_n": 5, "a_min_n": 5, "min_effective_n": 5})))
    table = run(capsys, "estimate", str(responses), "--frame-counts", str(frame_counts),
                "--mean", "index", "--by", "agency", "--rules", str(rules))  # fmt: skip
    assert not table.loc[table["agency"] == "POS", "suppressed"].iloc[0]  # 12 responses >= 5
    rules.write_text('{"min_n": 5, "colour": "red"}')
    assert main(["estimate", str(responses), "--frame-counts", str(frame_counts), "--mean",
                 "index", "--rules", str(rules)]) == 2  # fmt: skip
    assert "expected an object with keys among" in capsys.readouterr().err
    assert main(["estimate", str(responses), "--frame-counts", str(frame_counts), "--mean",
                 "index", "--weights", "weight"]) == 2  # fmt: skip
    assert "drop --weights" in capsys.readouterr().err
