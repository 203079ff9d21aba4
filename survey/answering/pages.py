"""The citizen's answering pages at `/s/{token}`: server-rendered, no JavaScript, CSRF-protected.

- `GET  /s/{token}`          the questionnaire (Persian by default, the invitation's language,
                             or `?lang=en|fa`), pre-filled with saved answers;
- `POST /s/{token}`          button `action=save` stores valid answers (303 back to the form),
                             `action=submit` completes once (303 to the thank-you page); item
                             problems re-render the form with messages (200, never a 500);
- `GET  /s/{token}/thanks`   the thank-you page (reads nothing);
- `GET|POST /s/{token}/opt-out`  confirm, then stop all survey messages to the phone.

Unknown, expired, completed and opted-out links, and malformed tokens, all get the same
bilingual page with the same status (404), so a page never hints whether a token exists.
Every page carries `Referrer-Policy: no-referrer` (the token is in the URL), `no-store` and a
CSP without scripts. Requests are rate-limited per client address (survey.kernel.limits).
"""

from __future__ import annotations

import re
import threading
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from questionnaires.rendering import render_form, stylesheet
from questionnaires.schema import LANGUAGES
from survey.answering.forms import FormState, LinkUnavailable, WebAnswering
from survey.context import AppContext
from survey.kernel.csrf import COOKIE_NAME, FIELD_NAME, CsrfSigner
from survey.kernel.limits import Throttle

TEMPLATES = Path(__file__).parent / "templates"
SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
_STATE_KEY = "answering"
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


@cache
def page_words() -> dict[str, dict[str, str]]:
    """The pages' phrases per language (templates/answering/phrases.yaml)."""
    table = yaml.safe_load((TEMPLATES / "phrases.yaml").read_text("utf-8"))
    return {lang: {str(k): str(v) for k, v in table[lang].items()} for lang in LANGUAGES}


@cache
def page_css() -> str:
    return stylesheet() + (TEMPLATES / "extra.css").read_text("utf-8")


class BlankForms:
    """First-open pages (no answers yet), rendered once per questionnaire version and language
    with placeholders for the link token and the CSRF field, then filled in per request.

    Most page views are first opens, and rendering the whole questionnaire costs far more than
    two string replacements. Tokens are checked to be lower-case base32 before they get here,
    so they need no escaping; the placeholders cannot occur in questionnaire text.
    """

    TOKEN = "zqzqtokenslotzqzq"
    FIELD = "zqzqcsrfslotzqzq"

    def __init__(self) -> None:
        self._pages: dict[tuple[int, str], str] = {}
        self._lock = threading.Lock()

    def page(self, state: FormState, token: str, lang: str, csrf_field: str) -> str:
        key = (state.questionnaire_version_id, lang)
        template = self._pages.get(key)
        if template is None:
            template = form_page(state, self.TOKEN, lang, self.FIELD)
            with self._lock:
                self._pages[key] = template
        return template.replace(self.TOKEN, token).replace(self.FIELD, csrf_field)


class AnsweringParts:
    """What the pages share per app: the domain service, the CSRF signer, the throttle and
    the blank-form cache."""

    def __init__(self, context: AppContext) -> None:
        self.service = WebAnswering.from_context(context)
        self.csrf = CsrfSigner(context.settings.secret_key)
        self.throttle = Throttle()
        self.blank_forms = BlankForms()


def answering_parts(state: State) -> AnsweringParts:
    """The app's answering parts, made on first use (a test or bench may pre-set them)."""
    parts = state.get(_STATE_KEY)
    if parts is None:
        parts = AnsweringParts(state.context)
        state[_STATE_KEY] = parts
    return parts


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def _lang(request: Request[Any, Any, Any], fallback: str = "fa") -> str:
    wanted = request.query_params.get("lang")
    if wanted in LANGUAGES:
        return str(wanted)
    return fallback if fallback in LANGUAGES else "fa"


def _notice(kind: str, status: int, retry_url: str | None = None) -> Template:
    """The one bilingual page for closed links, throttling and refused forms."""
    words = page_words()
    return Template(
        template_name="answering/notice.html.j2",
        context={
            "lang": "fa",
            "words": words["fa"],
            "both": words,
            "kind": kind,
            "css": page_css(),
            "retry_url": retry_url,
        },
        status_code=status,
        headers=SECURITY_HEADERS,
        media_type=MediaType.HTML,
    )


def _page(name: str, lang: str, status: int = 200, **context: Any) -> Template:
    return Template(
        template_name=f"answering/{name}.html.j2",
        context={"lang": lang, "words": page_words()[lang], "css": page_css(), **context},
        status_code=status,
        headers=SECURITY_HEADERS,
        media_type=MediaType.HTML,
    )


def form_page(
    state: FormState,
    token: str,
    lang: str,
    csrf_field: str,
    *,
    shown: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
) -> str:
    """The questionnaire page: the questionnaires package's form with the save button, the
    opt-out link and, after a save, a "saved" notice."""
    words = page_words()[lang]
    base = f"/s/{quote(token)}"
    return render_form(
        state.questionnaire,
        lang,
        answers=state.answers if shown is None else shown,
        action_url=f"{base}?lang={lang}",
        csrf_token=csrf_field,
        errors=errors or {},
        language_url=f"{base}?lang={'en' if lang == 'fa' else 'fa'}",
        save_label=words["save"],
        notice=words["saved"] if saved else "",
        links=[(f"{base}/opt-out?lang={lang}", words["opt_out_link"])],
    )


class AnsweringController(Controller):
    path = "/s"
    include_in_schema = False

    @get("/{token:str}")
    async def show(
        self, request: Request[Any, Any, Any], token: FromPath[str], state: State
    ) -> Any:
        parts = answering_parts(state)
        client = _client(request)
        if not parts.throttle.allow_request(client):
            return _notice("too_many", 429)
        try:
            form = parts.service.open(token)
        except LinkUnavailable:
            parts.throttle.record_miss(client)
            return _notice("unavailable", 404)
        nonce = request.cookies.get(COOKIE_NAME, "")
        if not _NONCE.fullmatch(nonce):
            nonce = parts.csrf.new_nonce()
        lang = _lang(request, form.language)
        field = parts.csrf.field_for(nonce, token)
        saved = request.query_params.get("saved") == "1"
        if not form.answers and not saved and form.questionnaire_version_id:
            html = parts.blank_forms.page(form, token.strip().lower(), lang, field)
        else:
            html = form_page(form, token, lang, field, saved=saved)
        return Response(
            html,
            media_type=MediaType.HTML,
            headers={**SECURITY_HEADERS, "set-cookie": _csrf_cookie_header(request, nonce)},
        )

    @post("/{token:str}", status_code=200)
    async def save(
        self, request: Request[Any, Any, Any], token: FromPath[str], state: State
    ) -> Any:
        parts = answering_parts(state)
        client = _client(request)
        if not parts.throttle.allow_request(client):
            return _notice("too_many", 429)
        body = await request.form()
        lang = _lang(request)
        nonce = request.cookies.get(COOKIE_NAME)
        if not parts.csrf.verify(nonce, token, body.get(FIELD_NAME)):
            return _notice("form_expired", 403, retry_url=f"/s/{quote(token)}?lang={lang}")
        values = {key: body.getall(key) for key in body}
        submit = body.get("action") == "submit"
        try:
            result = parts.service.save(token, values, submit=submit)
        except LinkUnavailable:
            parts.throttle.record_miss(client)
            return _notice("unavailable", 404)
        base = f"/s/{quote(token)}"
        lang = _lang(request, result.state.language)
        if result.completed:
            return Redirect(f"{base}/thanks?lang={lang}", status_code=303, headers=SECURITY_HEADERS)
        if not result.problems:
            return Redirect(
                f"{base}?lang={lang}&saved=1", status_code=303, headers=SECURITY_HEADERS
            )
        words = page_words()[lang]
        errors = {p.item_id: words[f"problem_{p.code}"] for p in result.problems}
        html = form_page(
            result.state,
            token,
            lang,
            parts.csrf.field_for(str(nonce), token),
            shown=result.shown,
            errors=errors,
        )
        return Response(html, media_type=MediaType.HTML, headers=SECURITY_HEADERS)

    @get("/{token:str}/thanks")
    async def thanks(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Template:
        return _page("thanks", _lang(request))

    @get("/{token:str}/opt-out")
    async def opt_out_page(
        self, request: Request[Any, Any, Any], token: FromPath[str], state: State
    ) -> Any:
        parts = answering_parts(state)
        client = _client(request)
        if not parts.throttle.allow_request(client):
            return _notice("too_many", 429)
        try:
            form = parts.service.check(token)
        except LinkUnavailable:
            parts.throttle.record_miss(client)
            return _notice("unavailable", 404)
        lang = _lang(request, form.language)
        nonce = request.cookies.get(COOKIE_NAME) or parts.csrf.new_nonce()
        base = f"/s/{quote(token)}"
        page = _page(
            "opt_out",
            lang,
            action_url=f"{base}/opt-out?lang={lang}",
            back_url=f"{base}?lang={lang}",
            csrf_token=parts.csrf.field_for(nonce, token),
        )
        page.cookies.append(_csrf_cookie(request, nonce))
        return page

    @post("/{token:str}/opt-out", status_code=200)
    async def opt_out(
        self, request: Request[Any, Any, Any], token: FromPath[str], state: State
    ) -> Any:
        parts = answering_parts(state)
        client = _client(request)
        if not parts.throttle.allow_request(client):
            return _notice("too_many", 429)
        body = await request.form()
        lang = _lang(request)
        if not parts.csrf.verify(request.cookies.get(COOKIE_NAME), token, body.get(FIELD_NAME)):
            return _notice("form_expired", 403, retry_url=f"/s/{quote(token)}/opt-out?lang={lang}")
        try:
            parts.service.opt_out(token)
        except LinkUnavailable:
            parts.throttle.record_miss(client)
            return _notice("unavailable", 404)
        return _page("opted_out", lang)


def _csrf_cookie_header(request: Request[Any, Any, Any], nonce: str) -> str:
    """The `Set-Cookie` value of `_csrf_cookie`, written directly: the form page is the hottest
    response, and Litestar's Cookie goes through `http.cookies.SimpleCookie` (slow). Nonces are
    URL-safe base64 (a client's cookie is reused only when it looks like one), so they never
    need quoting."""
    secure = "; Secure" if request.scope.get("scheme") == "https" else ""
    return f"{COOKIE_NAME}={nonce}; HttpOnly; Path=/s/; SameSite=Lax{secure}"


def _csrf_cookie(request: Request[Any, Any, Any], nonce: str) -> Cookie:
    return Cookie(
        key=COOKIE_NAME,
        value=nonce,
        path="/s/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
