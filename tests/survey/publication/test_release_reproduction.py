"""Anyone with the export can reproduce a published release: `survey export responses` gives
the period's responses and frame counts, `python -m analysis estimate --frame-counts` weights
them as the release did and prints the published figures, suppressed ones marked."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main as analysis_main
from survey.config import Settings
from survey.context import AppContext
from tests.survey.admin_builders import run, use_test_database
from tests.survey.release_builders import release_world


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, migrated_settings: Settings) -> None:
    use_test_database(monkeypatch, migrated_settings)


def _analysis(capsys: pytest.CaptureFixture[str], *argv: str) -> pd.DataFrame:
    code = analysis_main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return pd.read_csv(io.StringIO(captured.out), keep_default_na=False, na_values=[""])


LEVELS = {"national": [], "agency": ["agency"], "agency_province": ["agency", "province"]}


def test_analysis_estimate_reproduces_the_published_figures(
    capsys: pytest.CaptureFixture[str], context: AppContext, tmp_path: Path
) -> None:
    release_world(context)
    assert run(capsys, "releases", "create", "--period", "1405-01")[0] == 0
    assert run(capsys, "releases", "publish", "1")[0] == 0
    code, _, err = run(capsys, "releases", "files", "1", "--out", str(tmp_path / "open"))
    assert code == 0, err
    published = pd.read_csv(
        tmp_path / "open" / "release-1-1405-01-estimates.csv",
        keep_default_na=False,
        na_values=[""],
        dtype={"agency": str, "province": str},
    )
    export = tmp_path / "responses.csv"
    code, _, err = run(
        capsys, "export", "responses", "--from", "1405-01-01", "--to", "1405-01-31",
        "--out", str(export),
    )  # fmt: skip
    assert code == 0, err
    frame_counts = tmp_path / "responses.frame_counts.csv"
    for level, by in LEVELS.items():
        arguments = ["estimate", str(export), "--frame-counts", str(frame_counts),
                     "--mean", "index", "--proportion", "satisfied"]  # fmt: skip
        for column in by:
            arguments += ["--by", column]
        ours = _analysis(capsys, *arguments).rename(columns={"variable": "measure"})
        expected = published[(published["level"] == level) & (published["n"] > 0)]
        merged = expected.merge(ours.astype({c: str for c in by}), on=["measure", *by],
                                suffixes=("", "_cli"), validate="1:1")  # fmt: skip
        assert len(merged) == len(expected) == len(ours) > 0, level
        for column in ("estimate", "se", "ci_low", "ci_high", "df", "cv"):
            np.testing.assert_allclose(
                merged[f"{column}_cli"], merged[column], rtol=1e-9, equal_nan=True,
                err_msg=f"{level} {column}",
            )  # fmt: skip
        assert (merged["n_cli"] == merged["n"]).all()
        assert (merged["grade_cli"] == merged["grade"]).all()
        assert (merged["suppressed_cli"] == merged["suppressed"]).all()
        hidden = merged["suppressed"]
        assert merged.loc[hidden, "estimate_cli"].isna().all()
        assert merged.loc[~hidden, "estimate_cli"].notna().all()
        if level == "agency_province":  # cells of 20 responses are below the minimum of 30
            assert hidden.any() and not hidden.all()
