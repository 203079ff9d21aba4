"""Reading questionnaire files (YAML, JSON, XLSForm) into validated Questionnaires.

Every problem of a file is collected, located (item id, and the YAML line where known) and
raised together in one :class:`QuestionnaireError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from questionnaires.errors import Problem, QuestionnaireError
from questionnaires.rules import find_problems
from questionnaires.safe_yaml import SafeYamlLoader
from questionnaires.schema import Item, ItemType, Questionnaire, Scoring

TEXT_FIELDS = frozenset({"title", "intro", "text", "label", "low", "high"})
YAML_SUFFIXES = frozenset({".yaml", ".yml"})


def library_path() -> Path:
    """The folder of the bundled instrument files (``questionnaires/library``)."""
    return Path(str(resources.files("questionnaires") / "library"))


def load_library() -> dict[str, Questionnaire]:
    """The bundled instruments, by questionnaire id."""
    return {q.id: q for q in load_folder(library_path())}


QUESTIONNAIRE_SUFFIXES = (".yaml", ".yml", ".json", ".xlsx")


def questionnaire_files(folder: str | Path) -> list[Path]:
    """The questionnaire files directly in ``folder`` (by extension), sorted by name."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if p.is_file() and p.suffix.lower() in QUESTIONNAIRE_SUFFIXES
    )


def load_folder(folder: str | Path) -> list[Questionnaire]:
    """Every questionnaire file in ``folder``, sorted by (id, version).

    All files are read before failing: QuestionnaireError lists the problems of every file,
    and two files with the same id and version are an error (``duplicate-version``).
    """
    problems: list[Problem] = []
    seen: dict[tuple[str, int], Path] = {}
    found: list[Questionnaire] = []
    for path in questionnaire_files(folder):
        try:
            questionnaire = load(path)
        except QuestionnaireError as exc:
            problems += exc.problems
            continue
        key = (questionnaire.id, questionnaire.version)
        if key in seen:
            problems.append(
                _top(
                    "duplicate-version",
                    str(path),
                    f"{questionnaire.id} version {questionnaire.version} is also defined in "
                    f"{seen[key].name}; raise the version of one of them",
                )
            )
            continue
        seen[key] = path
        found.append(questionnaire)
    if problems:
        raise QuestionnaireError(problems)
    return sorted(found, key=lambda q: (q.id, q.version))


def load(path: str | Path) -> Questionnaire:
    """Load and validate one file (.yaml/.yml/.json/.xlsx); QuestionnaireError on problems."""
    path = Path(path)
    file = str(path)
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        from questionnaires.xlsform import read_xlsform

        return read_xlsform(path)
    if suffix not in YAML_SUFFIXES | {".json"}:
        raise QuestionnaireError(
            [
                _top(
                    "file-type",
                    file,
                    f"cannot read '{path.suffix}' files; use .yaml, .json or .xlsx",
                )
            ]
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionnaireError(
            [_top("file-unreadable", file, f"cannot read file: {exc}")]
        ) from None
    if suffix == ".json":
        return loads_json(text, file=file)
    return loads_yaml(text, file=file)


def loads_json(text: str, *, file: str = "<json>") -> Questionnaire:
    """Validate a questionnaire given as JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QuestionnaireError(
            [replace(_top("syntax", file, f"JSON syntax error: {exc.msg}"), line=exc.lineno)]
        ) from None
    return build(data, file=file)


def loads_yaml(text: str, *, file: str = "<yaml>") -> Questionnaire:
    """Validate a questionnaire given as YAML text; lines of items are kept for messages."""
    loader = SafeYamlLoader(text)  # no aliases, a node budget: files come from people
    try:
        node = loader.get_single_node()
        if node is None:
            raise QuestionnaireError([_top("not-a-mapping", file, "the file is empty")])
        duplicates = _duplicate_keys(node, file)
        if duplicates:
            raise QuestionnaireError(duplicates)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else getattr(exc, "line", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise QuestionnaireError(
            [replace(_top("syntax", file, f"YAML syntax error: {problem}"), line=line)]
        ) from None
    finally:
        loader.dispose()
    return build(data, file=file, lines=_lines(node))


def build(data: Any, *, file: str = "", lines: _Lines | None = None) -> Questionnaire:
    """Validate parsed data; raises QuestionnaireError with every problem, located."""
    if not isinstance(data, Mapping):
        raise QuestionnaireError(
            [
                _top(
                    "not-a-mapping",
                    file,
                    f"expected a mapping of fields, got {type(data).__name__}",
                )
            ]
        )
    try:
        return Questionnaire.model_validate(dict(data))
    except QuestionnaireError as exc:
        problems = exc.problems
    except ValidationError as exc:
        problems = structural_problems(exc, data, lines) + _partial_rules(data)
    located = [_locate(replace(p, file=p.file or file), lines) for p in problems]
    located.sort(key=lambda p: (p.line is None, p.line or 0))
    raise QuestionnaireError(located)


def structural_problems(
    exc: ValidationError, data: Mapping[str, Any], lines: _Lines | None = None
) -> list[Problem]:
    """Turn pydantic's errors into coded Problems naming the item and the field."""
    raw_items = data.get("items")
    found: list[Problem] = []
    errors = exc.errors(include_url=False)
    failed_inside = {tuple(e["loc"][:n]) for e in errors for n in range(len(e["loc"]))}
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "too_short" and loc in failed_inside:
            continue  # pydantic counts only the entries that parsed; their own errors say why
        item: str | None = None
        rest = loc
        line: int | None = None
        if len(loc) >= 2 and loc[0] == "items" and isinstance(loc[1], int):
            item = _raw_id(raw_items, loc[1])
            rest = loc[2:]
            if lines is not None and loc[1] < len(lines.by_index):
                line = lines.by_index[loc[1]]
        elif lines is not None and loc and str(loc[0]) in lines.keys:
            line = lines.keys[str(loc[0])]
        found.append(replace(_problem_from_error(error, loc, rest, item), line=line))
    return found


def _problem_from_error(
    error: Any, loc: tuple[Any, ...], rest: tuple[Any, ...], item: str | None
) -> Problem:
    kind = error["type"]
    field = _path(rest) or "item"
    last = rest[-1] if rest else (loc[-1] if loc else "")
    got = _short(error.get("input"))
    message = str(error["msg"]).removeprefix("Value error, ")

    def make(code: str, text: str) -> Problem:
        return Problem(code=code, file="", item=item, row=None, message=text)

    if last in ("fa", "en") and kind in ("missing", "string_too_short"):
        language = "Persian (fa)" if last == "fa" else "English (en)"
        owner = _path(rest[:-1]) or "text"
        state = "is empty" if kind == "string_too_short" else "is missing"
        return make("missing-translation", f"the {language} form of '{owner}' {state}")
    if last in TEXT_FIELDS and kind in ("model_type", "model_attributes_type"):
        return make(
            "missing-translation",
            f"'{field}' must give both Persian and English, as {{fa: ..., en: ...}}; got {got}",
        )
    if kind == "missing":
        return make("missing-field", f"field '{field}' is required")
    if kind == "extra_forbidden":
        return make("unknown-field", f"unknown field '{field}'")
    if last == "type" and kind == "enum" and loc[:1] == ("items",):
        allowed = ", ".join(t.value for t in ItemType)
        return make("unknown-type", f"unknown type {got}; expected one of: {allowed}")
    if last == "id" and kind == "string_pattern_mismatch":
        return make(
            "bad-id",
            f"id {got} must start with a lower-case letter and use only a-z, 0-9, '_' or '-'",
        )
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return make("not-a-mapping", f"'{field}' must be a mapping of fields; got {got}")
    return make("invalid-value", f"'{field}': {message}; got {got}")


def _short(value: Any, limit: int = 60) -> str:
    """repr of an offending input, cut short so one problem stays one line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path(parts: tuple[Any, ...]) -> str:
    """('choices', 1, 'label') -> 'choices[1].label'."""
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in parts).replace(".[", "[")


def _partial_rules(data: Mapping[str, Any]) -> list[Problem]:
    """Whole-questionnaire rules on whatever parsed, so all problems show at once."""
    raw_items = data.get("items")
    if not isinstance(raw_items, list):
        return []
    items: list[Item | None] = []
    for raw in raw_items:
        try:
            items.append(Item.model_validate(raw))
        except ValidationError:
            items.append(None)
    ids = [_raw_id(raw_items, i) for i in range(len(raw_items))]
    raw_sms = data.get("sms", ())
    sms = [str(s) for s in raw_sms] if isinstance(raw_sms, list) else None
    try:
        scoring = Scoring.model_validate(data.get("scoring"))
    except ValidationError:
        scoring = None
    return find_problems(items, ids, sms, scoring)


def _raw_id(raw_items: Any, index: int) -> str | None:
    try:
        raw = raw_items[index]
    except (TypeError, IndexError, KeyError):
        return None
    if isinstance(raw, Mapping) and isinstance(raw.get("id"), str):
        return raw["id"]
    return f"#{index + 1}"


def _top(code: str, file: str, message: str) -> Problem:
    return Problem(code=code, file=file, item=None, row=None, message=message)


# -- YAML positions ---------------------------------------------------------------------------
class _Lines:
    """1-based lines of top-level keys and of each item (by id, in order of occurrence)."""

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}
        self.items: dict[str, list[int]] = {}
        self.by_index: list[int] = []


def _lines(node: yaml.Node) -> _Lines:
    lines = _Lines()
    if not isinstance(node, yaml.MappingNode):
        return lines
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        lines.keys[str(key.value)] = key.start_mark.line + 1
        if key.value == "items" and isinstance(value, yaml.SequenceNode):
            for index, entry in enumerate(value.value):
                item_id = f"#{index + 1}"
                if isinstance(entry, yaml.MappingNode):
                    for k, v in entry.value:
                        if isinstance(k, yaml.ScalarNode) and k.value == "id":
                            item_id = str(v.value)
                lines.items.setdefault(item_id, []).append(entry.start_mark.line + 1)
                lines.by_index.append(entry.start_mark.line + 1)
    return lines


def _locate(problem: Problem, lines: _Lines | None) -> Problem:
    if lines is None or problem.line is not None:
        return problem
    if problem.item is not None and problem.item in lines.items:
        at = lines.items[problem.item]
        line = at[1] if problem.code == "duplicate-id" and len(at) > 1 else at[0]
        return replace(problem, line=line)
    for prefix in ("sms", "scoring"):
        mentions = problem.code.startswith(prefix) or problem.message.startswith(prefix)
        if mentions and prefix in lines.keys:
            return replace(problem, line=lines.keys[prefix])
    return problem


def _duplicate_keys(node: yaml.Node, file: str) -> list[Problem]:
    """PyYAML keeps the last of two equal keys silently; we refuse them instead."""
    found: list[Problem] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        found.append(
                            replace(
                                _top(
                                    "syntax",
                                    file,
                                    f"key '{key.value}' appears twice in one mapping",
                                ),
                                line=key.start_mark.line + 1,
                            )
                        )
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    found.sort(key=lambda p: p.line or 0)
    return found


def dumps_yaml(questionnaire: Questionnaire) -> str:
    """The questionnaire as readable YAML (defaults left out), loadable by ``loads_yaml``."""
    data = questionnaire.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    # id, version and scoring are required and always kept; exclude_defaults only drops optional
    # fields, so the text stays short without losing information.
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
