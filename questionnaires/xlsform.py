"""XLSForm (ODK/KoboToolbox spreadsheet) import and export, for the subset that maps.

Sheets: ``survey`` (one row per item), ``choices`` (choice lists), ``settings`` (one row).
Language columns are ``label::Persian (fa)`` and ``label::English (en)`` (``title::``/
``intro::`` in settings). Our conventions, also in docs/questionnaires.md:

* likert5    -> ``select_one likert5_<id>``: choices 1..5, labels of 1 and 5 are the ends.
* rating0_10 -> ``select_one rating0_10_<id>``: choices 0..10 (labels of 0 and 10 are the
  ends, or just the numbers when there are none). On import, ``integer`` with constraint
  ``. >= 0 and . <= 10`` and ``range`` with ``start=0 end=10`` are also rating0_10.
* yes_no     -> ``select_one yes_no`` (1 yes, 2 no; ``yes_no_na`` adds ``na``).
* single_choice / multi_choice -> ``select_one`` / ``select_multiple choices_<id>``; choice
  names are the whole-number codes.
* "not applicable" is a choice named ``na`` in the item's list.
* text -> ``text`` with constraint ``string-length(.) <= N`` (no constraint: N = 500).
* ``relevant`` <-> conditions (see :mod:`questionnaires.relevant`); ``required`` yes/no.
* settings: ``form_id``, ``version`` (a whole number), ``title::``/``intro::`` per language,
  ``sms`` (item names, space separated, in asking order), ``index`` (``name`` or
  ``name:weight``, space separated), ``min_items`` and ``satisfied`` (a relevant-style
  expression such as ``${q_overall} >= 4``).

Anything else (groups, notes, calculations, other types, other columns) is reported per row;
``skip_unsupported=True`` leaves such rows and cells out instead of failing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zipfile import BadZipFile

from openpyxl import Workbook, load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from questionnaires.errors import Problem, QuestionnaireError
from questionnaires.loading import build
from questionnaires.phrases import localise_digits, phrases
from questionnaires.relevant import RelevantSyntaxError, from_relevant, to_relevant
from questionnaires.schema import LANGUAGES, NO, YES, Item, ItemType, Questionnaire

LANGUAGE_NAMES = {"fa": "Persian (fa)", "en": "English (en)"}
DEFAULT_TEXT_LENGTH = 500
SURVEY_COLUMNS = ("type", "name", *(f"label::{LANGUAGE_NAMES[x]}" for x in LANGUAGES))
SURVEY_COLUMNS += ("required", "relevant", "constraint")
CHOICE_COLUMNS = ("list_name", "name", *(f"label::{LANGUAGE_NAMES[x]}" for x in LANGUAGES))
SETTINGS_COLUMNS = (
    "form_title",
    "form_id",
    "version",
    "default_language",
    *(f"title::{LANGUAGE_NAMES[x]}" for x in LANGUAGES),
    *(f"intro::{LANGUAGE_NAMES[x]}" for x in LANGUAGES),
    "sms",
    "index",
    "min_items",
    "satisfied",
)
NOT_APPLICABLE_NAME = "na"
_TEXT_CONSTRAINT = re.compile(r"^\s*string-length\(\s*\.\s*\)\s*<=\s*(\d+)\s*$")
_RATING_CONSTRAINT = re.compile(r"^\s*\.\s*>=\s*0\s+and\s+\.\s*<=\s*10\s*$")
_TRUE = {"yes", "true", "true()", "1"}
_FALSE = {"no", "false", "false()", "0", ""}
# Columns that carry no meaning for our schema but are harmless to ignore.
_IGNORED_COLUMNS = {"constraint_message", "required_message", "parameters"}


# -- export -----------------------------------------------------------------------------------
def write_xlsform(questionnaire: Questionnaire, path: str | Path) -> Path:
    """Write ``questionnaire`` as an XLSForm workbook; ``read_xlsform`` gives it back equal."""
    book = Workbook()
    survey = book.active
    survey.title = "survey"
    choices = book.create_sheet("choices")
    settings = book.create_sheet("settings")
    survey.append(SURVEY_COLUMNS)
    choices.append(CHOICE_COLUMNS)
    written_lists: set[str] = set()
    for item in questionnaire.items:
        list_name, rows = _choice_list(item)
        kind = {
            ItemType.multi_choice: f"select_multiple {list_name}",
            ItemType.text: "text",
        }.get(item.type, f"select_one {list_name}")
        constraint = f"string-length(.) <= {item.max_length}" if item.type is ItemType.text else ""
        survey.append(
            (
                kind,
                item.id,
                *(item.text[x] for x in LANGUAGES),
                "yes" if item.required else "",
                to_relevant(item.condition) if item.condition is not None else "",
                constraint,
            )
        )
        if list_name and list_name not in written_lists:
            written_lists.add(list_name)
            for name, labels in rows:
                choices.append((list_name, name, *labels))
    rule = questionnaire.scoring
    settings.append(SETTINGS_COLUMNS)
    settings.append(
        (
            questionnaire.title["fa"],
            questionnaire.id,
            str(questionnaire.version),
            LANGUAGE_NAMES["fa"],
            *(questionnaire.title[x] for x in LANGUAGES),
            *(questionnaire.intro[x] for x in LANGUAGES),
            " ".join(questionnaire.sms),
            " ".join(
                e.item if e.weight == 1 else f"{e.item}:{_number(e.weight)}" for e in rule.index
            ),
            str(rule.min_items),
            to_relevant(rule.satisfied) if rule.satisfied is not None else "",
        )
    )
    for sheet in (survey, choices, settings):
        for column in sheet.columns:
            width = max(len(str(cell.value or "")) for cell in column)
            sheet.column_dimensions[column[0].column_letter].width = min(60, max(10, width + 2))
    target = Path(path)
    book.save(target)
    return target


def _choice_list(item: Item) -> tuple[str, list[tuple[str, tuple[str, ...]]]]:
    """The list name and (name, labels per language) rows for one item ('' for text)."""
    rows: list[tuple[str, tuple[str, ...]]] = []
    if item.type is ItemType.text:
        return "", rows
    if item.type is ItemType.yes_no:
        name = "yes_no_na" if item.not_applicable else "yes_no"
        rows = [
            (str(YES), tuple(phrases(x)["yes"] for x in LANGUAGES)),
            (str(NO), tuple(phrases(x)["no"] for x in LANGUAGES)),
        ]
    elif item.type in (ItemType.likert5, ItemType.rating0_10):
        name = f"{item.type.value}_{item.id}"
        rows = [(str(c), tuple(localise_digits(str(c), x) for x in LANGUAGES)) for c in item.codes]
        if item.ends is not None:
            rows[0] = (rows[0][0], tuple(item.ends.low[x] for x in LANGUAGES))
            rows[-1] = (rows[-1][0], tuple(item.ends.high[x] for x in LANGUAGES))
    else:
        name = f"choices_{item.id}"
        rows = [(str(c.code), tuple(c.label[x] for x in LANGUAGES)) for c in item.choices or ()]
    if item.not_applicable:
        rows.append((NOT_APPLICABLE_NAME, tuple(phrases(x)["not_applicable"] for x in LANGUAGES)))
    return name, rows


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# -- import -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Row:
    number: int
    cells: dict[str, Any]

    def text(self, column: str) -> str:
        value = self.cells.get(column)
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()


@dataclass(frozen=True, slots=True)
class _ChoiceRow:
    row: int
    name: str
    labels: dict[str, str]


class _Reader:
    """Collects every problem of one workbook while building our questionnaire data."""

    def __init__(
        self, file: str, skip_unsupported: bool, on_skip: Callable[[Problem], None] | None
    ):
        self.file = file
        self.skip_unsupported = skip_unsupported
        self.on_skip = on_skip
        self.problems: list[Problem] = []
        self.item_rows: dict[str, int] = {}
        self.failed_items: set[str] = set()
        self.missing_columns: set[tuple[str, str]] = set()

    def problem(
        self, code: str, sheet: str | None, row: int | None, item: str | None, message: str
    ) -> None:
        self.problems.append(Problem(code, self.file, item, row, message, sheet=sheet))

    def unsupported(self, sheet: str, row: int, item: str | None, message: str, code: str) -> None:
        """Something with no equivalent: an error, or a notice when skipping is allowed."""
        found = Problem(code, self.file, item, row, message, sheet=sheet)
        if self.skip_unsupported:
            if self.on_skip is not None:
                self.on_skip(found)
        else:
            self.problems.append(found)


def read_xlsform(
    path: str | Path,
    *,
    skip_unsupported: bool = False,
    on_skip: Callable[[Problem], None] | None = None,
) -> Questionnaire:
    """Import an XLSForm workbook; QuestionnaireError lists every problem by sheet and row.

    With ``skip_unsupported`` rows and cells that have no equivalent in our schema (notes,
    groups, calculations, metadata, unknown columns) are left out and passed to ``on_skip``
    instead of failing the import. Everything else (bad codes, relevant expressions outside
    the subset, missing translations) is always an error.
    """
    path = Path(path)
    file = str(path)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (OSError, InvalidFileException, BadZipFile, KeyError, ValueError) as exc:
        raise QuestionnaireError(
            [Problem("file-unreadable", file, None, None, f"cannot open workbook: {exc}")]
        ) from None
    try:
        sheets = {name.strip().lower(): _rows(book[name]) for name in book.sheetnames}
        headers = {name.strip().lower(): _header(book[name]) for name in book.sheetnames}
    finally:
        book.close()
    reader = _Reader(file, skip_unsupported, on_skip)
    if "survey" not in sheets:
        reader.problem(
            "xlsform-missing-sheet", None, None, None, "the workbook has no 'survey' sheet"
        )
        raise QuestionnaireError(reader.problems)
    _check_columns(reader, headers)
    lists = _read_choices(reader, sheets.get("choices", []))
    data = _read_settings(reader, sheets.get("settings", []))
    data["items"] = _read_survey(reader, sheets["survey"], lists)
    try:
        questionnaire = build(data, file=file)
    except QuestionnaireError as exc:
        reader.problems += [
            _place(p, reader) for p in exc.problems if not _caused_by_skip(p, reader)
        ]
    if reader.problems:
        reader.problems.sort(
            key=lambda p: (
                {"settings": 0, "survey": 1, "choices": 2}.get(p.sheet or "", 3),
                p.row or 0,
            )
        )
        raise QuestionnaireError(reader.problems)
    return questionnaire


_REQUIRED_COLUMNS = {
    "survey": ("type", "name", *(f"label::{x}" for x in LANGUAGES)),
    "choices": ("list_name", "name", *(f"label::{x}" for x in LANGUAGES)),
    "settings": (
        "form_id",
        "version",
        *(f"{f}::{x}" for f in ("title", "intro") for x in LANGUAGES),
    ),
}


def _header(sheet: Any) -> list[str]:
    first = next(sheet.iter_rows(max_row=1, values_only=True), ())
    return [_column_name(h) for h in first if h not in (None, "")]


def _check_columns(reader: _Reader, headers: dict[str, list[str]]) -> None:
    """One problem per missing column, instead of one per row that lacks its value."""
    for sheet, required in _REQUIRED_COLUMNS.items():
        if sheet not in headers:
            continue
        for column in required:
            if column not in headers[sheet]:
                base, _, lang = column.partition("::")
                shown = f"{base}::{LANGUAGE_NAMES[lang]}" if lang else column
                found = ", ".join(headers[sheet]) or "none"
                reader.problem(
                    "xlsform-missing-column",
                    sheet,
                    1,
                    None,
                    f"the '{sheet}' sheet has no '{shown}' column (columns: {found})",
                )
                reader.missing_columns.add((sheet, column))
    known = set(_REQUIRED_COLUMNS["survey"]) | {"required", "relevant", "constraint"}
    for column in headers["survey"]:
        if column not in known | _IGNORED_COLUMNS:
            reader.unsupported(
                "survey",
                1,
                None,
                f"column '{column}' has no equivalent and is not imported",
                "xlsform-unsupported-column",
            )


def _rows(sheet: Any) -> list[_Row]:
    """Non-empty rows as {lower-cased header (label columns keep their case): value}."""
    rows = sheet.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        return []
    names = [_column_name(h) for h in header]
    found: list[_Row] = []
    for number, values in enumerate(rows, start=2):
        cells = {n: v for n, v in zip(names, values, strict=False) if n and v not in (None, "")}
        if cells:
            found.append(_Row(number, cells))
    return found


def _column_name(header: Any) -> str:
    text = str(header or "").strip()
    if "::" not in text:
        return text.lower()
    base, language = text.split("::", 1)
    return f"{base.strip().lower()}::{_language_code(language)}"


def _language_code(label: str) -> str:
    """'Persian (fa)' -> 'fa'; a bare code ('fa') stays; anything else is kept lower-cased."""
    match = re.search(r"\(([A-Za-z-]+)\)\s*$", label)
    return (match.group(1) if match else label.strip()).lower()


def _labels(reader: _Reader, row: _Row, sheet: str, base: str, item: str | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for lang in LANGUAGES:
        value = row.text(f"{base}::{lang}")
        if value:
            labels[lang] = value
        elif (sheet, f"{base}::{lang}") not in reader.missing_columns:
            reader.problem(
                "missing-translation",
                sheet,
                row.number,
                item,
                f"'{base}::{LANGUAGE_NAMES[lang]}' is empty",
            )
    return labels


def _read_choices(reader: _Reader, rows: list[_Row]) -> dict[str, list[_ChoiceRow]]:
    lists: dict[str, list[_ChoiceRow]] = {}
    for row in rows:
        list_name, name = row.text("list_name"), row.text("name")
        if not list_name or not name:
            reader.problem(
                "xlsform-missing-column",
                "choices",
                row.number,
                None,
                "a choice needs both 'list_name' and 'name'",
            )
            continue
        labels = _labels(reader, row, "choices", "label", None)
        lists.setdefault(list_name, []).append(_ChoiceRow(row.number, name, labels))
    return lists


def _read_settings(reader: _Reader, rows: list[_Row]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if not rows:
        reader.problem(
            "xlsform-setting", "settings", None, None, "the 'settings' sheet is missing or empty"
        )
        return data
    row = rows[0]

    def setting(name: str) -> str:
        return row.text(name)

    data["id"] = setting("form_id")
    version = setting("version")
    if version.isdigit():
        data["version"] = int(version)
    else:
        reader.problem(
            "xlsform-setting",
            "settings",
            row.number,
            None,
            f"'version' must be a whole number such as 1, got {version!r}",
        )
    for field in ("title", "intro"):
        data[field] = _labels(reader, row, "settings", field, None)
    data["sms"] = setting("sms").split()
    scoring: dict[str, Any] = {"index": []}
    for entry in setting("index").split():
        name, _, weight = entry.partition(":")
        try:
            scoring["index"].append({"item": name, "weight": float(weight) if weight else 1.0})
        except ValueError:
            reader.problem(
                "xlsform-setting",
                "settings",
                row.number,
                None,
                f"'index' entry {entry!r}: weight must be a number (name:weight)",
            )
    min_items = setting("min_items")
    if min_items:
        if min_items.isdigit():
            scoring["min_items"] = int(min_items)
        else:
            reader.problem(
                "xlsform-setting",
                "settings",
                row.number,
                None,
                f"'min_items' must be a whole number, got {min_items!r}",
            )
    satisfied = setting("satisfied")
    if satisfied:
        try:
            scoring["satisfied"] = from_relevant(satisfied).model_dump(exclude_none=True)
        except (RelevantSyntaxError, ValueError) as exc:
            reader.problem(
                "xlsform-relevant",
                "settings",
                row.number,
                None,
                f"cannot import 'satisfied' {satisfied!r}: {_reason(exc)}",
            )
    data["scoring"] = scoring
    known = set(SETTINGS_COLUMNS) | {f"{f}::{x}" for f in ("title", "intro") for x in LANGUAGES}
    known |= {"instance_name", "style", "public_key", "submission_url", "allow_choice_duplicates"}
    for column in row.cells:
        if _column_name(column) not in known:
            reader.unsupported(
                "settings",
                row.number,
                None,
                f"setting '{column}' has no equivalent and is not imported",
                "xlsform-unsupported-column",
            )
    return data


_METADATA = {
    "start", "end", "today", "deviceid", "subscriberid", "simserial", "phonenumber",
    "username", "email", "audit", "start-geopoint", "background-audio",
}  # fmt: skip


def _read_survey(
    reader: _Reader, rows: list[_Row], lists: dict[str, list[_ChoiceRow]]
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for row in rows:
        kind = row.text("type")
        name = row.text("name") or None
        if not kind:
            reader.problem(
                "xlsform-missing-column", "survey", row.number, name, "the row has no 'type'"
            )
            continue
        words = kind.split()
        base = words[0].lower()
        if base in _METADATA or base in (
            "note",
            "calculate",
            "begin",
            "end",
            "begin_group",
            "end_group",
        ):
            what = "metadata" if base in _METADATA else f"'{kind}' row"
            reader.unsupported(
                "survey",
                row.number,
                name,
                f"{what} has no equivalent in our schema and is not imported",
                "xlsform-unsupported-type",
            )
            if name:
                reader.failed_items.add(name)
            continue
        if not name:
            reader.problem(
                "xlsform-missing-column", "survey", row.number, None, "the row has no 'name'"
            )
            continue
        reader.item_rows.setdefault(name, row.number)
        item = _item(reader, row, name, base, words, lists)
        if item is None:
            reader.failed_items.add(name)
            continue
        items.append(item)
    return items


def _item(
    reader: _Reader,
    row: _Row,
    name: str,
    base: str,
    words: list[str],
    lists: dict[str, list[_ChoiceRow]],
) -> dict[str, Any] | None:
    item: dict[str, Any] = {"id": name}
    constraint = row.text("constraint")
    if base in ("select_one", "select_multiple"):
        if len(words) != 2:
            reader.problem(
                "xlsform-unsupported-type",
                "survey",
                row.number,
                name,
                f"type '{' '.join(words)}' must be '{base} <list name>' "
                "(or_other is not supported)",
            )
            return None
        list_name = words[1]
        if list_name not in lists:
            reader.problem(
                "xlsform-unknown-list",
                "survey",
                row.number,
                name,
                f"choice list '{list_name}' is not in the 'choices' sheet",
            )
            return None
        if not _select(reader, item, row, base, list_name, lists[list_name]):
            return None
        if constraint:
            reader.problem(
                "xlsform-constraint",
                "survey",
                row.number,
                name,
                f"constraints on select rows are not supported: {constraint!r}",
            )
    elif base == "text":
        item["type"] = "text"
        if constraint:
            match = _TEXT_CONSTRAINT.match(constraint)
            if match is None:
                reader.problem(
                    "xlsform-constraint",
                    "survey",
                    row.number,
                    name,
                    f"text constraint {constraint!r} is not supported; use 'string-length(.) <= N'",
                )
                return None
            item["max_length"] = int(match.group(1))
        else:
            item["max_length"] = DEFAULT_TEXT_LENGTH
    elif _is_rating(base, constraint, row.text("parameters")):
        item["type"] = "rating0_10"
    else:
        hint = (
            " (integer is imported only with constraint '. >= 0 and . <= 10')"
            if base == "integer"
            else ""
        )
        reader.unsupported(
            "survey",
            row.number,
            name,
            f"type '{' '.join(words)}' has no equivalent in our schema{hint}",
            "xlsform-unsupported-type",
        )
        return None
    item["text"] = _labels(reader, row, "survey", "label", name)
    required = row.text("required").lower()
    if required in _TRUE:
        item["required"] = True
    elif required not in _FALSE:
        reader.problem(
            "invalid-value",
            "survey",
            row.number,
            name,
            f"'required' must be yes or no, got {row.text('required')!r}",
        )
    relevant = row.text("relevant")
    if relevant:
        try:
            item["condition"] = from_relevant(relevant).model_dump(exclude_none=True)
        except (RelevantSyntaxError, ValueError) as exc:
            reader.problem(
                "xlsform-relevant",
                "survey",
                row.number,
                name,
                f"cannot import relevant {relevant!r}: {_reason(exc)}",
            )
    return item


def _select(
    reader: _Reader,
    item: dict[str, Any],
    row: _Row,
    base: str,
    list_name: str,
    choices: list[_ChoiceRow],
) -> bool:
    names = [c.name for c in choices]
    item["not_applicable"] = NOT_APPLICABLE_NAME in names
    coded = [c for c in choices if c.name != NOT_APPLICABLE_NAME]
    bad = [c for c in coded if not re.fullmatch(r"\d{1,2}", c.name)]
    for choice in bad:
        reader.problem(
            "xlsform-choice-code",
            "choices",
            choice.row,
            item["id"],
            f"choice '{choice.name}' of list '{list_name}' is not a whole-number code (0-99)",
        )
    if bad:
        return False
    codes = [int(c.name) for c in coded]
    by_code = {int(c.name): c for c in coded}
    lowered = list_name.lower()
    convention = {
        "likert5": (ItemType.likert5, list(range(1, 6))),
        "rating0_10": (ItemType.rating0_10, list(range(11))),
        "yes_no": (ItemType.yes_no, [YES, NO]),
    }
    for prefix, (kind, expected) in convention.items():
        if base == "select_one" and lowered.startswith(prefix):
            if codes != expected:
                reader.problem(
                    "xlsform-choice-code",
                    "choices",
                    choices[0].row,
                    item["id"],
                    f"list '{list_name}' is named as a {kind.value} list, so its choices must be "
                    f"{' '.join(map(str, expected))} in order; found {' '.join(map(str, codes))}",
                )
                return False
            item["type"] = kind.value
            if kind is not ItemType.yes_no:
                low, high = by_code[expected[0]], by_code[expected[-1]]
                plain = all(
                    low.labels.get(x) == localise_digits(str(expected[0]), x)
                    and high.labels.get(x) == localise_digits(str(expected[-1]), x)
                    for x in LANGUAGES
                )
                if kind is ItemType.likert5 or not plain:
                    item["ends"] = {"low": low.labels, "high": high.labels}
            if not item["not_applicable"]:
                del item["not_applicable"]
            return True
    item["type"] = "single_choice" if base == "select_one" else "multi_choice"
    item["choices"] = [{"code": int(c.name), "label": c.labels} for c in coded]
    if not item["not_applicable"]:
        del item["not_applicable"]
    return True


def _is_rating(base: str, constraint: str, parameters: str) -> bool:
    """integer with '. >= 0 and . <= 10', or range with start=0 end=10 step=1."""
    if base == "integer":
        return _RATING_CONSTRAINT.match(constraint) is not None
    if base != "range":
        return False
    found = dict(re.findall(r"(\w+)\s*=\s*(-?\d+(?:\.\d+)?)", parameters))
    return (
        float(found.get("start", "nan")) == 0
        and float(found.get("end", "nan")) == 10
        and float(found.get("step", "1")) == 1
    )


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0] if not isinstance(exc, RelevantSyntaxError) else str(exc)


def _caused_by_skip(problem: Problem, reader: _Reader) -> bool:
    """Drop schema follow-ups of problems the reader already reported at their row."""
    if problem.code == "missing-translation":
        return bool(reader.missing_columns) or any(
            p.code == "missing-translation" for p in reader.problems
        )
    if not problem.code.endswith("unknown-item"):
        return False
    return any(f"'{name}'" in problem.message for name in reader.failed_items)


def _place(problem: Problem, reader: _Reader) -> Problem:
    """Give a schema problem the sheet and row it comes from."""
    if problem.item is not None and problem.item in reader.item_rows:
        return replace(problem, sheet="survey", row=reader.item_rows[problem.item], line=None)
    return replace(problem, sheet="settings", row=2, line=None)
