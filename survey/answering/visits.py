"""A citizen's visit to a survey link: what each answering page does, without the web framework.

`survey.answering.pages` turns a request into a `Visit` and the outcome back into a response;
everything in between is here: the per-address throttle, the CSRF check, the language, the
domain service (`WebAnswering`) and which page answers (see the pages' module docstring for
the addresses). The outcome is one of:

- `FormPage`: the questionnaire, already rendered (the hot path: the blank form of a
  questionnaire version is rendered once and filled in per request, `BlankForms`);
- `Page`: a template of `templates/` with its context (notices, thanks, the opt-out pages);
- `SeeOther`: a redirect after a successful POST.

Unknown, expired, completed and opted-out links, and malformed tokens, all get the same
bilingual notice with the same status (404), so a page never hints whether a token exists.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import yaml
from markupsafe import Markup

from questionnaires.rendering import render_form, stylesheet
from survey.answering.forms import AboutTransaction, FormState, LinkUnavailable, WebAnswering
from survey.context import AppContext
from survey.kernel.csrf import FIELD_NAME, CsrfSigner
from survey.kernel.limits import Throttle
from survey.kernel.locale import DEFAULT_LANGUAGE, LANGUAGES, Numbers, language_or_default

__all__ = [
    "AnsweringParts",
    "BlankForms",
    "FormPage",
    "Outcome",
    "Page",
    "PostedForm",
    "SeeOther",
    "Visit",
    "form_heading",
    "form_page",
    "notice",
    "opt_out",
    "opt_out_page",
    "page_css",
    "page_words",
    "save_form",
    "show_form",
    "thanks_page",
]

TEMPLATES = Path(__file__).parent / "templates"
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_HEADING_CSS = (
    ".about { background: #fff; border: 1px solid #c9c9c4; border-inline-start: 4px solid "
    "#1f5f3f; border-radius: .4rem; padding: .6rem .75rem; margin: .5rem 0 1rem; }\n"
    ".about p { margin: .2rem 0; }\n"
    ".about .agency { font-weight: bold; font-size: 1.15rem; }\n"
    ".about .chosen { font-size: .9rem; color: #4a4a46; }\n"
)


@cache
def page_words() -> dict[str, dict[str, str]]:
    """The pages' phrases per language (templates/answering/phrases.yaml)."""
    table = yaml.safe_load((TEMPLATES / "phrases.yaml").read_text("utf-8"))
    return {lang: {str(k): str(v) for k, v in table[lang].items()} for lang in LANGUAGES}


@cache
def page_css() -> str:
    return stylesheet() + (TEMPLATES / "extra.css").read_text("utf-8")


def form_heading(about: AboutTransaction | None, lang: str) -> str:
    """The form's heading: whose survey it is, about which service and day (both calendars),
    and how the citizen was chosen, so that a link that came by SMS can be trusted and a
    citizen who received several services knows which one is meant."""
    if about is None:
        return ""
    return _heading(about.agency[lang], about.service[lang], about.day, lang)


@lru_cache(maxsize=4096)
def _heading(agency: str, service: str, day: date, lang: str) -> str:
    words = page_words()[lang]
    return str(
        Markup(
            '<header class="about">\n<p class="agency">{agency}</p>\n'
            '<p class="service">{service}</p>\n<p class="chosen">{chosen}</p>\n</header>\n'
        ).format(
            agency=Markup(words["heading_agency"]).format(agency=agency),
            service=Markup(words["heading_service"]).format(
                service=service, day=Numbers(lang).day(day)
            ),
            chosen=words["heading_chosen"],
        )
    )


def _with_heading(page: str, heading: str) -> str:
    """The questionnaires package's page with `heading` above its title (and its style)."""
    if not heading:
        return page
    if page.count("<h1>") != 1 or "</style>" not in page:
        raise RuntimeError("the form page has no single <h1> and inline style to extend")
    page = page.replace("</style>", f"{_HEADING_CSS}</style>", 1)
    return page.replace("<h1>", f"{heading}<h1>", 1)


def form_page(
    state: FormState,
    token: str,
    lang: str,
    csrf_field: str,
    *,
    shown: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
    heading: str | None = None,
) -> str:
    """The questionnaire page: the questionnaires package's form under the heading
    (`form_heading`, or `heading` as given), with the save button, the opt-out link and,
    after a save, a "saved" notice."""
    words = page_words()[lang]
    base = f"/s/{quote(token)}"
    page = render_form(
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
    return _with_heading(page, form_heading(state.about, lang) if heading is None else heading)


class BlankForms:
    """First-open pages (no answers yet), rendered once per questionnaire version and language
    with placeholders for the link token, the CSRF field and the heading (agency, service and
    day: `form_heading`, cached per transaction's kind), then filled in per request.

    Most page views are first opens, and rendering the whole questionnaire costs far more than
    two string replacements. Tokens are checked to be lower-case base32 before they get here,
    so they need no escaping; the placeholders cannot occur in questionnaire text.
    """

    TOKEN = "zqzqtokenslotzqzq"
    FIELD = "zqzqcsrfslotzqzq"
    HEADING = "zqzqheadingslotzqzq"

    def __init__(self) -> None:
        self._pages: dict[tuple[int, str, bool], str] = {}
        self._lock = threading.Lock()

    def page(self, state: FormState, token: str, lang: str, csrf_field: str) -> str:
        heading = form_heading(state.about, lang)
        key = (state.questionnaire_version_id, lang, bool(heading))
        template = self._pages.get(key)
        if template is None:
            template = form_page(
                state, self.TOKEN, lang, self.FIELD, heading=self.HEADING if heading else ""
            )
            with self._lock:
                self._pages[key] = template
        page = template.replace(self.TOKEN, token).replace(self.FIELD, csrf_field)
        return page.replace(self.HEADING, heading) if heading else page


class AnsweringParts:
    """What the pages share per app: the domain service, the CSRF signer, the throttle and
    the blank-form cache."""

    def __init__(self, context: AppContext) -> None:
        self.service = WebAnswering.from_context(context)
        self.csrf = CsrfSigner(context.settings.secret_key)
        self.throttle = Throttle()
        self.blank_forms = BlankForms()
        # Citizens reach the service through a TLS proxy: the cookie is Secure whenever the
        # public address is https, whatever scheme the proxy's request to us had.
        self.secure_cookies = context.settings.https


# -- what comes in and what goes out -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Visit:
    """What a request to a link's page brings besides the token."""

    client: str  # the client's address (the throttle's key)
    lang: str | None = None  # `?lang=`
    nonce: str | None = None  # the CSRF cookie the browser sent
    saved: bool = False  # `?saved=1`: the form after a save


class PostedForm(Protocol):
    """A posted form: every field's values (checkboxes post several)."""

    def get(self, key: str) -> Any: ...

    def getall(self, key: str) -> list[Any]: ...

    def __iter__(self) -> Iterator[str]: ...


@dataclass(frozen=True, slots=True)
class FormPage:
    """The questionnaire page, rendered; `nonce`: set the CSRF cookie to it."""

    html: str
    nonce: str | None = None
    secure: bool = False  # the cookie is Secure (the public base URL is https)


@dataclass(frozen=True, slots=True)
class Page:
    """A page of `templates/` (`name`.html.j2) with its context; `nonce`: set the CSRF cookie."""

    name: str
    context: dict[str, Any]
    status: int = 200
    nonce: str | None = None
    secure: bool = False  # the cookie is Secure (the public base URL is https)


@dataclass(frozen=True, slots=True)
class SeeOther:
    """Go on to `url` (303)."""

    url: str


Outcome = FormPage | Page | SeeOther


def notice(kind: str, status: int, retry_url: str | None = None) -> Page:
    """The one bilingual page for closed links, throttling and refused forms."""
    words = page_words()
    return Page(
        "notice",
        {
            "lang": DEFAULT_LANGUAGE,
            "words": words[DEFAULT_LANGUAGE],
            "both": words,
            "kind": kind,
            "css": page_css(),
            "retry_url": retry_url,
        },
        status,
    )


def _page(name: str, lang: str, **context: Any) -> Page:
    return Page(name, {"lang": lang, "words": page_words()[lang], "css": page_css(), **context})


def _admit(parts: AnsweringParts, token: str) -> Page | None:
    """The 429 notice when this link has used up its requests, else None (counted per link,
    never per address: many citizens share a carrier's address)."""
    return None if parts.throttle.allow_link(token.strip().lower()) else notice("too_many", 429)


def _unavailable(parts: AnsweringParts, client: str) -> Page:
    """A link that is not open: a miss counted against the address; once the address has no
    misses left, 429 (its working links are still served)."""
    if not parts.throttle.record_miss(client):
        return notice("too_many", 429)
    return notice("unavailable", 404)


# -- the pages ------------------------------------------------------------------------------------


def show_form(parts: AnsweringParts, token: str, visit: Visit) -> Outcome:
    """`GET /s/{token}`: the questionnaire, pre-filled with saved answers; opens the link."""
    refused = _admit(parts, token)
    if refused is not None:
        return refused
    try:
        form = parts.service.open(token)
    except LinkUnavailable:
        return _unavailable(parts, visit.client)
    nonce = visit.nonce or ""
    if not _NONCE.fullmatch(nonce):
        nonce = parts.csrf.new_nonce()
    lang = language_or_default(visit.lang, form.language)
    csrf_field = parts.csrf.field_for(nonce, token)
    if not form.answers and not visit.saved and form.questionnaire_version_id:
        html = parts.blank_forms.page(form, token.strip().lower(), lang, csrf_field)
    else:
        html = form_page(form, token, lang, csrf_field, saved=visit.saved)
    return FormPage(html, nonce, parts.secure_cookies)


async def save_form(
    parts: AnsweringParts,
    token: str,
    visit: Visit,
    read_form: Callable[[], Awaitable[PostedForm]],
) -> Outcome:
    """`POST /s/{token}`: save (303 back to the form) or submit (303 to the thank-you page);
    item problems give the form again with their messages. The form is read only once the
    client is admitted."""
    refused = _admit(parts, token)
    if refused is not None:
        return refused
    posted = await read_form()
    lang = language_or_default(visit.lang)
    if not parts.csrf.verify(visit.nonce, token, posted.get(FIELD_NAME)):
        return notice("form_expired", 403, retry_url=f"/s/{quote(token)}?lang={lang}")
    values = {key: posted.getall(key) for key in posted}
    submit = posted.get("action") == "submit"
    try:
        result = parts.service.save(token, values, submit=submit)
    except LinkUnavailable:
        return _unavailable(parts, visit.client)
    base = f"/s/{quote(token)}"
    lang = language_or_default(visit.lang, result.state.language)
    if result.completed:
        return SeeOther(f"{base}/thanks?lang={lang}")
    if not result.problems:
        return SeeOther(f"{base}?lang={lang}&saved=1")
    words = page_words()[lang]
    errors = {p.item_id: words[f"problem_{p.code}"] for p in result.problems}
    html = form_page(
        result.state,
        token,
        lang,
        parts.csrf.field_for(str(visit.nonce), token),
        shown=result.shown,
        errors=errors,
    )
    return FormPage(html)


def thanks_page(visit: Visit) -> Page:
    """`GET /s/{token}/thanks`: reads nothing."""
    return _page("thanks", language_or_default(visit.lang))


def opt_out_page(parts: AnsweringParts, token: str, visit: Visit) -> Page:
    """`GET /s/{token}/opt-out`: the confirmation form."""
    refused = _admit(parts, token)
    if refused is not None:
        return refused
    try:
        form = parts.service.check(token)
    except LinkUnavailable:
        return _unavailable(parts, visit.client)
    lang = language_or_default(visit.lang, form.language)
    nonce = visit.nonce or parts.csrf.new_nonce()
    base = f"/s/{quote(token)}"
    page = _page(
        "opt_out",
        lang,
        action_url=f"{base}/opt-out?lang={lang}",
        back_url=f"{base}?lang={lang}",
        csrf_token=parts.csrf.field_for(nonce, token),
    )
    return replace(page, nonce=nonce, secure=parts.secure_cookies)


async def opt_out(
    parts: AnsweringParts,
    token: str,
    visit: Visit,
    read_form: Callable[[], Awaitable[PostedForm]],
) -> Page:
    """`POST /s/{token}/opt-out`: stop all survey messages to the phone."""
    refused = _admit(parts, token)
    if refused is not None:
        return refused
    posted = await read_form()
    lang = language_or_default(visit.lang)
    if not parts.csrf.verify(visit.nonce, token, posted.get(FIELD_NAME)):
        return notice("form_expired", 403, retry_url=f"/s/{quote(token)}/opt-out?lang={lang}")
    try:
        parts.service.opt_out(token)
    except LinkUnavailable:
        return _unavailable(parts, visit.client)
    return _page("opted_out", lang)
