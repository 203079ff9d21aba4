"""Reading a submitted web form into stored answers, item by item, against the questionnaire.

Pure: the questionnaire and the form's values in, answers and problems out. The rules:

* only items *visible* under the answers given (display conditions, evaluated top to bottom,
  since a condition reads earlier items only) are kept; answers to hidden items are dropped;
* a choice item (likert5, rating0_10, yes_no, single_choice) takes one code of the item,
  or ``"na"`` where the item offers "does not apply"; multi_choice takes several codes,
  stored space-separated (``"1 3"``, as in ODK); a text item takes up to ``max_length``
  characters, whitespace trimmed; Persian and Arabic-Indic digits count as digits;
* a value that breaks a rule is not stored: the item keeps its previous answer and gets a
  problem code (``one_answer``, ``not_a_choice``, ``too_long``); on submit, a visible required
  item without an answer gets ``required``.

Problem *codes* come back, not sentences: the web layer words them in the citizen's language.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from questionnaires.conditions import NOT_APPLICABLE
from questionnaires.schema import Item, ItemType, Questionnaire
from survey.kernel.locale import fold_digits

__all__ = ["PROBLEM_CODES", "FormReading", "ItemProblem", "read_form"]

PROBLEM_CODES = ("required", "one_answer", "not_a_choice", "too_long")
CHOICE_TYPES = frozenset(
    {ItemType.likert5, ItemType.rating0_10, ItemType.yes_no, ItemType.single_choice}
)


@dataclass(frozen=True, slots=True)
class ItemProblem:
    """What is wrong with one item's answer: the item id and a code from PROBLEM_CODES."""

    item_id: str
    code: str


@dataclass(frozen=True, slots=True)
class FormReading:
    """The answers to store, what to show back on the page, and the problems found."""

    answers: dict[str, Any]
    shown: dict[str, Any]
    problems: tuple[ItemProblem, ...] = field(default_factory=tuple)


class _Refused(Exception):
    def __init__(self, code: str) -> None:
        self.code = code


def read_form(
    questionnaire: Questionnaire,
    form: Mapping[str, Sequence[str]],
    previous: Mapping[str, Any] | None = None,
    *,
    submit: bool = False,
) -> FormReading:
    """Merge a posted form into the stored answers `previous` (see the module docstring).

    `form` maps a field name to every value posted under it (checkboxes post several).
    Fields that are not items (the CSRF token, the button) are ignored.
    """
    before = dict(previous or {})
    answers: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    problems: list[ItemProblem] = []
    for item in questionnaire.items:
        if item.condition is not None and not item.condition.holds(answers):
            continue
        values = [str(v) for v in form.get(item.id, ())]
        try:
            value = _read_item(item, values)
        except _Refused as refused:
            problems.append(ItemProblem(item.id, refused.code))
            kept = before.get(item.id)
            if kept is not None:
                answers[item.id] = kept
            shown[item.id] = " ".join(values) if item.type is ItemType.text else kept
            continue
        if value is not None:
            answers[item.id] = value
            shown[item.id] = value
        elif submit and item.required:
            problems.append(ItemProblem(item.id, "required"))
    return FormReading(answers=answers, shown=shown, problems=tuple(problems))


def _read_item(item: Item, values: list[str]) -> Any:
    """The stored answer for one item's posted values (None for no answer)."""
    cleaned = [v.strip() for v in values if v.strip()]
    if item.type is ItemType.text:
        text = "\n".join(line.rstrip() for line in " ".join(values).strip().splitlines())
        text = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch) != "Cc")
        if not text:
            return None
        if item.max_length is not None and len(text) > item.max_length:
            raise _Refused("too_long")
        return text
    if not cleaned:
        return None
    if item.type in CHOICE_TYPES:
        if len(cleaned) > 1:
            raise _Refused("one_answer")
        return _code(item, cleaned[0])
    if NOT_APPLICABLE in cleaned:
        if len(cleaned) > 1 or not item.not_applicable:
            raise _Refused("not_a_choice")
        return NOT_APPLICABLE
    codes = sorted({_code(item, value) for value in cleaned})
    return " ".join(str(code) for code in codes)


def _code(item: Item, value: str) -> int | str:
    if value == NOT_APPLICABLE:
        if item.not_applicable:
            return NOT_APPLICABLE
        raise _Refused("not_a_choice")
    digits = fold_digits(value)
    if not digits.isdigit() or not digits.isascii():
        raise _Refused("not_a_choice")
    code = int(digits)
    if code not in item.codes:
        raise _Refused("not_a_choice")
    return code
