"""Questionnaires registered in the database, from files or the bundled library.

A registered version is identified by its questionnaire id and version number. Loading a file
whose id and version are registered with the same content does nothing; with different content
it replaces the stored one only while that version has never been used for an invitation
(`first_used_at` unset). A used version is immutable: an answer always refers to the exact
questions asked, so a change needs a new version number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from questionnaires.errors import QuestionnaireError
from questionnaires.loading import load, load_library
from questionnaires.schema import Questionnaire
from survey.context import AppContext
from survey.errors import Conflict, InvalidInput, NotFound, Problem
from survey.kernel import audit
from survey.kernel.principal import Principal
from survey.models import QuestionnaireVersion
from survey.registry import store

__all__ = [
    "QUESTIONNAIRE_SUFFIXES",
    "LoadResult",
    "QuestionnaireView",
    "find",
    "list_questionnaires",
    "load_files",
    "register",
    "register_library",
    "resolve",
]

QUESTIONNAIRE_SUFFIXES = (".yaml", ".yml", ".json", ".xlsx")


@dataclass(frozen=True, slots=True)
class QuestionnaireView:
    qid: str
    version: int
    title_fa: str
    title_en: str
    items: int
    sms_items: int
    content_hash: str
    created_at: datetime
    first_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What happened to one file: `added`, `replaced` (unused version changed), `unchanged`,
    or `error` with the problems."""

    source: str
    status: str
    qid: str | None = None
    version: int | None = None
    problems: tuple[str, ...] = ()


def register(
    session: Session, principal: Principal, questionnaire: Questionnaire, *, source: str = ""
) -> tuple[QuestionnaireVersion, str]:
    """Store one questionnaire version; returns the row and `added`/`replaced`/`unchanged`.

    Raises Conflict when the version has been used for invitations and the content differs.
    """
    digest = questionnaire.content_hash()
    row = find(session, questionnaire.id, questionnaire.version)
    if row is not None:
        if row.content_hash == digest:
            return row, "unchanged"
        if row.first_used_at is not None:
            raise Conflict(
                f"{source or 'the file'}: questionnaire {questionnaire.id!r} version "
                f"{questionnaire.version} has been used for invitations since "
                f"{row.first_used_at:%Y-%m-%d} and cannot change; save the changed "
                f"questionnaire as version {_next_version(session, questionnaire.id)}"
            )
        before = {"content_hash": row.content_hash}
        row.content = questionnaire.to_dict()
        row.content_hash = digest
        row.title_fa = questionnaire.title.fa
        row.title_en = questionnaire.title.en
        session.flush()
        audit.record(
            session,
            principal,
            "questionnaire.replace",
            "questionnaire",
            f"{questionnaire.id}@{questionnaire.version}",
            before=before,
            after={"content_hash": digest, "source": source},
        )
        return row, "replaced"
    row = QuestionnaireVersion(
        qid=questionnaire.id,
        version=questionnaire.version,
        title_fa=questionnaire.title.fa,
        title_en=questionnaire.title.en,
        content=questionnaire.to_dict(),
        content_hash=digest,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            f"questionnaire {questionnaire.id!r} version {questionnaire.version} was registered "
            "by someone else at the same time; load it again"
        ) from None
    audit.record(
        session,
        principal,
        "questionnaire.add",
        "questionnaire",
        f"{questionnaire.id}@{questionnaire.version}",
        after={"content_hash": digest, "source": source, "title_en": questionnaire.title.en},
    )
    return row, "added"


def load_files(
    session: Session, principal: Principal, paths: Iterable[str | Path]
) -> list[LoadResult]:
    """Register every questionnaire file named (folders: their .yaml/.yml/.json/.xlsx files).

    Each file stands alone: a bad file is reported with its problems and the others are still
    registered. Raises InvalidInput when a path does not exist or a folder holds no files.
    """
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in QUESTIONNAIRE_SUFFIXES)
            if not found:
                problems.append(
                    Problem(f"holds no {', '.join(QUESTIONNAIRE_SUFFIXES)} files", field=str(path))
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem("no such file or folder", field=str(path)))
    if problems:
        raise InvalidInput("cannot load questionnaires", problems)
    results = []
    for path in files:
        try:
            questionnaire = load(path)
        except QuestionnaireError as exc:
            results.append(
                LoadResult(str(path), "error", problems=tuple(str(p) for p in exc.problems))
            )
            continue
        try:
            with session.begin_nested():
                _, status = register(session, principal, questionnaire, source=str(path))
        except Conflict as exc:
            results.append(
                LoadResult(
                    str(path),
                    "error",
                    questionnaire.id,
                    questionnaire.version,
                    problems=(exc.message,),
                )
            )
            continue
        results.append(LoadResult(str(path), status, questionnaire.id, questionnaire.version))
    return results


def register_library(session: Session, principal: Principal) -> list[LoadResult]:
    """Register every bundled instrument (unchanged ones are left alone)."""
    results = []
    for questionnaire in load_library().values():
        source = f"library:{questionnaire.id}"
        _, status = register(session, principal, questionnaire, source=source)
        results.append(LoadResult(source, status, questionnaire.id, questionnaire.version))
    return results


def find(session: Session, qid: str, version: int | None = None) -> QuestionnaireVersion | None:
    """The registered version (the highest one when `version` is None), or None."""
    return store.find_questionnaire(session, qid, version)


def resolve(
    session: Session, principal: Principal, qid: str, version: int | None = None
) -> QuestionnaireVersion:
    """The registered questionnaire a plan names; bundled instruments are registered on demand.

    Look-up order: the database (the given version, or its highest), then the bundled library
    (whose version must match when one is given). NotFound names what is available.
    """
    row = find(session, qid, version)
    if row is not None:
        return row
    bundled = load_library().get(qid)
    if bundled is not None and (version is None or bundled.version == version):
        row, _ = register(session, principal, bundled, source=f"library:{qid}")
        return row
    registered = sorted(f"{q}@{v}" for q, v in store.registered_questionnaire_ids(session))
    library = sorted(f"{q.id}@{q.version}" for q in load_library().values())
    wanted = qid if version is None else f"{qid} version {version}"
    raise NotFound(
        f"questionnaire {wanted!r} is neither registered nor bundled "
        f"(registered: {', '.join(registered) or 'none'}; bundled: {', '.join(library)}); "
        "register it with `survey questionnaires load FILE`"
    )


def list_questionnaires(session: Session) -> list[QuestionnaireView]:
    rows = store.questionnaire_versions(session)
    return [
        QuestionnaireView(
            qid=row.qid,
            version=row.version,
            title_fa=row.title_fa,
            title_en=row.title_en,
            items=len(row.content.get("items", ())),
            sms_items=len(row.content.get("sms", ())),
            content_hash=row.content_hash,
            created_at=row.created_at,
            first_used_at=row.first_used_at,
        )
        for row in rows
    ]


def _next_version(session: Session, qid: str) -> int:
    return (store.highest_questionnaire_version(session, qid) or 0) + 1


@dataclass(frozen=True, slots=True)
class QuestionnaireList:
    questionnaires: list[QuestionnaireView]


def questionnaire_list(context: AppContext) -> QuestionnaireList:
    """Every registered questionnaire version, for the staff API."""
    with context.read_sessions() as session:
        return QuestionnaireList(list_questionnaires(session))
