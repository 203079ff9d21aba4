"""The public pages of published releases (Persian by default, English with ?lang=en).

- `/`, `/agencies/{code}`, `/provinces/{code}`, `/methodology`: the latest published release;
- `/releases/{id}` and `/releases/{id}/agencies|provinces/{code}`, `/releases/{id}/methodology`:
  one published release, at a stable address;
- `/releases/{id}/charts/{name}.png|.svg`: its charts (survey.publication.charts), drawn
  once per release, language and format and kept (a published release never changes);
- `/releases/{id}/report`: everything on one printable page;
- `/releases/{id}/preview`: the same for a draft, staff only (charts inline).

Drafts are as unknown to the public pages as ids never used. An unknown release, agency or
province gets a friendly 404 page. The pages need no JavaScript and carry no inline script.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import yaml
from litestar import Controller, Request, Response, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from markupsafe import Markup
from sqlalchemy.orm import Session

from survey.context import AppContext
from survey.errors import NotFound
from survey.http.guards import staff
from survey.publication import images as charts
from survey.publication import releases, view

WORDS = Path(__file__).parent / "templates" / "words.yaml"
LANGUAGES = ("fa", "en")
CACHE_SECONDS = 60  # pages of "the latest release" change when a new one is published
IMMUTABLE = "public, max-age=31536000, immutable"
# A release's numbers never change, but its pages may gain a banner (corrected later) or a
# corrected earlier period in a trend: a day, not forever (charts are forever).
STABLE = "public, max-age=86400"


@cache
def _words() -> dict[str, dict[str, Any]]:
    with WORDS.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _language(lang: str) -> str:
    return lang if lang in LANGUAGES else "fa"


class _Memo:
    """A bounded, thread-safe LRU of values that never change for their key."""

    def __init__(self, size: int) -> None:
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


class _Releases:
    """Per app: published releases' parsed tables, and the page models built from them
    (a published release never changes, so both are kept; drafts are never kept)."""

    def __init__(self) -> None:
        self._tables = _Memo(32)
        self._models = _Memo(512)

    def tables(self, release: releases.StoredRelease) -> Any:
        return self._tables.get((release.id, release.content_hash), lambda: release.tables)

    def model(self, release: Any, key: Hashable, build: Callable[[], Any]) -> Any:
        if release.status != "published":
            return build()
        later = getattr(release, "superseded_by_id", None)  # a correction adds a banner
        return self._models.get((release.id, release.content_hash, later, key), build)


class Shown:
    """A stored release with its tables from the per-app cache (delegates everything else)."""

    def __init__(self, release: releases.StoredRelease, tables: Any) -> None:
        self._release = release
        self.tables = tables

    def __getattr__(self, name: str) -> Any:
        return getattr(self._release, name)


def _state(request: Request) -> tuple[AppContext, _Releases]:
    state = request.app.state
    if "publication_releases" not in state:
        state["publication_releases"] = _Releases()
    return state["context"], state["publication_releases"]


@contextmanager
def _session(request: Request) -> Iterator[tuple[Session, Callable[[Any], Shown]]]:
    context, cached = _state(request)
    with context.read_sessions() as session:
        yield session, lambda release: Shown(release, cached.tables(release))


def _model(request: Request, release: Any, key: Hashable, build: Callable[[], Any]) -> Any:
    """A page model, built once per published release (a fresh dict the caller may extend)."""
    _, cached = _state(request)
    return dict(cached.model(release, key, build))


def _release_id(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) < 2**31):
        raise NotFound(f"release {text!r} does not exist (release ids are whole numbers)")
    return int(text)


def _labels(session: Session, release: Any, lang: str) -> dict[str, str]:
    """Item texts of the release's questionnaires, for the drivers table."""
    from survey.registry.questionnaires import find

    labels: dict[str, str] = {}
    for entry in release.questionnaire_versions:
        qid, _, version = str(entry).partition("@")
        row = find(session, qid, int(version) if version.isdigit() else None)
        if row is None:
            continue
        for item in row.content.get("items", []):
            text = item.get("text") or {}
            if isinstance(text, dict) and item.get("id") not in labels:
                labels[str(item["id"])] = str(text.get(lang) or text.get("fa") or item["id"])
    return labels


def _short_labels(labels: dict[str, str], limit: int = 28) -> dict[str, str]:
    """Item texts short enough to label points on a chart."""
    return {k: v if len(v) <= limit else v[: limit - 1].rstrip() + "…" for k, v in labels.items()}


def _history(session: Session, release: Any, wrap: Callable[[Any], Shown]) -> list[Any]:
    """Published releases of the same kind of period up to this one, latest per period."""
    kind = view.period_kind(release.period)
    same = [
        r
        for r in releases.published_releases(session)
        if view.period_kind(r.period) == kind and r.period_end <= release.period_end
    ]
    if release.status != "published":
        same = [r for r in same if r.period != release.period] + [release]
    return [wrap(r) for r in view.latest_per_period(same)]


def _links(request: Request, lang: str, release: Any | None, base: str) -> dict[str, str]:
    other = "en" if lang == "fa" else "fa"
    query = "?lang=en" if lang == "en" else ""
    links = {
        "home": "/" + query,
        "switch": f"{request.url.path}?lang={other}",
        "lang_query": query,
    }
    if release is not None:
        links |= {
            "overview": (base or "/") + query,
            "methodology": f"{base}/methodology{query}",
            "report": f"/releases/{release.id}/report{query}",
        }
    return links


def _page(
    request: Request,
    template: str,
    lang: str,
    model: dict[str, Any],
    *,
    release: Any | None = None,
    base: str = "",
    status_code: int = 200,
    cache_control: str | None = None,
) -> Template:
    context = {
        "lang": lang,
        "dir": "rtl" if lang == "fa" else "ltr",
        "other_lang": "en" if lang == "fa" else "fa",
        "T": _words()[lang],
        "links": _links(request, lang, release, base),
        "release": None,
        **model,
    }
    headers = {"Content-Language": lang, "Vary": "Accept-Encoding"}
    headers["Cache-Control"] = cache_control or f"public, max-age={CACHE_SECONDS}"
    return Template(
        template_name=f"publication/{template}",
        context=context,
        status_code=status_code,
        headers=headers,
    )


def _not_found(
    request: Request, lang: str, problem: str, text_key: str = "not_found_text"
) -> Template:
    return _page(
        request,
        "not_found.html.j2",
        lang,
        {"problem": problem, "text_key": text_key},
        status_code=404,
        cache_control="no-store",
    )


def missing_page(request: Request) -> Template:
    """The page a browser gets for an address with no page (a mistyped or outdated link):
    the site's own not-found page in the asked language, not the API's JSON error."""
    lang = _language(request.query_params.get("lang", "fa"))
    return _not_found(request, lang, request.url.path[:200], "missing_text")


def _charts(release: Any, lang: str) -> dict[str, str]:
    """Addresses of the release's charts, without extension (the page picks PNG or SVG)."""
    return {"forest": f"/releases/{release.id}/charts/forest-{lang}"}


class PublicationController(Controller):
    path = "/"
    tags: ClassVar[list[str]] = ["pages"]
    include_in_schema = False

    # -- the latest published release ------------------------------------------------------

    @get("/", sync_to_thread=True)
    def overview(self, request: Request, lang: FromQuery[str] = "fa") -> Template:
        """The national overview of the latest published release (or an honest empty page)."""
        language = _language(lang)
        with _session(request) as (session, wrap):
            latest = releases.latest_published(session)
            if latest is None:
                return _page(request, "nothing.html.j2", language, {}, cache_control="no-cache")
            return self._overview(request, wrap(latest), language, base="")

    @get("/agencies/{code:str}", sync_to_thread=True)
    def latest_agency(
        self, request: Request, code: FromPath[str], lang: FromQuery[str] = "fa"
    ) -> Template:
        """One agency in the latest published release."""
        return self._section(request, None, "agency", code, lang)

    @get("/provinces/{code:str}", sync_to_thread=True)
    def latest_province(
        self, request: Request, code: FromPath[str], lang: FromQuery[str] = "fa"
    ) -> Template:
        """One province in the latest published release."""
        return self._section(request, None, "province", code, lang)

    @get("/methodology", sync_to_thread=True)
    def latest_methodology(self, request: Request, lang: FromQuery[str] = "fa") -> Template:
        """How the latest published release was computed."""
        return self._section(request, None, "methodology", "", lang)

    # -- one published release at its stable address ---------------------------------------

    @get("/releases/{release_id:str}", sync_to_thread=True)
    def release_overview(
        self, request: Request, release_id: FromPath[str], lang: FromQuery[str] = "fa"
    ) -> Template:
        language = _language(lang)
        with _session(request) as (session, wrap):
            try:
                release = wrap(releases.get_published(session, _release_id(release_id)))
            except NotFound as exc:
                return _not_found(request, language, exc.message)
            return self._overview(
                request, release, language, base=f"/releases/{release.id}", immutable=True
            )

    @get("/releases/{release_id:str}/agencies/{code:str}", sync_to_thread=True)
    def release_agency(
        self,
        request: Request,
        release_id: FromPath[str],
        code: FromPath[str],
        lang: FromQuery[str] = "fa",
    ) -> Template:
        return self._section(request, release_id, "agency", code, lang)

    @get("/releases/{release_id:str}/provinces/{code:str}", sync_to_thread=True)
    def release_province(
        self,
        request: Request,
        release_id: FromPath[str],
        code: FromPath[str],
        lang: FromQuery[str] = "fa",
    ) -> Template:
        return self._section(request, release_id, "province", code, lang)

    @get("/releases/{release_id:str}/methodology", sync_to_thread=True)
    def release_methodology(
        self, request: Request, release_id: FromPath[str], lang: FromQuery[str] = "fa"
    ) -> Template:
        return self._section(request, release_id, "methodology", "", lang)

    @get("/releases/{release_id:str}/report", sync_to_thread=True)
    def release_report(
        self, request: Request, release_id: FromPath[str], lang: FromQuery[str] = "fa"
    ) -> Template:
        """Every table and chart of a published release on one printable page."""
        language = _language(lang)
        with _session(request) as (session, wrap):
            try:
                release = wrap(releases.get_published(session, _release_id(release_id)))
            except NotFound as exc:
                return _not_found(request, language, exc.message)
            return self._report(request, session, wrap, release, language, inline=False)

    @get(
        "/releases/{release_id:str}/preview",
        guards=[staff("admin", "statistician", "viewer")],
        sync_to_thread=True,
    )
    def release_preview(
        self, request: Request, release_id: FromPath[str], lang: FromQuery[str] = "fa"
    ) -> Template:
        """A draft (or published) release as its report, for staff before publishing."""
        language = _language(lang)
        with _session(request) as (session, wrap):
            try:
                release = releases.get_release(session, _release_id(release_id))
            except NotFound as exc:
                return _not_found(request, language, exc.message)
            shown = (
                Shown(release, release.tables) if release.status != "published" else wrap(release)
            )
            return self._report(request, session, wrap, shown, language, inline=True)

    @get("/releases/{release_id:str}/charts/{name:str}", sync_to_thread=True)
    def chart(self, request: Request, release_id: FromPath[str], name: FromPath[str]) -> Response:
        """A chart of a published release as PNG or SVG, drawn once and kept."""
        with _session(request) as (session, wrap):
            try:
                release = wrap(releases.get_published(session, _release_id(release_id)))
                chart, fmt = charts.parse_name(name)
                history = _history(session, release, wrap) if chart.startswith("trend-") else []
                labels = (
                    _short_labels(_labels(session, release, chart[-2:]))
                    if chart.startswith(("drivers-", "quadrant-"))
                    else {}
                )
            except NotFound as exc:
                return Response(
                    {"error": exc.message}, status_code=404, headers={"Cache-Control": "no-store"}
                )
        store = charts.store_of(request.app.state)
        try:
            body = store.get(release, chart, fmt, history, labels)
        except NotFound as exc:
            return Response(
                {"error": exc.message}, status_code=404, headers={"Cache-Control": "no-store"}
            )
        return Response(
            body,
            media_type=charts.MEDIA_TYPES[fmt],
            headers={"Cache-Control": IMMUTABLE},
        )

    # -- shared -------------------------------------------------------------------------------

    def _section(
        self, request: Request, release_id: str | None, page: str, code: str, lang: str
    ) -> Template:
        """An agency, province or methodology page of a published release (`release_id`,
        at its stable address) or of the latest one (None)."""
        language = _language(lang)
        with _session(request) as (session, wrap):
            try:
                if release_id is None:
                    release, base = wrap(self._latest(session)), ""
                else:
                    release = wrap(releases.get_published(session, _release_id(release_id)))
                    base = f"/releases/{release.id}"
                if page == "agency":
                    return self._agency(request, session, wrap, release, code, language, base)
                if page == "province":
                    key: tuple[Any, ...] = ("province", code, language, base)
                    build = lambda: view.province_page(release, code, language, base)  # noqa: E731
                else:
                    key = ("methodology", language, base)
                    build = lambda: view.methodology_page(release, language, base)  # noqa: E731
                model = _model(request, release, key, build)
            except NotFound as exc:
                return _not_found(request, language, exc.message)
        return _page(
            request,
            f"{page}.html.j2",
            language,
            model,
            release=release,
            base=base,
            cache_control=STABLE if base else None,
        )

    @staticmethod
    def _latest(session: Session) -> Any:
        latest = releases.latest_published(session)
        if latest is None:
            raise NotFound("nothing has been published yet")
        return latest

    @staticmethod
    def _overview(
        request: Request, release: Any, lang: str, *, base: str, immutable: bool = False
    ) -> Template:
        model = _model(
            request,
            release,
            ("overview", lang, base),
            lambda: view.overview_page(release, lang, base),
        )
        model["charts"] = _charts(release, lang)
        return _page(
            request,
            "overview.html.j2",
            lang,
            model,
            release=release,
            base=base,
            cache_control=STABLE if immutable else None,
        )

    @staticmethod
    def _agency(
        request: Request,
        session: Session,
        wrap: Callable[[Any], Shown],
        release: Any,
        code: str,
        lang: str,
        base: str,
    ) -> Template:
        history = _history(session, release, wrap)
        model = _model(
            request,
            release,
            ("agency", code, lang, base, tuple((r.id, r.content_hash) for r in history)),
            lambda: view.agency_page(
                release,
                code,
                lang,
                base=base,
                history=history,
                history_bases={r.id: f"/releases/{r.id}" for r in history},
                item_labels=_labels(session, release, lang),
            ),
        )
        return _page(
            request,
            "agency.html.j2",
            lang,
            model,
            release=release,
            base=base,
            cache_control=STABLE if base else None,
        )

    @staticmethod
    def _report(
        request: Request,
        session: Session,
        wrap: Callable[[Any], Shown],
        release: Any,
        lang: str,
        *,
        inline: bool,
    ) -> Template:
        base = f"/releases/{release.id}"
        history = _history(session, release, wrap)
        model = _model(
            request,
            release,
            ("report", lang, tuple((r.id, r.content_hash) for r in history)),
            lambda: view.report_page(
                release,
                lang,
                base=base,
                history=history,
                item_labels=_labels(session, release, lang),
            ),
        )
        model["charts"] = _charts(release, lang)
        model["eager"] = True  # a printed page has no scrolling to load lazy images
        if inline:
            store = charts.store_of(request.app.state)
            model["inline"] = {
                "forest": Markup(store.svg_inline(release, f"forest-{lang}", history)),
            }
        return _page(
            request,
            "report.html.j2",
            lang,
            model,
            release=release,
            base=base,
            cache_control="no-store" if inline else STABLE,
        )
