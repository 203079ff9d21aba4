"""Turning stored answers into 0-100 item scores, the satisfaction index and ``satisfied``.

Pure and vectorised: one call scores any number of responses. Conventions (also in
docs/questionnaires.md):

* answers: one row per response, one column per item id; a missing answer is NaN/None/"";
  "not applicable" is the string ``"na"`` (:data:`NOT_APPLICABLE`).
* item scores: likert5 1..5 -> 0, 25, 50, 75, 100; rating0_10 0..10 -> 0..100 (x10);
  yes_no 1 (yes) -> 100, 2 (no) -> 0. Every likert5, rating0_10 and yes_no item of the
  questionnaire gets a ``score_<item id>`` column, whether or not it is in the index.
* missing and not-applicable answers have no score (NaN) and are left out of the index.
* index = weighted mean of the available index item scores when at least
  ``scoring.min_items`` index items have a score, else NaN.
* satisfied = 1 where ``scoring.satisfied`` holds, 0 where it does not, NaN where an item it
  reads is missing or not applicable (NaN for every row when no rule is defined).
* values that are not a possible answer (7 on likert5, text on rating0_10, "na" on an item
  without ``not_applicable``) raise :class:`AnswerError`: never silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from questionnaires.conditions import NOT_APPLICABLE, numeric_answers, text_present
from questionnaires.errors import AnswerError
from questionnaires.schema import SCOREABLE_TYPES, Item, ItemType, Questionnaire

SCORE_PREFIX = "score_"


def item_scores(item: Item, answers: pd.Series) -> pd.Series:
    """0-100 scores of one scoreable item's answers (NaN for missing and not applicable)."""
    codes = _checked_codes(item, answers)
    if item.type is ItemType.likert5:
        scores = (codes - 1.0) * 25.0
    elif item.type is ItemType.rating0_10:
        scores = codes * 10.0
    elif item.type is ItemType.yes_no:
        scores = pd.Series(np.where(codes == 1, 100.0, 0.0), index=codes.index)
        scores = scores.where(codes.notna())
    else:
        raise AnswerError(f"item '{item.id}' is {item.type.value}, which has no 0-100 score")
    return scores.rename(SCORE_PREFIX + item.id)


def score(questionnaire: Questionnaire, answers: pd.DataFrame) -> pd.DataFrame:
    """Item scores, ``index`` (0-100) and ``satisfied`` (0/1/NaN) for every response.

    Returns a float DataFrame with the same index as ``answers``: one ``score_<item id>``
    column per likert5/rating0_10/yes_no item (questionnaire order), then ``index`` and
    ``satisfied``. Columns of ``answers`` that are not items are ignored; a missing column of
    an index item raises AnswerError (a typo must not silently empty the index).
    """
    if not isinstance(answers, pd.DataFrame):
        raise TypeError(f"answers must be a pandas DataFrame, got {type(answers).__name__}")
    rule = questionnaire.scoring
    needed = [entry.item for entry in rule.index]
    absent = [item_id for item_id in needed if item_id not in answers.columns]
    if absent:
        raise AnswerError(
            f"answers lack columns for index items {', '.join(absent)} "
            f"(questionnaire {questionnaire.id} v{questionnaire.version})"
        )
    empty = pd.Series(np.nan, index=answers.index, dtype="float64")
    columns: dict[str, pd.Series] = {}
    for item in questionnaire.items:
        if item.type in SCOREABLE_TYPES:
            column = answers[item.id] if item.id in answers.columns else empty
            columns[SCORE_PREFIX + item.id] = item_scores(item, column)

    matrix = np.column_stack([columns[SCORE_PREFIX + i].to_numpy() for i in needed])
    weights = np.array([entry.weight for entry in rule.index], dtype="float64")
    available = ~np.isnan(matrix)
    total = np.where(available, matrix, 0.0) @ weights
    weight_sum = available.astype("float64") @ weights
    enough = available.sum(axis=1) >= rule.min_items
    with np.errstate(invalid="ignore", divide="ignore"):
        index = np.where(enough, total / weight_sum, np.nan)

    result = pd.DataFrame(columns, index=answers.index, dtype="float64")
    result["index"] = index
    result["satisfied"] = _satisfied(questionnaire, answers)
    return result


def score_response(
    questionnaire: Questionnaire, answers: Mapping[str, Any]
) -> dict[str, float | None]:
    """:func:`score` for one response given as {item id: answer}; None where NaN."""
    frame = pd.DataFrame([dict(answers)])
    for entry in questionnaire.scoring.index:
        if entry.item not in frame.columns:
            frame[entry.item] = np.nan
    row = score(questionnaire, frame).iloc[0]
    return {str(name): (None if pd.isna(value) else float(value)) for name, value in row.items()}


def _satisfied(questionnaire: Questionnaire, answers: pd.DataFrame) -> np.ndarray:
    rule = questionnaire.scoring.satisfied
    if rule is None:
        return np.full(len(answers), np.nan)
    usable = np.ones(len(answers), dtype=bool)
    for item_id in rule.referenced_items():
        if item_id not in answers.columns:
            raise AnswerError(f"answers lack the column '{item_id}' that 'satisfied' reads")
        item = questionnaire.item(item_id)
        column = answers[item_id]
        if item.type in (ItemType.text, ItemType.multi_choice):
            usable &= text_present(column).to_numpy()
        else:
            usable &= _checked_codes(item, column).notna().to_numpy()
    holds = rule.mask(answers).to_numpy()
    return np.where(usable, holds.astype("float64"), np.nan)


def _checked_codes(item: Item, answers: pd.Series) -> pd.Series:
    """Numeric codes (NaN for missing/na), after refusing values that cannot be answers."""
    if pd.api.types.is_bool_dtype(answers.dtype):
        raise AnswerError(
            f"item '{item.id}': the column holds True/False, not answer codes {list(item.codes)}"
        )
    codes = numeric_answers(answers)
    given = text_present(answers)
    is_na = answers.eq(NOT_APPLICABLE) if not pd.api.types.is_numeric_dtype(answers.dtype) else None
    if is_na is not None and not item.not_applicable and bool(is_na.any()):
        rows = list(answers.index[is_na.fillna(False).to_numpy(dtype=bool)][:5])
        raise AnswerError(
            f"item '{item.id}': answer {NOT_APPLICABLE!r} (not applicable) is not offered "
            f"by this item (rows {rows})"
        )
    valid = codes.isin(list(item.codes))
    bad = (given | codes.notna()) & ~valid
    if bool(bad.any()):
        rows = list(answers.index[bad.to_numpy(dtype=bool)][:5])
        values = sorted({repr(v) for v in answers[bad].head(5)})
        raise AnswerError(
            f"item '{item.id}' ({item.type.value}): {int(bad.sum())} answer(s) are not possible "
            f"codes {list(item.codes)}: {', '.join(values)} (rows {rows})"
        )
    return codes
