"""The questionnaire schema: typed, immutable pydantic models, validated on construction.

Structural rules (field types, required fields, translations) are pydantic's; the rules that
need the whole questionnaire (ids unique, conditions on earlier items, SMS and scoring rules)
live in :mod:`questionnaires.rules` and run in :class:`Questionnaire`'s validator, which raises
:class:`~questionnaires.errors.QuestionnaireError` with every problem found.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from questionnaires.conditions import Condition
from questionnaires.errors import QuestionnaireError

ID_PATTERN = r"^[a-z][a-z0-9_-]*$"
Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=64)]
Translation = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

#: Languages every text must have, Persian first.
LANGUAGES: tuple[str, ...] = ("fa", "en")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Frozen):
    """A text in Persian (``fa``) and English (``en``); both are required."""

    fa: Translation
    en: Translation

    def __getitem__(self, lang: str) -> str:
        if lang not in LANGUAGES:
            raise KeyError(f"language {lang!r}: expected one of {', '.join(LANGUAGES)}")
        return str(getattr(self, lang))


class Ends(_Frozen):
    """Labels of the two ends of a scale (likert5: 1 and 5; rating0_10: 0 and 10)."""

    low: Text
    high: Text


class Choice(_Frozen):
    """One choice of a single_choice/multi_choice item: a stored code and its label."""

    code: Annotated[StrictInt, Field(ge=0, le=99)]
    label: Text


class ItemType(StrEnum):
    """The supported item types."""

    likert5 = "likert5"
    rating0_10 = "rating0_10"
    yes_no = "yes_no"
    single_choice = "single_choice"
    multi_choice = "multi_choice"
    text = "text"


#: Stored codes of ``yes_no`` items (1 and 2 so that SMS replies are the same digits).
YES, NO = 1, 2
#: Item types whose answers map to 0-100 and may enter the index.
SCOREABLE_TYPES = frozenset({ItemType.likert5, ItemType.rating0_10, ItemType.yes_no})


class Item(_Frozen):
    """One question. Which optional fields apply depends on ``type`` (see docs)."""

    id: Identifier
    type: ItemType
    text: Text
    ends: Ends | None = None
    choices: tuple[Choice, ...] | None = None
    max_length: Annotated[StrictInt, Field(ge=1, le=5000)] | None = None
    required: StrictBool = False
    not_applicable: StrictBool = False
    condition: Condition | None = None

    @property
    def codes(self) -> tuple[int, ...]:
        """The valid stored codes (empty for text items)."""
        if self.type is ItemType.likert5:
            return (1, 2, 3, 4, 5)
        if self.type is ItemType.rating0_10:
            return tuple(range(11))
        if self.type is ItemType.yes_no:
            return (YES, NO)
        if self.choices is not None:
            return tuple(c.code for c in self.choices)
        return ()

    @property
    def sms_answerable(self) -> bool:
        """True when one digit answers this item (likert5, yes_no, single_choice 1-9)."""
        if self.type in (ItemType.likert5, ItemType.yes_no):
            return True
        if self.type is ItemType.single_choice and self.choices:
            return all(1 <= c.code <= 9 for c in self.choices)
        return False


class IndexItem(_Frozen):
    """One item of the satisfaction index and its weight."""

    item: str
    weight: Annotated[float, Field(gt=0, le=100)] = 1.0


class Scoring(_Frozen):
    """How answers become the 0-100 index and the satisfied flag (see scoring.py)."""

    index: Annotated[tuple[IndexItem, ...], Field(min_length=1)]
    min_items: Annotated[StrictInt, Field(ge=1)] = 1
    satisfied: Condition | None = None


class Questionnaire(_Frozen):
    """A complete, validated, immutable questionnaire version."""

    id: Identifier
    version: Annotated[StrictInt, Field(ge=1)]
    title: Text
    intro: Text
    items: Annotated[tuple[Item, ...], Field(min_length=1)]
    sms: tuple[str, ...] = ()
    scoring: Scoring

    @model_validator(mode="after")
    def _whole_questionnaire_rules(self) -> Questionnaire:
        from questionnaires.rules import find_problems  # rules imports this module

        problems = find_problems(
            list(self.items), [i.id for i in self.items], self.sms, self.scoring
        )
        if problems:
            # Not a ValueError: pydantic lets it through unchanged, problems and all.
            raise QuestionnaireError(problems)
        return self

    # -- lookups ---------------------------------------------------------------------------
    def item(self, item_id: str) -> Item:
        """The item with this id; KeyError naming the known ids otherwise."""
        for item in self.items:
            if item.id == item_id:
                return item
        known = ", ".join(i.id for i in self.items)
        raise KeyError(f"questionnaire {self.id!r} has no item {item_id!r} (items: {known})")

    @property
    def sms_items(self) -> tuple[Item, ...]:
        """The SMS form's items, in the order they are asked."""
        return tuple(self.item(i) for i in self.sms)

    def visible_items(self, answers: Mapping[str, Any] | None = None) -> tuple[Item, ...]:
        """Items to show given the answers so far: those without a condition or whose holds."""
        given = answers or {}
        return tuple(i for i in self.items if i.condition is None or i.condition.holds(given))

    # -- versioning ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-compatible dict; ``from_dict(q.to_dict()) == q``."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, file: str = "") -> Questionnaire:
        """Validate a dict; raises QuestionnaireError listing every problem."""
        from questionnaires.loading import build

        return build(data, file=file)

    def content_hash(self) -> str:
        """sha256 (hex) of the canonical JSON: sorted keys, defaults and empty fields left out.

        Equal questionnaires have equal hashes; leaving defaults out keeps the hash of an old
        file stable when a later release adds an optional field.
        """
        content = self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
