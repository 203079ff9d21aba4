"""Staff sign-in pages and who-am-I (thin: parse, call survey.access.sessions, set cookies).

- `GET  /login[?next=/path&lang=en]`  the form (Persian by default);
- `POST /login`   username, password, CSRF field -> 303 to `next` with the session cookie, or
                  the form again with 401 (wrong password, locked account) / 403 (stale form);
- `GET  /logout`  a confirmation form; `POST /logout` ends the session (CSRF field needed);
- `GET  /api/v1/me`  who the caller is, and the CSRF token scripts send with changes.

The login form has its own double-submit CSRF cookie (signed like the answering forms'), so
another site cannot sign a browser in under the attacker's account. The session cookie is
HTTP-only, SameSite=Lax, `Secure` when the public base URL is https, and lasts as long as the
session (`survey.access.keys.SESSION_LIFETIME`). Failed attempts are rate-limited per client by
survey.http.security and counted per account by survey.access.sessions (lockout).
"""

from __future__ import annotations

import hmac
from typing import Any, ClassVar
from urllib.parse import quote

import anyio.to_thread
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template

from survey.access import sessions
from survey.context import AppContext
from survey.errors import NotAuthenticated
from survey.http.guards import CSRF_FIELD, SESSION_COOKIE, csrf_token, principal_of, staff
from survey.kernel.csrf import CsrfSigner
from survey.kernel.db import transaction
from survey.kernel.principal import SESSION_LIFETIME, STAFF_ROLES

LOGIN_COOKIE = "staff_login"
LOGIN_PURPOSE = "staff-login"
DEFAULT_NEXT = "/ingestion"
WORDS: dict[str, dict[str, str]] = {
    "fa": {
        "title": "ورود کارکنان",
        "switch": "English",
        "username": "نام کاربری",
        "password": "گذرواژه",
        "submit": "ورود",
        "wrong": "نام کاربری یا گذرواژه نادرست است.",
        "locked": "به دلیل تلاش‌های ناموفق پیاپی، این حساب تا ساعت {until} (UTC) قفل است.",
        "stale": "این فرم منقضی شده است؛ دوباره تلاش کنید.",
        "signed_in_as": "وارد شده با نام",
        "logout_title": "خروج",
        "logout": "خروج از حساب",
        "signed_out": "شما وارد نشده‌اید.",
    },
    "en": {
        "title": "Staff sign-in",
        "switch": "فارسی",
        "username": "Username",
        "password": "Password",
        "submit": "Sign in",
        "wrong": "Wrong username or password.",
        "locked": "Too many failed attempts: this account is locked until {until} UTC.",
        "stale": "This form has expired; please try again.",
        "signed_in_as": "Signed in as",
        "logout_title": "Sign out",
        "logout": "Sign out",
        "signed_out": "You are not signed in.",
    },
}
_SIGNER_KEY = "login_csrf_signer"


def _context(request: Request[Any, Any, Any]) -> AppContext:
    return request.app.state.context  # type: ignore[no-any-return]


def _signer(request: Request[Any, Any, Any]) -> CsrfSigner:
    state = request.app.state
    signer = state.get(_SIGNER_KEY)
    if signer is None:
        signer = state[_SIGNER_KEY] = CsrfSigner(_context(request).settings.secret_key)
    return signer  # type: ignore[no-any-return]


def _lang(request: Request[Any, Any, Any]) -> str:
    return "en" if request.query_params.get("lang") == "en" else "fa"


def safe_next(value: str | None) -> str:
    """Only a path on this site (never `//host` or `https://...`): no open redirects."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return DEFAULT_NEXT
    return value


def _secure(request: Request[Any, Any, Any]) -> bool:
    return _context(request).settings.public_base_url.startswith("https://")


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


def _login_page(
    request: Request[Any, Any, Any],
    lang: str,
    *,
    next_path: str,
    status: int = 200,
    error: str = "",
    username: str = "",
) -> Template:
    nonce = request.cookies.get(LOGIN_COOKIE) or CsrfSigner.new_nonce()
    signed_in = _current(request)
    other = "en" if lang == "fa" else "fa"
    page = Template(
        template_name="access/login.html.j2",
        context={
            "lang": lang,
            "words": WORDS[lang],
            "other_lang": other,
            "other_url": f"/login?lang={other}&next={quote(next_path, safe='/')}",
            "action_url": f"/login?lang={lang}",
            "csrf_token": _signer(request).field_for(nonce, LOGIN_PURPOSE),
            "next": next_path,
            "error": error,
            "username": username,
            "signed_in_as": signed_in,
        },
        status_code=status,
        media_type=MediaType.HTML,
        headers={"Cache-Control": "no-store"},
    )
    page.cookies.append(
        Cookie(
            key=LOGIN_COOKIE,
            value=nonce,
            path="/login",
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
    )
    return page


def _current(request: Request[Any, Any, Any]) -> str | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    context = _context(request)
    try:
        return context.keys.resolve_session(token, now=context.clock()).name
    except NotAuthenticated:
        return None


class LoginController(Controller):
    path = "/"
    tags: ClassVar[list[str]] = ["staff"]

    @get("/login", include_in_schema=False, sync_to_thread=True)
    def login_form(self, request: Request[Any, Any, Any]) -> Template:
        return _login_page(
            request, _lang(request), next_path=safe_next(request.query_params.get("next"))
        )

    @post("/login", include_in_schema=False, status_code=303)
    async def login(self, request: Request[Any, Any, Any]) -> Any:
        form = await request.form()
        lang = _lang(request)
        next_path = safe_next(form.get("next"))
        username = str(form.get("username") or "")[:80]
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not _signer(request).verify(nonce, LOGIN_PURPOSE, form.get(CSRF_FIELD)):
            return _login_page(
                request,
                lang,
                next_path=next_path,
                status=403,
                error=WORDS[lang]["stale"],
                username=username,
            )
        password = str(form.get("password") or "")
        context = _context(request)
        now = context.clock()

        def work() -> sessions.SignedIn | NotAuthenticated:
            # A failure is returned, not raised, so its count and audit row are committed.
            with transaction(context.sessions) as session:
                try:
                    return sessions.sign_in(
                        session, username, password, now=now, client=_client(request)
                    )
                except NotAuthenticated as exc:
                    return exc

        signed = await anyio.to_thread.run_sync(work)
        if isinstance(signed, sessions.AccountLocked):
            message = WORDS[lang]["locked"].format(until=f"{signed.until:%H:%M}")
            return _login_page(
                request, lang, next_path=next_path, status=401, error=message, username=username
            )
        if isinstance(signed, NotAuthenticated):
            return _login_page(
                request,
                lang,
                next_path=next_path,
                status=401,
                error=WORDS[lang]["wrong"],
                username=username,
            )
        if next_path == DEFAULT_NEXT and signed.role == "agency":
            next_path = "/"  # the ingestion page shows every agency: not for operators
        response: Redirect = Redirect(next_path, status_code=303)
        response.cookies.append(
            Cookie(
                key=SESSION_COOKIE,
                value=signed.token,
                path="/",
                httponly=True,
                samesite="lax",
                secure=_secure(request),
                max_age=int(SESSION_LIFETIME.total_seconds()),
            )
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @get("/logout", include_in_schema=False, sync_to_thread=True)
    def logout_form(self, request: Request[Any, Any, Any]) -> Template:
        lang = _lang(request)
        other = "en" if lang == "fa" else "fa"
        return Template(
            template_name="access/logout.html.j2",
            context={
                "lang": lang,
                "words": WORDS[lang],
                "other_lang": other,
                "other_url": f"/logout?lang={other}",
                "signed_in_as": _current(request),
                "csrf_token": csrf_token(request) or "",
            },
            media_type=MediaType.HTML,
            headers={"Cache-Control": "no-store"},
        )

    @post("/logout", include_in_schema=False, status_code=303)
    async def logout(self, request: Request[Any, Any, Any]) -> Any:
        """End the session; needs the session's CSRF token so other sites cannot sign you out."""
        token = request.cookies.get(SESSION_COOKIE)
        expected = csrf_token(request)
        given = (await request.form()).get(CSRF_FIELD) or request.headers.get("x-csrf-token")
        if token and expected and given and hmac.compare_digest(str(given), expected):
            context = _context(request)
            now = context.clock()

            def work() -> None:
                with transaction(context.sessions) as session:
                    sessions.sign_out(session, token, now=now)
                context.keys.forget()

            await anyio.to_thread.run_sync(work)
        elif token:
            return Response(
                {"error": "signing out needs the session's CSRF token (the form on /logout)"},
                status_code=403,
                media_type=MediaType.JSON,
            )
        response: Redirect = Redirect("/login", status_code=303)
        response.cookies.append(
            Cookie(key=SESSION_COOKIE, value="", path="/", max_age=0, httponly=True)
        )
        return response

    @get("/api/v1/me", guards=[staff(*STAFF_ROLES)], sync_to_thread=False)
    def me(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Who is calling; with a session cookie also the CSRF token for changes."""
        principal = principal_of(request)
        return {
            "username": principal.name,
            "role": principal.role,
            "agency": principal.agency_code,
            "via": "bearer" if request.headers.get("authorization") else "session",
            "csrf_token": csrf_token(request) if not request.headers.get("authorization") else None,
        }
