"""docs/questionnaires.md stays true: its example validates and every problem code is listed."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from questionnaires import PROBLEM_CODES, loads_yaml, score

DOC = Path(__file__).resolve().parents[2] / "docs" / "questionnaires.md"


@pytest.fixture(scope="module")
def text() -> str:
    return DOC.read_text(encoding="utf-8")


def test_example_validates_and_scores_as_documented(text):
    block = re.search(r"## A complete example\n\n```yaml\n(.*?)```", text, re.DOTALL)
    assert block is not None
    questionnaire = loads_yaml(block.group(1), file="example")
    assert questionnaire.id == "library-visit"
    answers = pd.DataFrame({"q_overall": [3], "q_found": [2], "q_staff": ["na"]})
    assert score(questionnaire, answers)["index"].iloc[0] == pytest.approx(100 / 3)


def test_every_problem_code_is_documented(text):
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, re.MULTILINE))
    assert set(PROBLEM_CODES) <= documented
