"""``questionnaires`` command: validate, preview and convert questionnaire files.

questionnaires validate FILE...                 exit 0 and "FILE: OK ..." per file,
                                                or exit 1 with every problem listed
questionnaires preview FILE [--lang fa|en] [--answer ITEM=VALUE ...] [--out PAGE.html]
questionnaires convert SOURCE --out TARGET [--skip-unsupported]
                                                .xlsx <-> .yaml/.yml/.json, by extension
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from questionnaires.errors import Problem, QuestionnaireError
from questionnaires.loading import dumps_yaml, load, questionnaire_files
from questionnaires.rendering import render_form
from questionnaires.schema import LANGUAGES, Questionnaire
from questionnaires.xlsform import read_xlsform, write_xlsform

WRITABLE = (".xlsx", ".yaml", ".yml", ".json")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="questionnaires", description="Validate, preview and convert questionnaire files."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate", help="check files (or every file in a folder); list every problem"
    )
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")

    preview = commands.add_parser("preview", help="render the web form as HTML")
    preview.add_argument("file", type=Path, metavar="FILE")
    preview.add_argument("--lang", choices=LANGUAGES, default="fa", help="default: fa")
    preview.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="ITEM=VALUE",
        help="an answer given so far (shows conditional items); repeatable",
    )
    preview.add_argument("--out", type=Path, help="write the page here instead of stdout")

    convert = commands.add_parser("convert", help="convert between XLSForm and YAML/JSON")
    convert.add_argument("source", type=Path, metavar="SOURCE")
    convert.add_argument("--out", type=Path, required=True, metavar="TARGET")
    convert.add_argument(
        "--skip-unsupported",
        action="store_true",
        help="XLSForm rows/columns with no equivalent are left out (listed) instead of failing",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0 ok, 1 problems, 2 usage)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "validate":
        return _validate(args.files)
    if args.command == "preview":
        return _preview(parser, args)
    return _convert(parser, args)


def _validate(files: Sequence[Path]) -> int:
    status = 0
    expanded = [f for p in files for f in (questionnaire_files(p) if p.is_dir() else [p])]
    for path in expanded:
        try:
            questionnaire = load(path)
        except QuestionnaireError as exc:
            status = 1
            _report(exc.problems)
            continue
        print(
            f"{path}: OK ({questionnaire.id} v{questionnaire.version}, "
            f"{len(questionnaire.items)} items, sha256 {questionnaire.content_hash()[:12]})"
        )
    return status


def _preview(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    answers: dict[str, str] = {}
    for pair in args.answer:
        item, sep, value = pair.partition("=")
        if not sep or not item:
            parser.error(f"--answer expects ITEM=VALUE, got {pair!r}")
        answers[item.strip()] = value.strip()
    try:
        questionnaire = load(args.file)
    except QuestionnaireError as exc:
        _report(exc.problems)
        return 1
    page = render_form(questionnaire, args.lang, answers=answers)
    if args.out is None:
        sys.stdout.write(page)
    else:
        args.out.write_text(page, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


def _convert(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    target: Path = args.out
    if target.suffix.lower() not in WRITABLE:
        parser.error(f"--out must end in one of {', '.join(WRITABLE)}, got {target.name!r}")
    try:
        if args.source.suffix.lower() == ".xlsx":
            questionnaire = read_xlsform(
                args.source,
                skip_unsupported=args.skip_unsupported,
                on_skip=lambda p: print(f"skipped: {p}", file=sys.stderr),
            )
        else:
            questionnaire = load(args.source)
    except QuestionnaireError as exc:
        _report(exc.problems)
        return 1
    try:
        _write(questionnaire, target)
    except OSError as exc:
        print(f"{target}: cannot write: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {target} ({questionnaire.id} v{questionnaire.version})")
    return 0


def _write(questionnaire: Questionnaire, target: Path) -> None:
    suffix = target.suffix.lower()
    if suffix == ".xlsx":
        write_xlsform(questionnaire, target)
    elif suffix == ".json":
        text = json.dumps(questionnaire.to_dict(), ensure_ascii=False, indent=2)
        target.write_text(text + "\n", encoding="utf-8")
    else:
        target.write_text(dumps_yaml(questionnaire), encoding="utf-8")


def _report(problems: Sequence[Problem]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)
    noun = "problem" if len(problems) == 1 else "problems"
    print(f"{len(problems)} {noun}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
