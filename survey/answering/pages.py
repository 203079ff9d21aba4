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

What each page does is `survey.answering.visits`; this module reads the request into a `Visit`
and writes the outcome as a response.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from survey.answering import visits
from survey.answering.visits import AnsweringParts, Outcome, Visit
from survey.http.dependencies import provide_context
from survey.kernel.csrf import COOKIE_NAME

__all__ = ["SECURITY_HEADERS", "AnsweringController", "AnsweringParts", "answering_parts"]

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


def answering_parts(state: State) -> AnsweringParts:
    """The app's answering parts, made on first use (a test or bench may pre-set them in the
    app's state under "answering").

    The handlers call it with the `state` Litestar gives them rather than declaring it as a
    dependency: resolving a dependency costs each request about 4% of the form's CPU time
    (bench/respond.py), and these are the service's most frequent requests."""
    parts: AnsweringParts | None = state.get(_STATE_KEY)
    if parts is None:
        parts = AnsweringParts(provide_context(state))
        state[_STATE_KEY] = parts
    return parts


def _visit(request: Request[Any, Any, Any]) -> Visit:
    query = request.query_params
    return Visit(
        request.client.host if request.client else "unknown",
        query.get("lang"),
        request.cookies.get(COOKIE_NAME),
        query.get("saved") == "1",
    )


def _respond(request: Request[Any, Any, Any], outcome: Outcome) -> Response[Any]:
    """The outcome of a visit as a response, with the pages' security headers."""
    if isinstance(outcome, visits.FormPage):
        headers = SECURITY_HEADERS
        if outcome.nonce is not None:
            cookie = _csrf_cookie_header(outcome.nonce, secure=outcome.secure)
            headers = {**headers, "set-cookie": cookie}
        return Response(outcome.html, media_type=MediaType.HTML, headers=headers)
    if isinstance(outcome, visits.SeeOther):
        return Redirect(outcome.url, status_code=303, headers=SECURITY_HEADERS)
    page = Template(
        template_name=f"answering/{outcome.name}.html.j2",
        context=outcome.context,
        status_code=outcome.status,
        headers=SECURITY_HEADERS,
        media_type=MediaType.HTML,
    )
    if outcome.nonce is not None:
        page.cookies.append(_csrf_cookie(outcome.nonce, secure=outcome.secure))
    return page


class AnsweringController(Controller):
    path = "/s"
    include_in_schema = False

    @get("/{token:str}")
    async def show(
        self, request: Request[Any, Any, Any], token: FromPath[str], state: State
    ) -> Response[Any]:
        return _respond(request, visits.show_form(answering_parts(state), token, _visit(request)))

    @post("/{token:str}", status_code=200)
    async def save(
        self, request: Request[Any, Any, Any], token: FromPath[str], state: State
    ) -> Response[Any]:
        outcome = await visits.save_form(
            answering_parts(state), token, _visit(request), request.form
        )
        return _respond(request, outcome)

    @get("/{token:str}/thanks")
    async def thanks(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
        return _respond(request, visits.thanks_page(_visit(request)))

    @get("/{token:str}/opt-out")
    async def opt_out_page(
        self, request: Request[Any, Any, Any], token: FromPath[str], state: State
    ) -> Response[Any]:
        return _respond(
            request, visits.opt_out_page(answering_parts(state), token, _visit(request))
        )

    @post("/{token:str}/opt-out", status_code=200)
    async def opt_out(
        self, request: Request[Any, Any, Any], token: FromPath[str], state: State
    ) -> Response[Any]:
        outcome = await visits.opt_out(answering_parts(state), token, _visit(request), request.form)
        return _respond(request, outcome)


def _csrf_cookie_header(nonce: str, *, secure: bool) -> str:
    """The `Set-Cookie` value of `_csrf_cookie`, written directly: the form page is the hottest
    response, and Litestar's Cookie goes through `http.cookies.SimpleCookie` (slow). Nonces are
    URL-safe base64 (a client's cookie is reused only when it looks like one), so they never
    need quoting."""
    flag = "; Secure" if secure else ""
    return f"{COOKIE_NAME}={nonce}; HttpOnly; Path=/s/; SameSite=Lax{flag}"


def _csrf_cookie(nonce: str, *, secure: bool) -> Cookie:
    return Cookie(
        key=COOKIE_NAME, value=nonce, path="/s/", httponly=True, samesite="lax", secure=secure
    )
