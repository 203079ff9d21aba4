"""The site's static files at `/static/NAME`: a fixed set of files read once, served by name.

The stylesheets of the pages, and the API documentation viewers (Swagger UI, Redoc: vendored
from npm with their licences, see static/VENDORED.txt) that /schema loads from here instead of
a CDN. Only names of files that ship in `survey/http/static/` are answered; anything else (a
NUL byte, a 5,000-character path, `..`) is a plain 404 without touching the file system, where
Litestar's generic static router answered some of those with a 500. Text files are sent
gzip-compressed to clients that accept it (the viewers are 1-2 MB, a quarter of that zipped),
compressed once per process.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

STATIC_DIR = Path(__file__).parent / "static"
MAX_AGE = 3600
COMPRESSIBLE = ("text/", "application/javascript", "application/json")
MIN_COMPRESSED_BYTES = 1024
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain"}


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str

    @property
    def compressible(self) -> bool:
        return len(self.body) >= MIN_COMPRESSED_BYTES and self.media_type.startswith(COMPRESSIBLE)


@cache
def static_files() -> dict[str, StaticFile]:
    """Every shipped file by name (read once per process: a few kilobytes of CSS)."""
    files = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file():
            body = path.read_bytes()
            media_type = (
                MEDIA_TYPES.get(path.suffix)
                or mimetypes.guess_type(path.name)[0]
                or "application/octet-stream"
            )
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            files[path.name] = StaticFile(body, media_type, etag)
    return files


@cache
def _gzipped(name: str) -> bytes:
    """The file compressed (once per process; `mtime=0` keeps the bytes the same)."""
    return gzip.compress(static_files()[name].body, compresslevel=9, mtime=0)


def _accepts_gzip(request: Request[Any, Any, Any]) -> bool:
    return any(
        part.split(";")[0].strip().lower() == "gzip"
        for part in request.headers.get("accept-encoding", "").split(",")
    )


def _answer(name: str, request: Request[Any, Any, Any]) -> Response[bytes]:
    found = static_files().get(name)
    if found is None:
        raise NotFoundException(detail="no such static file")
    headers = {"Cache-Control": f"public, max-age={MAX_AGE}", "ETag": found.etag}
    body = found.body
    if found.compressible:
        headers["Vary"] = "Accept-Encoding"
        if _accepts_gzip(request):
            body = _gzipped(name)
            headers["Content-Encoding"] = "gzip"
            headers["ETag"] = found.etag[:-1] + '-gz"'  # a representation of its own
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type=found.media_type, headers=headers)


@get("/static/{name:str}", include_in_schema=False, sync_to_thread=False)
def static_file(name: FromPath[str], request: Request[Any, Any, Any]) -> Response[bytes]:
    return _answer(name, request)


STATIC_HANDLERS = (static_file,)
