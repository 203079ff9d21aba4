"""One ASGI middleware for the hygiene every response and request needs: security headers,
request size limits and per-client rate limits on the public endpoints.

Headers (added unless the route set its own, as the answering pages do):
- `Content-Security-Policy`: scripts only from this site (no page has any; no inline script
  is allowed), no plugins, no framing (`frame-ancestors 'none'`), forms post only here. Styles:
  the answering and questionnaire pages put their stylesheet in a `<style>` block, so
  `style-src` allows `'unsafe-inline'`; inline styles cannot run code, every value in a page is
  autoescaped, and keeping one self-contained page matters on slow phones. The API docs under
  `/schema` get the same policy: their viewers are this site's `/static/` files, started by a
  script file, not an inline one (survey.http.openapi).
- `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` (for old browsers),
  `Referrer-Policy: no-referrer` everywhere (survey links carry their token in the URL, staff
  pages may too), `Strict-Transport-Security` when the public base URL is https.

Size limits: a request whose body is larger than the limit for its path is refused with 413,
at once from `Content-Length`, or while the body streams in. Rate limits: token buckets per
client address for `POST /login` and the SMS webhooks (a stricter bucket counts webhook calls
refused for a bad signature); over the limit -> 429 with `Retry-After`. The answering links
`/s/...` keep their own throttle (survey.kernel.limits); a 429 from it gets a
`Retry-After` here. Buckets live in the process: each worker keeps its own, so the effective
limit is the worker count times the figures below.

A browser (Accept: text/html) that GETs a staff page without being signed in is sent to
`/login?next=...` (303) instead of getting a JSON 401.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from survey.config import Settings
from survey.kernel.limits import Bucket

__all__ = [
    "LIMITS",
    "BodyLimit",
    "Limiter",
    "RateRule",
    "security_headers_hook",
    "security_middleware",
]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"
NO_CSP_PREFIXES: tuple[str, ...] = ()  # every page gets the policy (the API docs too)
ANSWERING_RETRY_AFTER = 30  # the answering throttle's strict bucket refills one per 30 s


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """The largest body (bytes) accepted on paths starting with `prefix`."""

    prefix: str
    max_bytes: int


@dataclass(frozen=True, slots=True)
class RateRule:
    """A bucket per client for requests with `method` on paths starting with `prefix`.

    `requests` (optional) is spent by every request and refuses it while empty. `misses`
    (optional) is spent by each request the route refused with 401; once it is empty such a
    refusal is answered 429 with Retry-After instead. A request the route accepts is never
    refused for the misses of others at the same address (a correctly signed webhook call
    gets through whatever badly signed calls came from there): slow for a guesser, free for
    the provider.
    """

    name: str
    method: str
    prefix: str
    requests: Bucket | None
    misses: Bucket | None = None


LIMITS: tuple[BodyLimit, ...] = (
    BodyLimit("/login", 8 * 1024),
    BodyLimit("/logout", 8 * 1024),
    BodyLimit("/api/v1/sms/", 64 * 1024),
    BodyLimit("/s/", 256 * 1024),
)
RATE_RULES: tuple[RateRule, ...] = (
    RateRule("login", "POST", "/login", Bucket(burst=10, per_second=1 / 6)),
    # The SMS provider's webhooks: only badly signed calls are counted (their signature is
    # checked by the route, an HMAC, before anything else is read).
    RateRule("sms-webhook", "POST", "/api/v1/sms/", None, misses=Bucket(20, 1 / 30)),
)


class Limiter:
    """Token buckets per (rule, client); thread-safe; `monotonic` injectable for tests."""

    MAX_KEYS = 100_000

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._now = monotonic
        self._state: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: tuple[str, str], bucket: Bucket) -> float:
        """Spend one token: 0 when allowed, else the seconds until one is available."""
        with self._lock:
            level = self._level(key, bucket)
            if level < 1.0:
                return (1.0 - level) / bucket.per_second
            if len(self._state) >= self.MAX_KEYS:
                self._state.clear()
            self._state[key] = (level - 1.0, self._now())
            return 0.0

    def wait(self, key: tuple[str, str], bucket: Bucket) -> float:
        """Seconds until the bucket has a token (0: it has one now); spends nothing."""
        with self._lock:
            level = self._level(key, bucket)
            return 0.0 if level >= 1.0 else (1.0 - level) / bucket.per_second

    def _level(self, key: tuple[str, str], bucket: Bucket) -> float:
        now = self._now()
        tokens, at = self._state.get(key, (bucket.burst, now))
        return min(bucket.burst, tokens + (now - at) * bucket.per_second)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value
    return None


BUSY_PAGE = """<!doctype html>
<html lang="fa" dir="rtl"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>تلاش‌های زیاد · Too many attempts</title>
<link rel="stylesheet" href="/static/login.css"></head><body><main>
<h1>تلاش‌های زیاد</h1><p>لطفاً {seconds} ثانیه دیگر دوباره تلاش کنید.</p>
<h1 lang="en" dir="ltr">Too many attempts</h1>
<p lang="en" dir="ltr">Please try again in {seconds} seconds.</p>
<p><a href="/login">/login</a></p></main></body></html>
"""


async def _send_error(
    send: Send,
    status: int,
    message: str,
    extra: list[tuple[bytes, bytes]],
    *,
    html: str | None = None,
) -> None:
    """A JSON error, or the given page for a browser (Accept: text/html)."""
    body = json.dumps({"error": message}).encode() if html is None else html.encode()
    content_type = b"application/json" if html is None else b"text/html; charset=utf-8"
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": headers,
    }
    await send(start)
    await send(_body(body))


def _body(body: bytes) -> HTTPResponseBodyEvent:
    """The one body message of a response."""
    return {"type": "http.response.body", "body": body, "more_body": False}


def _wants_login_page(scope: HTTPScope) -> bool:
    """A browser asking for a staff page (GET, HTML, not the API): a 401 becomes a redirect
    to the sign-in form, which brings it back here afterwards."""
    if scope["method"] != "GET" or scope["path"].startswith(("/api/", "/s/", "/login")):
        return False
    accept = (_header(scope, b"accept") or b"").decode("latin-1")
    return "text/html" in accept


async def _redirect_to_login(
    send: Send, scope: HTTPScope, decorate: Callable[[HTTPResponseStartEvent], None]
) -> None:
    target = scope["path"]
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    location = "/login?next=" + quote(target, safe="")
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 303,
        "headers": [(b"location", location.encode()), (b"content-length", b"0")],
    }
    decorate(start)
    await send(start)
    await send(_body(b""))


class _TooLarge(HTTPException):
    """Raised from `receive` while a handler reads the body: the app maps it to a 413."""

    status_code = 413


_HANDLED = "survey.security_headers"  # scope key: this response start got them already
_BASE_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_CSP_HEADER = (b"content-security-policy", CSP.encode())
_HSTS_HEADER = (b"strict-transport-security", HSTS.encode())
_RETRY_HEADER = (b"retry-after", str(ANSWERING_RETRY_AFTER).encode())


def _wanted_headers(*, csp: bool, hsts: bool) -> tuple[tuple[bytes, bytes], ...]:
    return (
        *_BASE_HEADERS,
        *((_CSP_HEADER,) if csp else ()),
        *((_HSTS_HEADER,) if hsts else ()),
    )


def security_headers_hook(settings: Settings) -> Callable[[Message, Scope], Awaitable[None]]:
    """A `before_send` hook adding the headers to responses no route made (404 for an unknown
    path, 405), which route middleware never sees; routes' responses already have them."""
    hsts = settings.public_base_url.startswith("https://")

    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start" and not _extras(scope).get(_HANDLED):
            _add_headers(str(scope.get("path", "")), message, hsts=hsts)

    return hook


def _extras(scope: Scope) -> dict[str, Any]:
    # The ASGI scope is a plain dict at run time; its TypedDict type lists only ASGI's keys.
    return cast("dict[str, Any]", scope)


def _add_headers(path: str, message: HTTPResponseStartEvent, *, hsts: bool) -> None:
    wanted = _wanted_headers(csp=not path.startswith(NO_CSP_PREFIXES), hsts=hsts)
    _extend_headers(message, wanted)


def _extend_headers(
    message: HTTPResponseStartEvent, wanted: tuple[tuple[bytes, bytes], ...]
) -> None:
    """Append the `wanted` headers the response did not set itself (keys are lower case in
    the ASGI messages Litestar and this module write; compared case-insensitively anyway)."""
    headers: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
    present = {key.lower() for key, _ in headers}
    if message["status"] == 429:
        wanted = (*wanted, _RETRY_HEADER)
    headers.extend(item for item in wanted if item[0] not in present)
    message["headers"] = headers


def security_middleware(
    settings: Settings, *, limiter: Limiter | None = None
) -> Callable[[ASGIApp], ASGIApp]:
    """The middleware factory for `Litestar(middleware=[...])`; the limiter is shared by every
    route (Litestar builds a middleware stack per route)."""
    shared = limiter or Limiter()
    default_limit = settings.max_request_bytes
    hsts = settings.public_base_url.startswith("https://")

    def body_limit(path: str) -> int:
        for limit in LIMITS:
            if path.startswith(limit.prefix):
                return min(limit.max_bytes, default_limit)
        return default_limit

    with_csp = _wanted_headers(csp=True, hsts=hsts)
    without_csp = _wanted_headers(csp=False, hsts=hsts)

    def add_headers(path: str, message: HTTPResponseStartEvent) -> None:
        _extend_headers(message, without_csp if path.startswith(NO_CSP_PREFIXES) else with_csp)

    def rule_for(method: str, path: str) -> RateRule | None:
        for rule in RATE_RULES:
            if method == rule.method and path.startswith(rule.prefix):
                return rule
        return None

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            path: str = scope["path"]
            address = scope.get("client")
            client = address[0] if address else "unknown"
            rule = rule_for(scope["method"], path)
            to_login = _wants_login_page(scope)
            swallowed = False
            started = False

            async def send_with_headers(message: Message) -> None:
                nonlocal swallowed, started
                if swallowed:
                    return
                if message["type"] == "http.response.start":
                    started = True
                    _extras(scope)[_HANDLED] = True
                    if to_login and message["status"] == 401:
                        swallowed = True  # the JSON 401 body is replaced by the redirect
                        await _redirect_to_login(send, scope, lambda m: add_headers(path, m))
                        return
                    if rule is not None and rule.misses is not None and message["status"] == 401:
                        wait = shared.take((rule.name + ":misses", client), rule.misses)
                        if wait:  # this address has used up its refusals: slow it down
                            swallowed = True
                            await _send_error(
                                with_headers,
                                429,
                                f"too many refused requests from this address; retry after "
                                f"{max(1, math.ceil(wait))} seconds",
                                [(b"retry-after", str(max(1, math.ceil(wait))).encode())],
                            )
                            return
                    add_headers(path, message)
                await send(message)

            async def with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    add_headers(path, message)
                await send(message)

            if rule is not None and rule.requests is not None:
                wait = shared.take((rule.name, client), rule.requests)
                if wait:
                    seconds = max(1, math.ceil(wait))
                    browser = "text/html" in (_header(scope, b"accept") or b"").decode("latin-1")
                    await _send_error(
                        send_with_headers,
                        429,
                        f"too many requests from this address; retry after {seconds} seconds",
                        [(b"retry-after", str(seconds).encode())],
                        html=BUSY_PAGE.format(seconds=seconds) if browser else None,
                    )
                    return

            limit = body_limit(path)
            declared = _header(scope, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await _send_error(
                    send_with_headers,
                    413,
                    f"the request body is {int(declared)} bytes; at most {limit} are accepted "
                    f"on {path}",
                    [],
                )
                return
            received = 0

            async def counting_receive() -> ReceiveMessage:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise _TooLarge(
                            detail=f"the request body is larger than the {limit} bytes "
                            f"accepted on {path}"
                        )
                return message

            try:
                await app(scope, counting_receive, send_with_headers)
            except _TooLarge:
                if not started:
                    await _send_error(
                        send_with_headers,
                        413,
                        f"the request body is larger than the {limit} bytes accepted on {path}",
                        [],
                    )

        return middleware

    return factory
