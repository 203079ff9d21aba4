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

from typing import Any, ClassVar

import anyio.to_thread
import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

from survey.context import AppContext
from survey.errors import NotFound
from survey.http.bodies import parse_body
from survey.http.guards import principal_of, staff
from survey.publication import releases
from survey.publication.dictionary import dictionary_json
from survey.publication.open_data import (
    parse_file_name,
    release_detail,
    release_summary,
    table_csv,
    table_frame,
    table_json,
    table_records,
)

WRITERS = ("admin", "statistician")
READERS = ("admin", "statistician", "viewer")
CSV = "text/csv; charset=utf-8"
# A published release never changes, so its files may be cached for long; listings change.
IMMUTABLE = "public, max-age=86400"
LISTING = "public, max-age=60"


class PeriodIn(msgspec.Struct, forbid_unknown_fields=True):
    period: str


class CorrectionIn(msgspec.Struct, forbid_unknown_fields=True):
    note: str


def _context(request: Request[Any, Any, Any]) -> AppContext:
    return request.app.state.context  # type: ignore[no-any-return]


def _json(body: Any, *, cache: str, status: int = 200, etag: str | None = None) -> Response[Any]:
    headers = {"Cache-Control": cache}
    if etag:
        headers["ETag"] = f'"{etag}"'
    return Response(body, media_type=MediaType.JSON, headers=headers, status_code=status)


class ReleaseController(Controller):
    path = "/api/v1/releases"
    tags: ClassVar[list[str]] = ["releases"]

    # -- open data ------------------------------------------------------------------------
    @get("/", summary="Published releases, newest first", sync_to_thread=True)
    def list_published(self, request: Request[Any, Any, Any]) -> Response[Any]:
        with _context(request).read_sessions() as session:
            found = releases.published_releases(session)
        return _json({"releases": [release_summary(r) for r in found]}, cache=LISTING)

    @get("/latest", summary="Redirect to the release the overview shows", sync_to_thread=True)
    def latest(self, request: Request[Any, Any, Any]) -> Redirect:
        with _context(request).read_sessions() as session:
            found = releases.latest_published(session)
        if found is None:
            raise NotFound("no release has been published yet")
        return Redirect(f"{self.path}/{found.id}", status_code=307)

    @get("/dictionary", summary="Data dictionary of the release tables", sync_to_thread=False)
    def dictionary(self) -> Response[Any]:
        return _json(dictionary_json(), cache=LISTING)

    @get("/{release_id:int}", summary="A published release", sync_to_thread=True)
    def show(self, request: Request[Any, Any, Any], release_id: FromPath[int]) -> Response[Any]:
        with _context(request).read_sessions() as session:
            found = releases.get_published(session, release_id)
        return _json(release_detail(found), cache=IMMUTABLE, etag=found.content_hash)

    @get(
        "/{release_id:int}/{file:str}",
        summary="A table of a published release",
        sync_to_thread=True,
    )
    def file(
        self, request: Request[Any, Any, Any], release_id: FromPath[int], file: FromPath[str]
    ) -> Response[Any]:
        if file == "snapshot.json":
            with _context(request).read_sessions() as session:
                text = releases.snapshot_text(session, release_id)
            return Response(
                text.encode("utf-8"),
                media_type=MediaType.JSON,
                headers={"Cache-Control": IMMUTABLE},
            )
        table, fmt = parse_file_name(file)
        with _context(request).read_sessions() as session:
            found = releases.get_published(session, release_id)
        frame = table_frame(found, table)
        headers = {"Cache-Control": IMMUTABLE, "ETag": f'"{found.content_hash}-{table}.{fmt}"'}
        if fmt == "csv":
            name = f"release-{found.id}-{found.period}-{table}.csv"
            headers["Content-Disposition"] = f'inline; filename="{name}"'
            return Response(table_csv(frame).encode("utf-8"), media_type=CSV, headers=headers)
        return Response(table_json(found, table, frame), media_type=MediaType.JSON, headers=headers)

    # -- staff workflow -------------------------------------------------------------------
    @post("/", guards=[staff(*WRITERS)], status_code=201, summary="Compute a draft release")
    async def create(self, request: Request[Any, Any, Any]) -> Response[Any]:
        body: PeriodIn = parse_body(await request.body(), PeriodIn)
        context, principal = _context(request), principal_of(request)
        draft = await anyio.to_thread.run_sync(
            lambda: releases.create_release(context, principal, body.period)
        )
        return _json(release_detail(draft), cache="no-store", status=201)

    @get(
        "/drafts", guards=[staff(*READERS, "agency")], summary="Draft releases", sync_to_thread=True
    )
    def drafts(self, request: Request[Any, Any, Any]) -> Response[Any]:
        with _context(request).read_sessions() as session:
            found = releases.list_releases(session, status="draft")
        return _json({"releases": [release_summary(r) for r in found]}, cache="no-store")

    @get(
        "/{release_id:int}/preview",
        guards=[staff(*READERS, "agency")],
        summary="Any release with its estimates (staff preview; agency operators: their own)",
        sync_to_thread=True,
    )
    def preview(self, request: Request[Any, Any, Any], release_id: FromPath[int]) -> Response[Any]:
        with _context(request).read_sessions() as session:
            found = releases.get_release(session, release_id)
        body = release_detail(found)
        body["published_by"] = found.published_by
        body["created_by"] = found.created_by
        estimates = table_records(table_frame(found, "estimates"))
        principal = principal_of(request)
        if principal.role == "agency":  # an operator sees only its own agency's results
            own = principal.agency_code
            estimates = [row for row in estimates if row.get("agency") == own]
            changes = body.get("changes") or []
            body["changes"] = [c for c in changes if isinstance(c, dict) and c.get("agency") == own]
        body["estimates"] = estimates
        return _json(body, cache="no-store")

    @post(
        "/{release_id:int}/publish",
        guards=[staff(*WRITERS)],
        status_code=200,
        summary="Publish a draft (a published release never changes)",
        sync_to_thread=True,
    )
    def publish(self, request: Request[Any, Any, Any], release_id: FromPath[int]) -> Response[Any]:
        done = releases.publish_release(_context(request), principal_of(request), release_id)
        return _json(release_detail(done), cache="no-store")

    @post(
        "/{release_id:int}/corrections",
        guards=[staff(*WRITERS)],
        status_code=201,
        summary="A correcting draft of a published release",
    )
    async def correct(
        self, request: Request[Any, Any, Any], release_id: FromPath[int]
    ) -> Response[Any]:
        body: CorrectionIn = parse_body(await request.body(), CorrectionIn)
        context, principal = _context(request), principal_of(request)
        draft = await anyio.to_thread.run_sync(
            lambda: releases.correct_release(context, principal, release_id, body.note)
        )
        return _json(release_detail(draft), cache="no-store", status=201)
