"""Display conditions and the ``satisfied`` rule: a small, structured, safe expression language.

A condition is data, never code: nothing is ever ``eval``-ed. Two shapes::

    {item: q_outcome, op: in, values: [1, 2]}          # one comparison on an earlier answer
    {all: [<condition>, ...]}  /  {any: [<condition>, ...]}

Operators: ``eq``, ``ne``, ``ge``, ``gt``, ``le``, ``lt`` (with ``value``), ``in``, ``not_in``
(with ``values``) and ``answered`` (no value). A comparison on a missing or not-applicable
answer is *false* whatever the operator (also ``ne`` and ``not_in``): an item that depends on
an unanswered question stays hidden. ``answered`` is true for any real answer, false for
missing and not applicable. On ``multi_choice`` answers ``in`` means "any of these chosen" and
``not_in`` "none of these chosen".
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

#: The stored answer that means "not applicable" (a string, so it never collides with a code).
NOT_APPLICABLE = "na"


class Op(StrEnum):
    """Comparison operators of a condition."""

    eq = "eq"
    ne = "ne"
    ge = "ge"
    gt = "gt"
    le = "le"
    lt = "lt"
    in_ = "in"
    not_in = "not_in"
    answered = "answered"


SINGLE_VALUE_OPS = frozenset({Op.eq, Op.ne, Op.ge, Op.gt, Op.le, Op.lt})
LIST_OPS = frozenset({Op.in_, Op.not_in})


class Condition(BaseModel):
    """One comparison on an earlier answer, or an ``all``/``any`` group of conditions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: str | None = None
    op: Op | None = None
    value: StrictInt | None = None
    values: Annotated[tuple[StrictInt, ...], Field(min_length=1)] | None = None
    all: Annotated[tuple[Condition, ...], Field(min_length=1)] | None = None
    any: Annotated[tuple[Condition, ...], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> Condition:
        groups = [name for name in ("all", "any") if getattr(self, name) is not None]
        leaf = [
            name for name in ("item", "op", "value", "values") if getattr(self, name) is not None
        ]
        if groups and leaf:
            raise ValueError(f"a condition is either a comparison or '{groups[0]}', not both")
        if len(groups) > 1:
            raise ValueError("a condition has either 'all' or 'any', not both")
        if groups:
            return self
        if self.item is None or self.op is None:
            raise ValueError("a comparison needs 'item' and 'op' (or use 'all'/'any')")
        if self.op in SINGLE_VALUE_OPS and (self.value is None or self.values is not None):
            raise ValueError(f"operator '{self.op}' needs one 'value' (a whole number)")
        if self.op in LIST_OPS and (self.values is None or self.value is not None):
            raise ValueError(f"operator '{self.op}' needs 'values' (a list of whole numbers)")
        if self.op is Op.answered and (self.value is not None or self.values is not None):
            raise ValueError("operator 'answered' takes no value")
        return self

    def leaves(self) -> Iterator[Condition]:
        """Every single comparison inside this condition, in order."""
        parts = self.all if self.all is not None else self.any
        if parts is None:
            yield self
            return
        for part in parts:
            yield from part.leaves()

    def referenced_items(self) -> list[str]:
        """Item ids this condition reads, in order of first mention."""
        seen: dict[str, None] = {}
        for leaf in self.leaves():
            seen[str(leaf.item)] = None
        return list(seen)

    def holds(self, answers: Mapping[str, Any]) -> bool:
        """Evaluate against one response's answers (item id -> stored answer)."""
        if self.all is not None:
            return all(part.holds(answers) for part in self.all)
        if self.any is not None:
            return any(part.holds(answers) for part in self.any)
        chosen = answer_codes(answers.get(str(self.item)))
        if chosen is None:
            return False
        if self.op is Op.answered:
            return True
        if self.op is Op.in_:
            return bool(chosen & set(self.values or ()))
        if self.op is Op.not_in:
            return not (chosen & set(self.values or ()))
        if len(chosen) != 1:
            return False
        (code,) = chosen
        return _compare(self.op, code, int(self.value or 0))

    def mask(self, answers: pd.DataFrame) -> pd.Series:
        """Vectorised :meth:`holds` over many responses (columns are item ids)."""
        if self.all is not None or self.any is not None:
            parts = [part.mask(answers) for part in (self.all or self.any or ())]
            combined = np.logical_and.reduce if self.all is not None else np.logical_or.reduce
            return pd.Series(combined([p.to_numpy() for p in parts]), index=answers.index)
        item = str(self.item)
        if item not in answers.columns:
            return pd.Series(False, index=answers.index)
        column = answers[item]
        numeric = numeric_answers(column)
        present = numeric.notna()
        if self.op is Op.answered:
            return present | text_present(column)
        if self.op in LIST_OPS:
            values = list(self.values or ())
            if column.map(lambda v: isinstance(v, str) and " " in v.strip()).any():
                hit = column.map(lambda v: bool((answer_codes(v) or set()) & set(values)))
                hit = hit.astype(bool) & column.map(lambda v: answer_codes(v) is not None)
            else:
                hit = numeric.isin(values) & present
            return hit if self.op is Op.in_ else (~hit & (present | text_present(column)))
        result = _compare(self.op, numeric, int(self.value or 0))
        return pd.Series(np.asarray(result, dtype=bool) & present.to_numpy(), index=answers.index)


def _compare(op: Op | None, left: Any, right: int) -> Any:
    if op is Op.eq:
        return left == right
    if op is Op.ne:
        return left != right
    if op is Op.ge:
        return left >= right
    if op is Op.gt:
        return left > right
    if op is Op.le:
        return left <= right
    if op is Op.lt:
        return left < right
    raise ValueError(f"operator {op!r} is not a comparison")


def is_missing(value: Any) -> bool:
    """True for no answer: None, NaN/NA, or an empty string."""
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def answer_codes(value: Any) -> set[int] | None:
    """The whole-number codes of one stored answer; None when missing or not applicable.

    Accepts an int (or integral float), a digit string, a space-separated string of codes
    (how ``multi_choice`` answers are stored, as in ODK) or a list/tuple/set of codes.
    Free text that is not a code gives an empty set (answered, but matches no code).
    """
    if is_missing(value) or value == NOT_APPLICABLE:
        return None
    if isinstance(value, bool):
        return {int(value)}
    if isinstance(value, int | np.integer):
        return {int(value)}
    if isinstance(value, float | np.floating):
        return {int(value)} if float(value).is_integer() else set()
    if isinstance(value, list | tuple | set | frozenset):
        return {int(v) for v in value if str(v).strip().lstrip("-").isdigit()}
    parts = str(value).split()
    if parts and all(p.lstrip("-").isdigit() for p in parts):
        return {int(p) for p in parts}
    return set()


def numeric_answers(column: pd.Series) -> pd.Series:
    """A float column: the numeric answer, NaN for missing, not applicable and non-numbers."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return column.astype("float64")
    return pd.to_numeric(column.where(column != NOT_APPLICABLE), errors="coerce").astype("float64")


def text_present(column: pd.Series) -> pd.Series:
    """True where a column holds a non-empty answer other than not applicable (vectorised)."""
    present = column.notna()
    if pd.api.types.is_numeric_dtype(column.dtype):
        return present
    stripped = column.astype("string").str.strip()
    real = stripped.ne("") & stripped.ne(NOT_APPLICABLE)
    return (present & real.fillna(False).astype(bool)).astype(bool)
