"""The site's stylesheets at `/static/NAME`: a fixed set of files read once, served by name.

Only names of files that ship in `survey/http/static/` are answered; anything else (a NUL
byte, a 5,000-character path, `..`) is a plain 404 without touching the file system, where
Litestar's generic static router answered some of those with a 500.
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str


@cache
def static_files() -> dict[str, StaticFile]:
    """Every shipped file by name (read once per process: a few kilobytes of CSS)."""
    files = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file():
            body = path.read_bytes()
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            files[path.name] = StaticFile(body, media_type, etag)
    return files


def _answer(name: str, request: Request[Any, Any, Any]) -> Response[bytes]:
    found = static_files().get(name)
    if found is None:
        raise NotFoundException(detail="no such static file")
    headers = {"Cache-Control": f"public, max-age={MAX_AGE}", "ETag": found.etag}
    if request.headers.get("if-none-match") == found.etag:
        return Response(b"", status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)


@get("/static/{name:str}", include_in_schema=False, sync_to_thread=False)
def static_file(name: FromPath[str], request: Request[Any, Any, Any]) -> Response[bytes]:
    return _answer(name, request)


STATIC_HANDLERS = (static_file,)
