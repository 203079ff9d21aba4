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
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template

from survey.access import sessions
from survey.context import AppContext
from survey.errors import NotAuthenticated
from survey.http.dependencies import Caller, Context
from survey.http.guards import CSRF_FIELD, SESSION_COOKIE, csrf_token, staff
from survey.kernel.csrf import CsrfSigner
from survey.kernel.locale import language_or_default, other_language
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
        "wrong": "نام کاربری یا گذرواژه نادرست است، یا تلاش‌های ناموفق پیاپی حساب را برای "
        "۱۵ دقیقه قفل کرده است.",
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
        "wrong": "Wrong username or password, or too many failed attempts (the account is "
        "then locked for 15 minutes).",
        "stale": "This form has expired; please try again.",
        "signed_in_as": "Signed in as",
        "logout_title": "Sign out",
        "logout": "Sign out",
        "signed_out": "You are not signed in.",
    },
}


@lru_cache(maxsize=8)
def _signer(secret_key: bytes) -> CsrfSigner:
    """The login form's signer (one per secret key: deriving its key is not free)."""
    return CsrfSigner(secret_key)


def _lang(request: Request[Any, Any, Any]) -> str:
    return language_or_default(request.query_params.get("lang"))


def safe_next(value: str | None) -> str:
    """Only a path on this site (never `//host` or `https://...`): no open redirects."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return DEFAULT_NEXT
    return value


def _secure(context: AppContext) -> bool:
    return context.settings.public_base_url.startswith("https://")


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


def _login_page(
    request: Request[Any, Any, Any],
    context: AppContext,
    *,
    next_path: str,
    status: int = 200,
    error: str = "",
    username: str = "",
) -> Template:
    lang = _lang(request)
    nonce = request.cookies.get(LOGIN_COOKIE) or CsrfSigner.new_nonce()
    other = other_language(lang)
    page = Template(
        template_name="access/login.html.j2",
        context={
            "lang": lang,
            "words": WORDS[lang],
            "other_lang": other,
            "other_url": f"/login?lang={other}&next={quote(next_path, safe='/')}",
            "action_url": f"/login?lang={lang}",
            "csrf_token": _signer(context.settings.secret_key).field_for(nonce, LOGIN_PURPOSE),
            "next": next_path,
            "error": error,
            "username": username,
            "signed_in_as": sessions.signed_in_as(context, request.cookies.get(SESSION_COOKIE)),
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
            secure=_secure(context),
        )
    )
    return page


def _refusal(lang: str, refused: NotAuthenticated) -> str:
    """What the form says to a refused sign-in, in the page's language."""
    return WORDS[lang]["wrong"]  # the same for every refusal: no hint that a username exists


def _signed_in(context: AppContext, signed: sessions.SignedIn, next_path: str) -> Redirect:
    """On to `next` with the session cookie."""
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
            secure=_secure(context),
            max_age=int(SESSION_LIFETIME.total_seconds()),
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _signed_out() -> Redirect:
    """To the sign-in form, the session cookie cleared."""
    response: Redirect = Redirect("/login", status_code=303)
    response.cookies.append(
        Cookie(key=SESSION_COOKIE, value="", path="/", max_age=0, httponly=True)
    )
    return response


class LoginController(Controller):
    path = "/"
    tags = ("staff",)

    @get("/login", include_in_schema=False, sync_to_thread=True)
    def login_form(self, request: Request[Any, Any, Any], context: Context) -> Template:
        next_path = safe_next(request.query_params.get("next"))
        return _login_page(request, context, next_path=next_path)

    @post("/login", include_in_schema=False, status_code=303)
    async def login(self, request: Request[Any, Any, Any], context: Context) -> Response[Any]:
        form = await request.form()
        next_path = safe_next(form.get("next"))
        username = str(form.get("username") or "")[:80]
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not _signer(context.settings.secret_key).verify(
            nonce, LOGIN_PURPOSE, form.get(CSRF_FIELD)
        ):
            stale = WORDS[_lang(request)]["stale"]
            return _login_page(
                request, context, next_path=next_path, status=403, error=stale, username=username
            )
        password = str(form.get("password") or "")
        signed = await anyio.to_thread.run_sync(
            lambda: sessions.attempt_sign_in(context, username, password, client=_client(request))
        )
        if isinstance(signed, NotAuthenticated):
            error = _refusal(_lang(request), signed)
            return _login_page(
                request, context, next_path=next_path, status=401, error=error, username=username
            )
        return _signed_in(context, signed, next_path)

    @get("/logout", include_in_schema=False, sync_to_thread=True)
    def logout_form(self, request: Request[Any, Any, Any], context: Context) -> Template:
        lang = _lang(request)
        other = other_language(lang)
        return Template(
            template_name="access/logout.html.j2",
            context={
                "lang": lang,
                "words": WORDS[lang],
                "other_lang": other,
                "other_url": f"/logout?lang={other}",
                "signed_in_as": sessions.signed_in_as(context, request.cookies.get(SESSION_COOKIE)),
                "csrf_token": csrf_token(request) or "",
            },
            media_type=MediaType.HTML,
            headers={"Cache-Control": "no-store"},
        )

    @post("/logout", include_in_schema=False, status_code=303)
    async def logout(self, request: Request[Any, Any, Any], context: Context) -> Response[Any]:
        """End the session; needs the session's CSRF token so other sites cannot sign you out."""
        token = request.cookies.get(SESSION_COOKIE)
        expected = csrf_token(request)
        given = (await request.form()).get(CSRF_FIELD) or request.headers.get("x-csrf-token")
        if token and expected and given and hmac.compare_digest(str(given), expected):
            await anyio.to_thread.run_sync(sessions.end_session, context, token)
        elif token:
            return Response(
                {"error": "signing out needs the session's CSRF token (the form on /logout)"},
                status_code=403,
                media_type=MediaType.JSON,
            )
        return _signed_out()

    @get("/api/v1/me", guards=[staff(*STAFF_ROLES)], sync_to_thread=False)
    def me(self, request: Request[Any, Any, Any], principal: Caller) -> sessions.WhoAmI:
        """Who is calling; with a session cookie also the CSRF token for changes."""
        bearer = bool(request.headers.get("authorization"))
        token = None if bearer else csrf_token(request)
        return sessions.WhoAmI.of(principal, csrf_token=token, bearer=bearer)
