"""Rules that need the whole questionnaire: unique ids, per-type fields, conditions on
earlier items, the SMS form and the scoring rule.

``find_problems`` works on partially parsed questionnaires too (``None`` for items that failed
structural validation), so a file with a bad item still gets every other problem reported.
"""

from __future__ import annotations

from collections.abc import Sequence

from questionnaires.conditions import LIST_OPS, Condition, Op
from questionnaires.errors import Problem
from questionnaires.schema import SCOREABLE_TYPES, Item, ItemType, Scoring

MAX_SMS_ITEMS = 3
CHOICE_TYPES = frozenset({ItemType.single_choice, ItemType.multi_choice})
NA_TYPES = frozenset(
    {ItemType.likert5, ItemType.rating0_10, ItemType.yes_no, ItemType.single_choice}
)


def _problem(code: str, item: str | None, message: str) -> Problem:
    return Problem(code=code, file="", item=item, row=None, message=message)


def find_problems(
    items: Sequence[Item | None],
    ids: Sequence[str | None],
    sms: Sequence[str] | None,
    scoring: Scoring | None,
) -> list[Problem]:
    """Every whole-questionnaire problem. ``ids[i]`` is item i's id even if ``items[i]`` is None."""
    problems: list[Problem] = []
    position: dict[str, int] = {}
    for index, item_id in enumerate(ids):
        if item_id is None:
            continue
        if item_id in position:
            problems.append(
                _problem(
                    "duplicate-id",
                    item_id,
                    f"id is already used by item number {position[item_id] + 1}; "
                    "every item needs its own id",
                )
            )
        else:
            position[item_id] = index
    parsed: dict[str, Item] = {}
    for item in items:
        if item is not None:
            parsed.setdefault(item.id, item)
    for index, item in enumerate(items):
        if item is None:
            continue
        problems += _type_problems(item)
        if item.condition is not None:
            problems += _condition_problems(item.condition, item.id, index, position, parsed)
    if sms is not None:
        problems += _sms_problems(sms, position, parsed)
    if scoring is not None:
        problems += _scoring_problems(scoring, position, parsed)
    return problems


def _type_problems(item: Item) -> list[Problem]:
    found: list[Problem] = []
    kind = item.type.value

    def need(ok: bool, message: str) -> None:
        if not ok:
            found.append(_problem("type-field", item.id, message))

    if item.type is ItemType.likert5:
        need(item.ends is not None, "likert5 items need 'ends' (labels of 1 and 5)")
    else:
        need(
            item.ends is None or item.type is ItemType.rating0_10,
            f"'ends' is only for likert5 and rating0_10 items, not {kind}",
        )
    if item.type in CHOICE_TYPES:
        need(
            item.choices is not None and len(item.choices) >= 2,
            f"{kind} items need 'choices' with at least 2 entries",
        )
        codes = [c.code for c in item.choices or ()]
        for code in sorted({c for c in codes if codes.count(c) > 1}):
            found.append(_problem("duplicate-choice", item.id, f"choice code {code} is used twice"))
    else:
        need(item.choices is None, f"'choices' is only for choice items, not {kind}")
    if item.type is ItemType.text:
        need(item.max_length is not None, "text items need 'max_length' (characters)")
    else:
        need(item.max_length is None, f"'max_length' is only for text items, not {kind}")
    if item.not_applicable and item.type not in NA_TYPES:
        found.append(
            _problem(
                "na-not-allowed",
                item.id,
                f"{kind} items cannot offer 'not applicable'; leave the item optional instead",
            )
        )
    return found


def _condition_problems(
    condition: Condition,
    owner: str | None,
    owner_index: int | None,
    position: dict[str, int],
    parsed: dict[str, Item],
    context: str = "condition",
) -> list[Problem]:
    found: list[Problem] = []
    for leaf in condition.leaves():
        ref = str(leaf.item)
        if ref not in position:
            found.append(
                _problem(
                    "condition-unknown-item",
                    owner,
                    f"{context} refers to '{ref}', which is not an item of this questionnaire",
                )
            )
            continue
        if owner_index is not None and position[ref] >= owner_index:
            later = "the item itself" if ref == owner else f"'{ref}', which comes later"
            found.append(
                _problem(
                    "condition-later-item",
                    owner,
                    f"{context} refers to {later}; conditions may only use earlier answers",
                )
            )
            continue
        target = parsed.get(ref)
        if target is None:
            continue
        found += _leaf_fits(leaf, target, owner, context)
    return found


def _leaf_fits(leaf: Condition, target: Item, owner: str | None, context: str) -> list[Problem]:
    kind = target.type.value
    op = leaf.op
    if target.type is ItemType.text and op is not Op.answered:
        return [
            _problem(
                "condition-op",
                owner,
                f"{context} uses '{op}' on text item '{target.id}'; only 'answered' applies",
            )
        ]
    if target.type is ItemType.multi_choice and op not in LIST_OPS | {Op.answered}:
        return [
            _problem(
                "condition-op",
                owner,
                f"{context} uses '{op}' on multi_choice item '{target.id}'; "
                "use 'in', 'not_in' or 'answered'",
            )
        ]
    values = list(leaf.values or ()) + ([leaf.value] if leaf.value is not None else [])
    ordered = op in (Op.ge, Op.gt, Op.le, Op.lt)
    codes = target.codes
    bad = [v for v in values if v not in codes and not (ordered and min(codes) <= v <= max(codes))]
    if bad:
        shown = ", ".join(str(c) for c in codes)
        return [
            _problem(
                "condition-value",
                owner,
                f"{context} compares '{target.id}' ({kind}) with {', '.join(map(str, bad))}, "
                f"which is not one of its codes ({shown})",
            )
        ]
    return []


def _sms_problems(
    sms: Sequence[str], position: dict[str, int], parsed: dict[str, Item]
) -> list[Problem]:
    found: list[Problem] = []
    if len(sms) > MAX_SMS_ITEMS:
        found.append(
            _problem(
                "sms-too-many",
                None,
                f"sms lists {len(sms)} items; at most {MAX_SMS_ITEMS} are allowed",
            )
        )
    seen: set[str] = set()
    for ref in sms:
        if ref in seen:
            found.append(_problem("sms-duplicate", None, f"sms lists '{ref}' twice"))
            continue
        seen.add(ref)
        if ref not in position:
            found.append(
                _problem("sms-unknown-item", None, f"sms lists '{ref}', which is not an item")
            )
            continue
        item = parsed.get(ref)
        if item is not None and not item.sms_answerable:
            found.append(
                _problem(
                    "sms-not-digit",
                    ref,
                    f"is in 'sms' but a {item.type.value} item cannot be answered by one digit "
                    "(use likert5, yes_no, or single_choice with codes 1-9)",
                )
            )
    return found


def _scoring_problems(
    scoring: Scoring, position: dict[str, int], parsed: dict[str, Item]
) -> list[Problem]:
    found: list[Problem] = []
    seen: set[str] = set()
    for entry in scoring.index:
        ref = entry.item
        if ref in seen:
            found.append(_problem("scoring-duplicate", ref, "appears twice in scoring.index"))
            continue
        seen.add(ref)
        if ref not in position:
            found.append(
                _problem(
                    "scoring-unknown-item",
                    None,
                    f"scoring.index names '{ref}', which is not an item",
                )
            )
            continue
        item = parsed.get(ref)
        if item is not None and item.type not in SCOREABLE_TYPES:
            found.append(
                _problem(
                    "scoring-item-type",
                    ref,
                    f"is in scoring.index but a {item.type.value} item has no 0-100 score "
                    "(use likert5, rating0_10 or yes_no)",
                )
            )
    if scoring.min_items > len(scoring.index):
        found.append(
            _problem(
                "scoring-min-items",
                None,
                f"scoring.min_items is {scoring.min_items} but the index has only "
                f"{len(scoring.index)} items",
            )
        )
    if scoring.satisfied is not None:
        found += _condition_problems(
            scoring.satisfied, None, None, position, parsed, context="scoring.satisfied"
        )
    return found
