"""The export is the contract with `analysis/`: its CSV goes straight into `SurveyDesign`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import analysis
from survey.context import AppContext
from survey.results.export import export_responses, write_export
from tests.survey.answer_builders import AnswerWorld

EDU = {"agency": "EDU", "service": "EDU-01", "channel": "online"}
TAX = {"agency": "TAX", "service": "TAX-01", "channel": "in_person"}


def test_analysis_reads_the_export_file(context: AppContext, tmp_path: Path) -> None:
    world = AnswerWorld(context)
    world.frame_count(**TAX, day=date(2026, 3, 8), eligible=300, sampled=30)
    world.frame_count(**EDU, day=date(2026, 3, 8), eligible=60, sampled=6)
    for cell, scores in ((TAX, (5, 4, 2, 1)), (EDU, (3, 5, 4))):
        for value in scores:
            answers = {"q_overall": value, "q_time": 4, "q_information": 3, "q_ease": 5}
            world.respond(world.invite(**cell), answers)
    path, _ = write_export(export_responses(context, date(2026, 3, 1), date(2026, 3, 20)),
                           tmp_path / "export.csv")  # fmt: skip
    df = pd.read_csv(path)
    design = analysis.SurveyDesign(df, weights="weight", strata="stratum", fpc="N_h")
    by_agency = design.mean("index", by="agency").set_index("agency")
    for agency in ("EDU", "TAX"):
        rows = df[df["agency"] == agency]
        assert by_agency.loc[agency, "estimate"] == pytest.approx(rows["index"].mean(), rel=1e-12)
    # Nationally, strata weigh by their frame counts: 300 TAX to 60 EDU.
    national = design.mean("index")
    tax, edu = (df[df["agency"] == a]["index"].mean() for a in ("TAX", "EDU"))
    assert float(national["estimate"].iloc[0]) == pytest.approx((300 * tax + 60 * edu) / 360)
    share = design.proportion("satisfied", by="agency").set_index("agency")
    assert share.loc["TAX", "estimate"] == pytest.approx(0.5)
    assert np.isfinite(share.loc["TAX", "se"])
