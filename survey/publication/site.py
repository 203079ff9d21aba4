"""The public site of published releases as data: for each page, which release, which template,
which model and how long it may be cached (`survey.publication.pages` renders it).

A `Site` is made once per app: it keeps published releases' parsed tables, the page models
built from them and the chart images (a published release never changes, so all three are
kept; drafts never are). Drafts are as unknown to the public pages as ids never used; an
unknown release, agency or province gets the friendly not-found page.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from sqlalchemy.orm import Session

from survey.context import AppContext
from survey.errors import NotFound
from survey.kernel.locale import language_or_default
from survey.publication import images, pdf, province, releases, report, view
from survey.publication import methodology as methods
from survey.publication.releases import StoredRelease
from survey.registry.questionnaires import find

if TYPE_CHECKING:  # analysis.release is imported when a release's tables are first read
    from analysis.release import ReleaseTables

__all__ = [
    "CACHE_SECONDS",
    "IMMUTABLE",
    "STABLE",
    "ChartImage",
    "ChartMissing",
    "Shown",
    "Site",
    "SitePage",
    "missing",
    "not_found",
    "unavailable",
]

WORDS = Path(__file__).parent / "templates" / "words.yaml"
CACHE_SECONDS = 60  # pages of "the latest release" change when a new one is published
IMMUTABLE = "public, max-age=31536000, immutable"
# A release's numbers never change, but its pages may gain a banner (corrected later) or a
# corrected earlier period in a trend: a day, not forever (charts are forever).
STABLE = "public, max-age=86400"


@cache
def words() -> dict[str, dict[str, Any]]:
    """The pages' words per language (templates/words.yaml)."""
    with WORDS.open(encoding="utf-8") as handle:
        table: dict[str, dict[str, Any]] = yaml.safe_load(handle)
    return table


class Shown:
    """A stored release with its tables from the per-app cache (delegates everything else)."""

    def __init__(self, release: StoredRelease, tables: ReleaseTables) -> None:
        self._release = release
        self.tables = tables

    def __getattr__(self, name: str) -> Any:
        return getattr(self._release, name)


Release = StoredRelease | Shown


@dataclass(frozen=True, slots=True)
class SitePage:
    """A page to render: `template` of templates/ with `model`, in `lang`, about `release` (at
    `base`, "" for the latest), with its status and Cache-Control."""

    template: str
    lang: str
    model: dict[str, Any]
    release: Release | None = None
    base: str = ""
    status: int = 200
    cache_control: str | None = None

    def context(self, path: str) -> dict[str, Any]:
        """The template's context, for a page served at `path`."""
        lang = self.lang
        return {
            "lang": lang,
            "dir": "rtl" if lang == "fa" else "ltr",
            "other_lang": "en" if lang == "fa" else "fa",
            "T": words()[lang],
            "links": self._links(path),
            "release": None,
            **self.model,
        }

    def headers(self) -> dict[str, str]:
        return {
            "Content-Language": self.lang,
            "Vary": "Accept-Encoding",
            "Cache-Control": self.cache_control or f"public, max-age={CACHE_SECONDS}",
        }

    def _links(self, path: str) -> dict[str, str]:
        lang, release, base = self.lang, self.release, self.base
        other = "en" if lang == "fa" else "fa"
        query = "?lang=en" if lang == "en" else ""
        links = {"home": "/" + query, "switch": f"{path}?lang={other}", "lang_query": query}
        if release is not None:
            links |= {
                "overview": (base or "/") + query,
                "methodology": f"{base}/methodology{query}",
                "report": f"/releases/{release.id}/report{query}",
            }
        return links


@dataclass(frozen=True, slots=True)
class ChartImage:
    """A chart's encoded image (kept by browsers and proxies for good: see IMMUTABLE)."""

    body: bytes
    media_type: str


@dataclass(frozen=True, slots=True)
class ChartMissing:
    """No such chart (release, agency or name); `message` says which."""

    message: str


def not_found(lang: str, problem: str, text_key: str = "not_found_text") -> SitePage:
    """The friendly not-found page (404, never cached)."""
    return SitePage(
        "not_found.html.j2",
        lang,
        {"problem": problem, "text_key": text_key},
        status=404,
        cache_control="no-store",
    )


def unavailable(report: SitePage, problem: str) -> SitePage:
    """The page for a report whose PDF cannot be made (503, never cached): why, and the
    report page, which prints the same from the browser."""
    release = report.model["release"]
    query = "?lang=en" if report.lang == "en" else ""
    return SitePage(
        "unavailable.html.j2",
        report.lang,
        {"problem": problem, "report": f"/releases/{release['id']}/report{query}"},
        status=503,
        cache_control="no-store",
    )


def missing(lang: str | None, path: str) -> SitePage:
    """The page for an address with no page (a mistyped or outdated link)."""
    return not_found(language_or_default(lang), path[:200], "missing_text")


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


def _release_id(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) < 2**31):
        raise NotFound(f"release {text!r} does not exist (release ids are whole numbers)")
    return int(text)


def _labels(session: Session, release: Release, lang: str) -> dict[str, str]:
    """Item texts of the release's questionnaires, for the drivers table."""

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


def _charts(release: Release, lang: str) -> dict[str, str]:
    """Addresses of the release's charts, without extension (the page picks PNG or SVG)."""
    return {"forest": f"/releases/{release.id}/charts/forest-{lang}"}


class Site:
    """The public pages of one app (see the module docstring)."""

    def __init__(self, context: AppContext) -> None:
        self._context = context
        self._tables = _Memo(32)
        self._models = _Memo(512)
        self.charts = images.ChartStore()

    # -- the latest published release -------------------------------------------------------

    def overview(self, lang: str) -> SitePage:
        """The national overview of the latest published release (or an honest empty page)."""
        language = language_or_default(lang)
        with self._context.read_sessions() as session:
            latest = releases.latest_published(session)
            if latest is None:
                return SitePage("nothing.html.j2", language, {}, cache_control="no-cache")
            return self._overview(self._shown(latest), language, base="")

    # -- one published release at its stable address ------------------------------------------

    def release_overview(self, release_id: str, lang: str) -> SitePage:
        language = language_or_default(lang)
        with self._context.read_sessions() as session:
            try:
                release = self._published(session, release_id)
            except NotFound as exc:
                return not_found(language, exc.message)
            base = f"/releases/{release.id}"
            return self._overview(release, language, base=base, immutable=True)

    def section(self, release_id: str | None, page: str, code: str, lang: str) -> SitePage:
        """An agency, province, methodology or technical-methodology page of a published
        release (`release_id`, at its stable address) or of the latest one (None)."""
        language = language_or_default(lang)
        with self._context.read_sessions() as session:
            try:
                if release_id is None:
                    release, base = self._shown(self._latest(session)), ""
                else:
                    release = self._published(session, release_id)
                    base = f"/releases/{release.id}"
                if page == "agency":
                    return self._agency(session, release, code, language, base)
                if page == "province":
                    return self._province(session, release, code, language, base)
                build = methods.technical_page if page == "technical" else methods.methodology_page
                model = self._model(
                    release, (page, language, base), lambda: build(release, language, base)
                )
            except NotFound as exc:
                return not_found(language, exc.message)
        return SitePage(
            f"{page}.html.j2",
            language,
            model,
            release=release,
            base=base,
            cache_control=STABLE if base else None,
        )

    def report(self, release_id: str, lang: str) -> SitePage:
        """Every table and chart of a published release on one printable page."""
        language = language_or_default(lang)
        with self._context.read_sessions() as session:
            try:
                release = self._published(session, release_id)
            except NotFound as exc:
                return not_found(language, exc.message)
            return self._report(session, release, language, inline=False)

    def preview(self, release_id: str, lang: str) -> SitePage:
        """A draft (or published) release as its report, for staff before publishing."""
        language = language_or_default(lang)
        with self._context.read_sessions() as session:
            try:
                release = releases.get_release(session, _release_id(release_id))
            except NotFound as exc:
                return not_found(language, exc.message)
            shown = (
                Shown(release, release.tables)
                if release.status != "published"
                else self._shown(release)
            )
            return self._report(session, shown, language, inline=True)

    def chart(self, release_id: str, name: str) -> ChartImage | ChartMissing:
        """A chart of a published release as PNG or SVG, drawn once and kept."""
        with self._context.read_sessions() as session:
            try:
                release = self._published(session, release_id)
                chart, fmt = images.parse_name(name)
                history = self._history(session, release) if chart.startswith("trend-") else []
                labels = (
                    _short_labels(_labels(session, release, chart[-2:]))
                    if chart.startswith(("drivers-", "quadrant-"))
                    else {}
                )
            except NotFound as exc:
                return ChartMissing(exc.message)
        try:
            body = self.charts.get(release, chart, fmt, history, labels)
        except NotFound as exc:
            return ChartMissing(exc.message)
        return ChartImage(body, images.MEDIA_TYPES[fmt])

    # -- shared -------------------------------------------------------------------------------

    def _shown(self, release: StoredRelease) -> Shown:
        tables = self._tables.get((release.id, release.content_hash), lambda: release.tables)
        return Shown(release, tables)

    def _published(self, session: Session, release_id: str) -> Shown:
        return self._shown(releases.get_published(session, _release_id(release_id)))

    @staticmethod
    def _latest(session: Session) -> StoredRelease:
        latest = releases.latest_published(session)
        if latest is None:
            raise NotFound("nothing has been published yet")
        return latest

    def _model(
        self, release: Release, key: Hashable, build: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """A page model, built once per published release (a fresh dict the caller may
        extend; a correction published later adds a banner, so it is part of the key)."""
        if release.status != "published":
            return dict(build())
        later = getattr(release, "superseded_by_id", None)
        return dict(self._models.get((release.id, release.content_hash, later, key), build))

    def _history(self, session: Session, release: Release) -> list[Shown]:
        """Published releases of the same kind of period up to this one, latest per period."""
        kind = view.period_kind(release.period)
        same: list[Release] = [
            r
            for r in releases.published_releases(session)
            if view.period_kind(r.period) == kind and r.period_end <= release.period_end
        ]
        if release.status != "published":
            same = [r for r in same if r.period != release.period] + [release]
        return [r if isinstance(r, Shown) else self._shown(r) for r in view.latest_per_period(same)]

    def _overview(
        self, release: Release, lang: str, *, base: str, immutable: bool = False
    ) -> SitePage:
        model = self._model(
            release, ("overview", lang, base), lambda: view.overview_page(release, lang, base)
        )
        model["charts"] = _charts(release, lang)
        return SitePage(
            "overview.html.j2",
            lang,
            model,
            release=release,
            base=base,
            cache_control=STABLE if immutable else None,
        )

    def _agency(
        self, session: Session, release: Release, code: str, lang: str, base: str
    ) -> SitePage:
        history = self._history(session, release)
        model = self._model(
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
        return SitePage(
            "agency.html.j2",
            lang,
            model,
            release=release,
            base=base,
            cache_control=STABLE if base else None,
        )

    def _province(
        self, session: Session, release: Release, code: str, lang: str, base: str
    ) -> SitePage:
        """A province: every agency's best figure, its trend over the releases of the kind."""
        history = self._history(session, release)
        model = self._model(
            release,
            ("province", code, lang, base, tuple((r.id, r.content_hash) for r in history)),
            lambda: province.province_page(
                release,
                code,
                lang,
                base,
                history=history,
                history_bases={r.id: f"/releases/{r.id}" for r in history},
            ),
        )
        return SitePage(
            "province.html.j2",
            lang,
            model,
            release=release,
            base=base,
            cache_control=STABLE if base else None,
        )

    def _report(self, session: Session, release: Release, lang: str, *, inline: bool) -> SitePage:
        """The printed report (survey.publication.report); `inline`: a staff preview."""
        base = f"/releases/{release.id}"
        history = self._history(session, release)
        shows = tuple((r.id, r.content_hash) for r in history)
        model = self._model(
            release,
            ("report", lang, shows),
            lambda: report.report_page(
                release,
                lang,
                base=base,
                history=history,
                item_labels=_labels(session, release, lang),
            ),
        )
        model["pdf"] = f"{base}/report.pdf" + ("?lang=en" if lang == "en" else "")
        model["running"] = report.running(release, lang, words()[lang])
        # what the PDF shows: the release, a later correction's banner, the trend's periods
        model["shows"] = repr(
            (release.id, release.content_hash, getattr(release, "superseded_by_id", None), shows)
        )
        return SitePage(
            "report.html.j2",
            lang,
            model,
            release=release,
            base=base,
            cache_control="no-store" if inline else STABLE,
        )

    @property
    def public_base_url(self) -> str:
        """Where the public reaches the site (links printed in a PDF point there)."""
        return self._context.settings.public_base_url

    def report_pdf(self, page: SitePage, html: Callable[[], str]) -> bytes:
        """The PDF of a report page (`page` from `report`), made from `html()` by Chromium
        once and kept under var/reports (pdf.PdfUnavailable when it cannot be made)."""
        settings = self._context.settings
        identity = f"{page.model['shows']}|{page.lang}|{pdf.FORMAT}"
        body, _ = pdf.cached_pdf(settings.var_dir / "reports", identity, settings.chromium, html)
        return body
