"""Shared builders: a small valid questionnaire as a dict, written to real files."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

BASE: dict[str, Any] = {
    "id": "test-form",
    "version": 1,
    "title": {"fa": "آزمون", "en": "Test"},
    "intro": {"fa": "سلام", "en": "Hello"},
    "items": [
        {
            "id": "q_overall",
            "type": "likert5",
            "required": True,
            "text": {"fa": "چقدر راضی هستید؟", "en": "How satisfied are you?"},
            "ends": {
                "low": {"fa": "خیلی ناراضی", "en": "Very dissatisfied"},
                "high": {"fa": "خیلی راضی", "en": "Very satisfied"},
            },
        },
        {
            "id": "q_outcome",
            "type": "single_choice",
            "text": {"fa": "نتیجه چه شد؟", "en": "What was the outcome?"},
            "choices": [
                {"code": 1, "label": {"fa": "انجام شد", "en": "Done"}},
                {"code": 2, "label": {"fa": "انجام نشد", "en": "Not done"}},
            ],
        },
        {
            "id": "q_why",
            "type": "text",
            "max_length": 200,
            "text": {"fa": "چرا؟", "en": "Why?"},
            "condition": {"item": "q_outcome", "op": "eq", "value": 2},
        },
        {
            "id": "q_recommend",
            "type": "rating0_10",
            "not_applicable": True,
            "text": {"fa": "توصیه می‌کنید؟", "en": "Would you recommend it?"},
        },
        {
            "id": "q_staffed",
            "type": "yes_no",
            "text": {"fa": "کسی بود؟", "en": "Was someone there?"},
        },
    ],
    "sms": ["q_overall", "q_outcome"],
    "scoring": {
        "index": [
            {"item": "q_overall", "weight": 2},
            {"item": "q_recommend"},
            {"item": "q_staffed"},
        ],
        "min_items": 2,
        "satisfied": {"item": "q_overall", "op": "ge", "value": 4},
    },
}


@pytest.fixture
def base() -> dict[str, Any]:
    """A fresh deep copy of a small valid questionnaire."""
    return copy.deepcopy(BASE)


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[Any, str], Path]:
    """Write data (dict -> YAML, str -> as is) to a file in tmp_path and return its path."""

    def write(data: Any, name: str = "form.yaml") -> Path:
        path = tmp_path / name
        text = (
            data
            if isinstance(data, str)
            else yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
        )
        path.write_text(text, encoding="utf-8")
        return path

    return write
