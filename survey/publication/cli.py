"""`survey releases create|list|show|publish|correct`: the publication workflow from a console
(the same functions as the staff API; every act is in the audit log as `cli:<login>`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd

from survey.context import open_context
from survey.errors import InvalidInput
from survey.kernel.console import cli_principal, format_table
from survey.kernel.periods import format_date
from survey.publication.dictionary import dictionary_json
from survey.publication.open_data import (
    TABLE_NAMES,
    release_detail,
    spreadsheet_csv,
    table_frame,
    table_records,
)
from survey.publication.releases import (
    StoredRelease,
    correct_release,
    create_release,
    get_release,
    list_releases,
    publish_release,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "releases",
        help="publication releases: compute a draft, publish it, correct it",
        description="A release is the indices of one Solar Hijri period. A draft is computed "
        "from the responses and frame counts; once published it never changes; a correction "
        "is a new release for the same period (docs/publication.md).",
    )
    commands = parser.add_subparsers(dest="releases_command", required=True, metavar="ACTION")

    create = commands.add_parser("create", help="compute a draft release for a period")
    create.add_argument("--period", required=True, help="1405-01 (month), 1405-Q1 or 1405")
    create.set_defaults(handler=_create)

    listing = commands.add_parser("list", help="releases, newest first")
    listing.add_argument("--status", choices=("draft", "published"), default=None)
    listing.set_defaults(handler=_list)

    show = commands.add_parser("show", help="one release: metadata and its main estimates")
    show.add_argument("id", type=int)
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(handler=_show)

    files = commands.add_parser(
        "files", help="write a release's tables (CSV) and the data dictionary to a folder"
    )
    files.add_argument("id", type=int)
    files.add_argument("--out", required=True, help="folder to write (created if missing)")
    files.set_defaults(handler=_files)

    publish = commands.add_parser("publish", help="publish a draft (it never changes after)")
    publish.add_argument("id", type=int)
    publish.set_defaults(handler=_publish)

    correct = commands.add_parser(
        "correct", help="recompute a published release's period as a correcting draft"
    )
    correct.add_argument("id", type=int, help="the published release to correct")
    correct.add_argument("--note", required=True, help="what was wrong and what changed")
    correct.set_defaults(handler=_correct)


def _describe(release: StoredRelease) -> str:
    state = release.status
    if release.published_at is not None:
        state += f" {release.published_at:%Y-%m-%d %H:%M} UTC by {release.published_by}"
    lines = [
        f"release {release.id}: period {release.period} number {release.number} ({state})",
        f"days {format_date(release.period_start)} to {format_date(release.last_day)}"
        + ("" if release.complete else " (interim: the period had not ended)"),
        f"responses {release.response_count}; plan versions "
        f"{', '.join(map(str, release.plan_versions))}; questionnaires "
        f"{', '.join(release.questionnaire_versions)}",
        f"content sha256 {release.content_hash}",
    ]
    if release.supersedes_id is not None:
        lines.append(f"corrects release {release.supersedes_id}: {release.change_note}")
    if release.superseded_by_id is not None:
        lines.append(f"corrected by release {release.superseded_by_id}")
    return "\n".join(lines)


def _create(args: argparse.Namespace) -> int:

    context = open_context(args)
    try:
        release = create_release(context, cli_principal(), args.period)
    finally:
        context.close()
    print(_describe(release))
    print(f"draft: check it with `survey releases show {release.id}`, then "
          f"`survey releases publish {release.id}`")  # fmt: skip
    return 0


def _list(args: argparse.Namespace) -> int:

    context = open_context(args)
    try:
        with context.read_sessions() as session:
            found = list_releases(session, status=args.status)
    finally:
        context.close()
    if not found:
        print("no releases")
        return 0
    rows = [
        [
            r.id,
            r.period,
            r.number,
            r.status,
            f"{r.published_at:%Y-%m-%d %H:%M}" if r.published_at else None,
            r.response_count,
            r.supersedes_id,
            r.superseded_by_id,
        ]
        for r in found
    ]
    headers = ["id", "period", "number", "status", "published (UTC)", "responses", "corrects",
               "corrected by"]  # fmt: skip
    print(format_table(headers, rows))
    return 0


def _show(args: argparse.Namespace) -> int:

    context = open_context(args)
    try:
        with context.read_sessions() as session:
            release = get_release(session, args.id)
    finally:
        context.close()
    estimates = table_frame(release, "estimates")
    if args.format == "json":
        body = msgspec.to_builtins(release_detail(release))
        body["estimates"] = table_records(estimates)
        print(json.dumps(body, ensure_ascii=False, indent=2))
        return 0
    print(_describe(release))
    shown = estimates[estimates["level"].isin(["national", "agency"])]
    rows = [_estimate_row(r) for r in shown.itertuples(index=False)]
    print(format_table(["level", "agency", "measure", "estimate", "95% CI", "grade", "n",
                        "rank (interval)"], rows))  # fmt: skip
    return 0


def _files(args: argparse.Namespace) -> int:
    """The open-data files of a release, as the API serves them, for officials offline."""

    context = open_context(args)
    try:
        with context.read_sessions() as session:
            release = get_release(session, args.id)
    finally:
        context.close()
    folder = Path(args.out)
    written: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in TABLE_NAMES:
            path = folder / f"release-{release.id}-{release.period}-{name}.csv"
            path.write_bytes(spreadsheet_csv(table_frame(release, name)))  # as served
            written.append(path)
        path = folder / "dictionary.json"
        path.write_text(json.dumps(dictionary_json(), ensure_ascii=False, indent=2), "utf-8")
        written.append(path)
    except OSError as exc:
        raise InvalidInput(f"{folder}: cannot be written ({exc.strerror})") from None
    state = "" if release.published else " (a DRAFT: not published)"
    print(f"release {release.id} ({release.period}){state}: wrote {len(written)} files")
    for path in written:
        print(f"  {path}")
    return 0


def _estimate_row(r: Any) -> list[object]:
    """One row of the estimates table as `survey releases show` prints it."""
    return [
        r.level,
        r.agency or "-",
        r.measure,
        "too few responses" if r.suppressed else f"{r.estimate:.1f}",
        None if r.suppressed else f"{r.ci_low:.1f}-{r.ci_high:.1f}",
        r.grade,
        int(r.n),
        _rank(r.rank, r.rank_low, r.rank_high),
    ]


def _rank(rank: Any, low: Any, high: Any) -> str | None:
    """`3 (1-5)`: the rank with its interval (ranks are uncertain)."""
    if pd.isna(rank):
        return None
    interval = "" if pd.isna(low) or pd.isna(high) else f" ({int(low)}-{int(high)})"
    return f"{int(rank)}{interval}"


def _publish(args: argparse.Namespace) -> int:

    context = open_context(args)
    try:
        release = publish_release(context, cli_principal(), args.id)
    finally:
        context.close()
    print(_describe(release))
    print(f"published: /api/v1/releases/{release.id} (it never changes from now on)")
    return 0


def _correct(args: argparse.Namespace) -> int:

    context = open_context(args)
    try:
        release = correct_release(context, cli_principal(), args.id, args.note)
    finally:
        context.close()
    print(_describe(release))
    print(f"correcting draft: publish it with `survey releases publish {release.id}`")
    return 0
