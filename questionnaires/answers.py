"""Reading what a citizen sent (web form fields, an SMS digit) into stored answers.

Stored answers are what :func:`questionnaires.score` and the export expect: an int code for
scale and choice items, ``"na"`` for not applicable, codes joined by spaces for
``multi_choice`` (``"1 3"``, ascending), the stripped text for ``text`` items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from questionnaires.conditions import NOT_APPLICABLE
from questionnaires.errors import AnswerError
from questionnaires.phrases import check_lang, phrases
from questionnaires.schema import Item, ItemType, Questionnaire

# Persian (U+06F0..) and Arabic-Indic (U+0660..) digits read as Latin digits.
_DIGITS = str.maketrans(
    "".join(chr(0x06F0 + d) for d in range(10)) + "".join(chr(0x0660 + d) for d in range(10)),
    "0123456789" * 2,
)

Raw = str | Sequence[str] | None


def parse_answer(item: Item, raw: Raw) -> int | str | None:
    """One item's stored answer from raw input; None when nothing was given.

    Raises AnswerError (``reason`` "invalid" or "too_long") for input that is not a possible
    answer. Persian and Arabic-Indic digits count as digits.
    """
    values = [raw] if raw is None or isinstance(raw, str) else list(raw)
    texts = [str(v).strip() for v in values if v is not None and str(v).strip()]
    if not texts:
        return None
    if item.type is ItemType.text:
        text = " ".join(texts) if len(texts) > 1 else texts[0]
        if item.max_length is not None and len(text) > item.max_length:
            raise AnswerError(
                f"item '{item.id}': {len(text)} characters, at most {item.max_length} allowed",
                reason="too_long",
            )
        return text
    if item.type is ItemType.multi_choice:
        parts = [p for t in texts for p in t.translate(_DIGITS).replace(",", " ").split()]
        return " ".join(str(c) for c in sorted({_code(item, p) for p in parts}))
    if len(texts) > 1:
        raise AnswerError(f"item '{item.id}' takes one answer, got {len(texts)}")
    text = texts[0].translate(_DIGITS)
    if text.lower() == NOT_APPLICABLE:
        if not item.not_applicable:
            raise AnswerError(f"item '{item.id}' does not offer 'not applicable'")
        return NOT_APPLICABLE
    return _code(item, text)


def _code(item: Item, text: str) -> int:
    if not text.isdecimal() or int(text) not in item.codes:
        allowed = ", ".join(str(c) for c in item.codes)
        raise AnswerError(f"item '{item.id}': {text!r} is not one of its codes ({allowed})")
    return int(text)


@dataclass(frozen=True, slots=True)
class FormAnswers:
    """Answers read from a submitted form, and citizen-facing messages by item id."""

    answers: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_form(
    questionnaire: Questionnaire,
    form: Mapping[str, Raw],
    lang: str,
    *,
    final: bool = False,
) -> FormAnswers:
    """Read a submitted web form (field name = item id) into stored answers.

    Items are read in order, so a display condition sees the answers read before it; items
    hidden by their condition are dropped even if the browser sent them. With ``final`` a
    required visible item without an answer is an error (leave it False to save a half-done
    form). Messages are in ``lang`` and can go straight into ``render_form(errors=...)``.
    """
    check_lang(lang)
    words = phrases(lang)
    answers: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for item in questionnaire.items:
        if item.condition is not None and not item.condition.holds(answers):
            continue
        try:
            value = parse_answer(item, form.get(item.id))
        except AnswerError as exc:
            key = "error_too_long" if exc.reason == "too_long" else "error_invalid"
            errors[item.id] = words[key].format(n=item.max_length)
            continue
        if value is None:
            if final and item.required:
                errors[item.id] = words["error_required"]
            continue
        answers[item.id] = value
    return FormAnswers(answers, errors)
