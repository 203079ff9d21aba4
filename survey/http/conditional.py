"""Conditional GET and HEAD for cacheable read-only routes (the open data API).

Put on a controller or route that accepts GET and HEAD (`http_method=[GET, HEAD]`):

- every 200 answer gets a strong `ETag`, the SHA-256 of the bytes sent (unless the handler
  set one), so it changes exactly when the representation does (a new file format included);
- a request whose `If-None-Match` names that tag (or `*`), weak or strong, gets `304 Not
  Modified` with the tag, `Cache-Control`, `Vary` and no body (RFC 9110, section 13.1.2);
- `HEAD` gets the headers GET would get (`Content-Type`, `Content-Length`, `ETag`, ...) and no
  body (section 9.3.2).

The answer is held in memory to hash it: only for routes whose answers are whole documents of a
bounded size (a release's tables), never for streams.
"""

from __future__ import annotations

import hashlib
from typing import Any, cast

from litestar.types import ASGIApp, HTTPResponseStartEvent, HTTPScope, Message, Receive, Scope, Send

__all__ = ["conditional_get_middleware", "etag_matches"]

# Headers a 304 carries (the ones a 200 would have sent that a cache must update).
_NOT_MODIFIED_HEADERS = {
    *(b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary"),
}


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Whether an `If-None-Match` value names `etag` (weak comparison, lists and `*` too)."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.strip().removeprefix("W/")
    return any(
        candidate.strip().removeprefix("W/") == wanted
        for candidate in if_none_match.split(",")
        if candidate.strip()
    )


def _header(headers: Any, name: bytes) -> bytes | None:
    for key, value in headers:
        if bytes(key).lower() == name:
            return bytes(value)
    return None


def conditional_get_middleware(app: ASGIApp) -> ASGIApp:
    """ETag on every 200, 304 for a matching `If-None-Match`, HEAD without a body."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        method = cast(HTTPScope, scope)["method"] if scope["type"] == "http" else ""
        if method not in ("GET", "HEAD"):
            await app(scope, receive, send)
            return
        head = method == "HEAD"
        asked = _header(scope.get("headers", []), b"if-none-match")
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                await _answer(send, start, b"".join(chunks), head=head, asked=asked)

        await app(scope, receive, hold)

    return middleware


async def _answer(
    send: Send, start: dict[str, Any], body: bytes, *, head: bool, asked: bytes | None
) -> None:
    headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", [])]
    status = int(start.get("status", 200))
    if status == 200:
        etag = _header(headers, b"etag")
        if etag is None:
            etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
            headers.append((b"etag", etag))
        if asked is not None and etag_matches(asked.decode("latin-1"), etag.decode("latin-1")):
            kept = [(k, v) for k, v in headers if k.lower() in _NOT_MODIFIED_HEADERS]
            await send({"type": "http.response.start", "status": 304, "headers": kept})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
    if _header(headers, b"content-length") is None:
        headers.append((b"content-length", str(len(body)).encode()))
    ready: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": headers,
    }
    await send(ready)
    await send({"type": "http.response.body", "body": b"" if head else body, "more_body": False})
