"""Releases over HTTP: the open data (anyone; published releases only) and the staff workflow.

Open data (no key; a draft or an unknown id is 404 alike):

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

from typing import Any

import msgspec
from litestar import Controller, MediaType, Response, get, post
from litestar.params import FromPath, RawBody
from litestar.response import Redirect

from survey.http.bodies import parse_body
from survey.http.dependencies import Caller, Context
from survey.http.guards import staff
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


def _json(body: Any, *, cache: str, status: int = 200, etag: str | None = None) -> Response[Any]:
    headers = {"Cache-Control": cache}
    if etag:
        headers["ETag"] = f'"{etag}"'
    return Response(body, media_type=MediaType.JSON, headers=headers, status_code=status)


def _file(found: ReleaseFile) -> Response[Any]:
    headers = {"Cache-Control": IMMUTABLE}
    if found.etag:
        headers["ETag"] = f'"{found.etag}"'
    if found.filename:
        headers["Content-Disposition"] = f'inline; filename="{found.filename}"'
    return Response(found.content, media_type=found.media_type, headers=headers)


class ReleaseController(Controller):
    path = "/api/v1/releases"
    tags = ("releases",)

    # -- open data ------------------------------------------------------------------------
    @get("/", summary="Published releases, newest first", sync_to_thread=True)
    def list_published(self, context: Context) -> Response[ReleaseList]:
        return _json(documents.published_releases(context), cache=LISTING)

    @get("/latest", summary="Redirect to the release the overview shows", sync_to_thread=True)
    def latest(self, context: Context) -> Redirect:
        return Redirect(f"{self.path}/{documents.latest_published_id(context)}", status_code=307)

    @get("/dictionary", summary="Data dictionary of the release tables", sync_to_thread=False)
    def dictionary(self) -> Response[Any]:
        return _json(dictionary_json(), cache=LISTING)

    @get("/{release_id:int}", summary="A published release", sync_to_thread=True)
    def show(self, context: Context, release_id: FromPath[int]) -> Response[ReleaseDetail]:
        found = documents.published_release(context, release_id)
        return _json(found, cache=IMMUTABLE, etag=found.content_hash)

    @get(
        "/{release_id:int}/{file:str}",
        summary="A table of a published release",
        sync_to_thread=True,
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
    )
    def correct(
        self, context: Context, principal: Caller, release_id: FromPath[int], body: RawBody
    ) -> Response[ReleaseDetail]:
        note = parse_body(body, CorrectionIn).note
        draft = documents.correct_release(context, principal, release_id, note)
        return _json(draft, cache="no-store", status=201)
