"""Coded, located problems found in questionnaire files, and the one exception that carries them.

Modelled on pyxform's ``errors.py``: every problem has a stable ``code`` (so tests and tools
can rely on it), the file it was found in, the item id when it concerns one item, and the sheet
and row (XLSForm) or line (YAML/JSON) when known. Loading collects *all* problems of a file
before raising, so statistics staff fix a file in one pass.

Exception tree::

    Exception
     +-- QuestionnaireError      a questionnaire file or dict is invalid (carries Problems)
     +-- ValueError
          +-- AnswerError        an answer value does not fit its item (scoring, parsing)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

#: Every problem code with a one-line meaning; docs/questionnaires.md lists the same table.
PROBLEM_CODES: dict[str, str] = {
    "file-unreadable": "the file cannot be read",
    "file-type": "the file extension is not .yaml, .yml, .json or .xlsx",
    "duplicate-version": "two files in one folder define the same id and version",
    "syntax": "the YAML or JSON text is not well formed",
    "not-a-mapping": "the document (or a part of it) is not a mapping of field: value",
    "missing-field": "a required field is absent",
    "unknown-field": "a field name is not part of the format",
    "invalid-value": "a field has a value of the wrong kind or out of range",
    "bad-id": "an id is not lower-case letters, digits, '_' or '-' starting with a letter",
    "unknown-type": "an item type is not one of the supported types",
    "duplicate-id": "two items share one id",
    "missing-translation": "a text lacks its Persian (fa) or English (en) form",
    "type-field": "a field is missing or not allowed for the item's type",
    "duplicate-choice": "two choices of one item share a code",
    "na-not-allowed": "'not applicable' is offered on an item type that cannot have it",
    "condition-unknown-item": "a condition refers to an item that does not exist",
    "condition-later-item": "a condition refers to the item itself or to a later item",
    "condition-op": "a condition operator does not suit the referenced item's type",
    "condition-value": "a condition value is not a possible answer of the referenced item",
    "sms-unknown-item": "the sms list names an item that does not exist",
    "sms-not-digit": "an sms item cannot be answered with one digit",
    "sms-too-many": "more than 3 items are in the sms list",
    "sms-duplicate": "an item is listed twice in the sms list",
    "scoring-unknown-item": "the scoring rule names an item that does not exist",
    "scoring-item-type": "an index item is not likert5, rating0_10 or yes_no",
    "scoring-duplicate": "an item appears twice in the index",
    "scoring-min-items": "min_items is larger than the number of index items",
    "xlsform-missing-sheet": "the workbook lacks the survey sheet",
    "xlsform-missing-column": "a required column (type, name, label) is absent",
    "xlsform-unsupported-type": "a row type has no equivalent in our schema",
    "xlsform-unsupported-column": "a column or setting has no equivalent in our schema",
    "xlsform-unknown-list": "a select row names a choice list that is not in the choices sheet",
    "xlsform-choice-code": "a choice name is not a whole-number code",
    "xlsform-relevant": "a relevant expression is outside the supported subset",
    "xlsform-constraint": "a constraint is outside the supported subset",
    "xlsform-setting": "a settings value is missing or malformed",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a questionnaire file.

    ``row`` is the 1-based spreadsheet row for XLSForm files; ``line`` the 1-based line for
    YAML/JSON files. Either may be None when the position is unknown.
    """

    code: str
    file: str
    item: str | None
    row: int | None
    message: str
    sheet: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file or "<questionnaire>"
        if self.line is not None:
            where += f":{self.line}"
        if self.sheet is not None:
            where += f": sheet '{self.sheet}'"
        if self.row is not None:
            where += f" row {self.row}"
        if self.item is not None:
            where += f": item '{self.item}'"
        return f"{where}: {self.message} [{self.code}]"


class QuestionnaireError(Exception):
    """A questionnaire is invalid; ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        if not self.problems:
            raise ValueError("QuestionnaireError needs at least one Problem")
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def codes(self) -> list[str]:
        """The problem codes, in order (handy for tests and tools)."""
        return [p.code for p in self.problems]

    def in_file(self, file: str) -> QuestionnaireError:
        """The same problems attributed to ``file`` where no file was known yet."""
        return QuestionnaireError(replace(p, file=p.file or file) for p in self.problems)


class AnswerError(ValueError):
    """An answer value does not fit its item, e.g. 7 for a likert5 item.

    ``reason`` is ``"invalid"`` (not a possible answer) or ``"too_long"`` (text over its
    limit), so a caller can pick the citizen-facing message.
    """

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason
