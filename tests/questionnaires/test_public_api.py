"""The package's public surface is exactly ``__all__`` (as httpx checks its own)."""

from __future__ import annotations

import re
import types
from pathlib import Path

import questionnaires


def test_all_names_exist():
    for name in questionnaires.__all__:
        assert hasattr(questionnaires, name), name


def test_all_is_complete():
    public = {
        name
        for name, value in vars(questionnaires).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    public.discard("annotations")
    assert public == set(questionnaires.__all__)


def test_required_names_are_exported():
    required = {
        "Questionnaire",
        "Item",
        "load",
        "load_library",
        "library_path",
        "QuestionnaireError",
        "Problem",
        "score",
        "render_form",
        "sms_prompt",
        "read_xlsform",
        "write_xlsform",
    }
    assert required <= set(questionnaires.__all__)


def test_imports_nothing_of_survey_or_analysis():
    package = Path(questionnaires.__file__).parent
    forbidden = re.compile(r"^\s*(from|import)\s+(survey|analysis)\b", re.MULTILINE)
    sources = sorted(package.rglob("*.py"))
    assert len(sources) > 5
    for source in sources:
        assert not forbidden.search(source.read_text(encoding="utf-8")), source
