"""Releases over HTTP: the open data (anyone; published releases only) and the staff workflow.

Open data (no key; a draft or an unknown id is 404 alike). GET or HEAD; every answer has a
strong ETag (the SHA-256 of its bytes) and a matching If-None-Match gets 304
(survey.http.conditional); CSVs are UTF-8 with a byte-order mark, for spreadsheets:

    GET  /api/v1/releases                          published releases, newest first
    GET  /api/v1/releases/latest                   307 to the release the overview shows
    GET  /api/v1/releases/dictionary               every column of every table, fa and en
    GET  /api/v1/releases/{id}                     metadata, methodology, names, file URLs
    GET  /api/v1/releases/{id}/{table}.csv|.json   estimates, items, small_areas, codes
    GET  /api/v1/releases/{id}/snapshot.json       the stored snapshot (SHA-256 = content_hash)

Staff (admin, statistician; viewers may read drafts):

    POST /api/v1/releases                          {"period": "1405-Q1"} -> a draft (201)
    GET  /api/v1/releases/drafts                   drafts, newest first
    GET  /api/v1/releases/{id}/preview             any release, with its estimates
    POST /api/v1/releases/{id}/publish             draft -> published (409 if it already is)
    POST /api/v1/releases/{id}/corrections         {"note": "..."} -> a correcting draft (201)
"""

from __future__ import annotations

from functools import cache
from typing import Any, cast

import msgspec
from litestar import Controller, MediaType, Response, get, post, route
from litestar.enums import HttpMethod
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, RawBody
from litestar.response import Redirect

from survey.http.bodies import parse_body
from survey.http.conditional import conditional_get_middleware
from survey.http.dependencies import Caller, Context
from survey.http.guards import staff
from survey.http.openapi import documented_body, extra_response_media, json_example
from survey.publication import documents
from survey.publication.dictionary import dictionary_json
from survey.publication.documents import ReleaseFile, ReleasePreview
from survey.publication.open_data import ReleaseDetail, ReleaseList

WRITERS = ("admin", "statistician")
READERS = ("admin", "statistician", "viewer")
# A published release never changes, so its files may be cached for long; listings change.
IMMUTABLE = "public, max-age=86400"
LISTING = "public, max-age=60"


class PeriodIn(msgspec.Struct, forbid_unknown_fields=True):
    period: str


class CorrectionIn(msgspec.Struct, forbid_unknown_fields=True):
    note: str


class Texts(msgspec.Struct):
    en: str
    fa: str


class DictionaryColumn(msgspec.Struct):
    name: str
    type: str
    description: Texts


class DictionaryTable(msgspec.Struct):
    table: str
    description: Texts
    columns: list[DictionaryColumn]


class DataDictionary(msgspec.Struct):
    """Every column of every table of a release, in Persian and English."""

    tables: list[DictionaryTable]
    notes: Texts


class ReleaseTableOut(msgspec.Struct):
    """A table of a published release as JSON: its columns, then one object per row (null
    for a missing value); the columns are described by /api/v1/releases/dictionary."""

    release: int
    period: str
    table: str
    columns: list[str]
    rows: list[dict[str, str | int | float | bool | None]]


class ReleaseSnapshotOut(msgspec.Struct, kw_only=True):
    """The stored snapshot of a release (`snapshot.json`), byte for byte: its SHA-256 is the
    release's content_hash."""

    format: int
    period: str
    period_start: str
    period_end: str
    complete: bool
    response_count: int
    tables: dict[str, Any]
    methodology: str
    names: dict[str, Any] = {}
    notes: dict[str, Any] = {}
    changes: list[Any] = []
    change_note: str = ""
    data_as_of: str | None = None
    drivers: list[str] = []
    drivers_from: str | None = None
    plan_versions: list[Any] = []
    questionnaire_versions: list[Any] = []
    previous_period: str | None = None
    previous_response_count: int | None = None
    supersedes_id: int | None = None


@cache
def _dictionary() -> DataDictionary:
    return msgspec.convert(dictionary_json(), DataDictionary)


# Open data answers GET and HEAD, with ETags and 304s (survey.http.conditional).
GET_OR_HEAD = [HttpMethod.GET, HttpMethod.HEAD]
CONDITIONAL = [conditional_get_middleware]


def _json(body: Any, *, cache: str, status: int = 200) -> Response[Any]:
    headers = {"Cache-Control": cache}
    return Response(body, media_type=MediaType.JSON, headers=headers, status_code=status)


def _file(found: ReleaseFile) -> Response[Any]:
    headers = {"Cache-Control": IMMUTABLE}
    if found.filename:
        headers["Content-Disposition"] = f'inline; filename="{found.filename}"'
    return Response(found.content, media_type=found.media_type, headers=headers)


class ReleaseController(Controller):
    path = "/api/v1/releases"
    tags = ("releases",)

    # -- open data ------------------------------------------------------------------------
    @route(
        "/",
        summary="Published releases, newest first",
        sync_to_thread=True,
        http_method=GET_OR_HEAD,
        middleware=CONDITIONAL,
    )
    def list_published(self, context: Context) -> Response[ReleaseList]:
        return _json(documents.published_releases(context), cache=LISTING)

    @route(
        "/latest",
        summary="Redirect to the release the overview shows",
        status_code=307,
        sync_to_thread=True,
        http_method=GET_OR_HEAD,
        middleware=CONDITIONAL,
    )
    def latest(self, context: Context) -> Redirect:
        return Redirect(f"{self.path}/{documents.latest_published_id(context)}", status_code=307)

    @route(
        "/dictionary",
        summary="Data dictionary of the release tables",
        sync_to_thread=False,
        http_method=GET_OR_HEAD,
        middleware=CONDITIONAL,
    )
    def dictionary(self) -> Response[DataDictionary]:
        return _json(_dictionary(), cache=LISTING)

    @route(
        "/{release_id:int}",
        summary="A published release",
        sync_to_thread=True,
        http_method=GET_OR_HEAD,
        middleware=CONDITIONAL,
    )
    def show(self, context: Context, release_id: FromPath[int]) -> Response[ReleaseDetail]:
        return _json(documents.published_release(context, release_id), cache=IMMUTABLE)

    @route(
        "/{release_id:int}/{file:str}",
        summary="A table of a published release",
        description=(
            "`file` is `<table>.csv` or `<table>.json` for the tables estimates, items, "
            "small_areas and codes, or `snapshot.json` (the stored snapshot)."
        ),
        sync_to_thread=True,
        http_method=GET_OR_HEAD,
        middleware=CONDITIONAL,
        responses={
            200: ResponseSpec(
                cast(type[Any], ReleaseTableOut | ReleaseSnapshotOut),
                description="The table (JSON or CSV), or the snapshot",
                generate_examples=False,
            )
        },
        opt=extra_response_media(
            "200", text_csv="The table as CSV: UTF-8 with a byte-order mark, one header line"
        ),
    )
    def file(
        self, context: Context, release_id: FromPath[int], file: FromPath[str]
    ) -> Response[Any]:
        return _file(documents.release_file(context, release_id, file))

    # -- staff workflow -------------------------------------------------------------------
    @post(
        "/",
        guards=[staff(*WRITERS)],
        status_code=201,
        summary="Compute a draft release",
        sync_to_thread=True,
        dependencies=documented_body(
            PeriodIn, examples=[json_example("A quarter", {"period": "1405-Q1"})]
        ),
    )
    def create(self, context: Context, principal: Caller, body: RawBody) -> Response[ReleaseDetail]:
        period = parse_body(body, PeriodIn).period
        draft = documents.create_release(context, principal, period)
        return _json(draft, cache="no-store", status=201)

    @get(
        "/drafts", guards=[staff(*READERS, "agency")], summary="Draft releases", sync_to_thread=True
    )
    def drafts(self, context: Context) -> Response[ReleaseList]:
        return _json(documents.draft_releases(context), cache="no-store")

    @get(
        "/{release_id:int}/preview",
        guards=[staff(*READERS, "agency")],
        summary="Any release with its estimates (staff preview; agency operators: their own)",
        sync_to_thread=True,
    )
    def preview(
        self, context: Context, principal: Caller, release_id: FromPath[int]
    ) -> Response[ReleasePreview]:
        return _json(documents.preview_release(context, principal, release_id), cache="no-store")

    @post(
        "/{release_id:int}/publish",
        guards=[staff(*WRITERS)],
        status_code=200,
        summary="Publish a draft (a published release never changes)",
        sync_to_thread=True,
    )
    def publish(
        self, context: Context, principal: Caller, release_id: FromPath[int]
    ) -> Response[ReleaseDetail]:
        return _json(documents.publish_release(context, principal, release_id), cache="no-store")

    @post(
        "/{release_id:int}/corrections",
        guards=[staff(*WRITERS)],
        status_code=201,
        summary="A correcting draft of a published release",
        sync_to_thread=True,
        dependencies=documented_body(
            CorrectionIn,
            examples=[json_example("Why", {"note": "late transactions of the Fars offices"})],
        ),
    )
    def correct(
        self, context: Context, principal: Caller, release_id: FromPath[int], body: RawBody
    ) -> Response[ReleaseDetail]:
        note = parse_body(body, CorrectionIn).note
        draft = documents.correct_release(context, principal, release_id, note)
        return _json(draft, cache="no-store", status=201)
