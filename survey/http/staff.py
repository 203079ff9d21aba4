"""What every staff page shares around its content (`access/staff.html.j2` renders it): the
language, the switch to the same page in the other language, the staff navigation (the pages
the caller's role may open, the current one marked) and who is signed in, with the sign-out
form (the session's CSRF token; a caller with a bearer token has no session to end).

Handlers put `staff_frame(...)` into their template context: `{**staff_frame(...), ...}`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar.connection import ASGIConnection

from survey.http.guards import CSRF_FIELD, csrf_token
from survey.kernel.locale import language_or_default, other_language
from survey.kernel.principal import Principal

__all__ = ["STAFF_PAGES", "staff_frame"]

# The staff navigation, in order: key (the layout's word for it), address, roles that may open.
STAFF_PAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ingestion", "/ingestion", ("admin", "statistician", "viewer")),
    ("plans", "/staff/plans", ("admin", "statistician")),
    ("audit", "/audit", ("admin",)),
    ("public", "/", ("admin", "statistician", "viewer", "agency")),
)


def _with_lang(path: str, lang: str, query: dict[str, str] | None = None) -> str:
    """`path` in `lang` (Persian is the default: no parameter), keeping `query`."""
    params = dict(query or {})
    if lang != "fa":
        params["lang"] = lang
    return f"{path}?{urlencode(params)}" if params else path


def staff_frame(
    request: ASGIConnection[Any, Any, Any, Any],
    principal: Principal,
    current: str,
    *,
    path: str | None = None,
) -> dict[str, Any]:
    """The layout's context: `lang`, `dir`, `other_lang`, and `frame` (switch address,
    navigation, who, the sign-out form's token). `path` is the page to switch languages on
    when the request was a form's POST (default: the request's own path and query)."""
    lang = language_or_default(request.query_params.get("lang"))
    other = other_language(lang)
    query = {k: v for k, v in request.query_params.items() if k != "lang" and v}
    switch_path = path or request.url.path
    switch = f"{switch_path}?{urlencode({**({} if path else query), 'lang': other})}"
    role = principal.role or ""
    nav = [
        {"key": key, "href": _with_lang(href, lang), "current": key == current}
        for key, href, roles in STAFF_PAGES
        if role in roles or principal.kind == "cli"
    ]
    return {
        "lang": lang,
        "dir": "rtl" if lang == "fa" else "ltr",
        "other_lang": other,
        "frame": {
            "switch": switch,
            "nav": nav,
            "who": principal.name,
            "role": role,
            "csrf_field": CSRF_FIELD,
            "csrf": csrf_token(request),
            "lang_query": "?lang=en" if lang == "en" else "",
        },
    }
