"""The public pages of published releases (Persian by default, English with ?lang=en).

- `/`, `/agencies/{code}`, `/provinces/{code}`, `/methodology`: the latest published release;
- `/releases/{id}` and `/releases/{id}/agencies|provinces/{code}`, `/releases/{id}/methodology`:
  one published release, at a stable address; `/releases/{id}/methodology/technical`: the
  technical detail behind its short methodology note;
- `/releases/{id}/charts/{name}.png|.svg`: its charts (survey.publication.charts), drawn
  once per release, language and format and kept (a published release never changes);
- `/releases/{id}/report`: everything on one printable page;
- `/releases/{id}/preview`: the same for a draft, staff only (charts inline).

Drafts are as unknown to the public pages as ids never used. An unknown release, agency or
province gets a friendly 404 page. The pages need no JavaScript and carry no inline script.

Which release, template, model and caching each page has is `survey.publication.site` (one
`Site` per app, with its caches, reached through the `site` dependency); this module renders it.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from markupsafe import Markup

from survey.http.dependencies import provide_context
from survey.http.guards import staff
from survey.http.static import static_files
from survey.publication.pdf import PdfUnavailable
from survey.publication.site import (
    IMMUTABLE,
    STABLE,
    ChartImage,
    ChartMissing,
    Site,
    SitePage,
    missing,
    unavailable,
)

__all__ = ["PublicationController", "missing_page", "publication_site"]

_STATE_KEY = "publication_site"


def publication_site(state: State) -> Site:
    """Dependency `site`: the app's public site with its caches (made on first use)."""
    site: Site | None = state.get(_STATE_KEY)
    if site is None:
        site = Site(provide_context(state))
        state[_STATE_KEY] = site
    return site


# Handler parameter `site: PublicSite` (the name is what Litestar matches).
PublicSite = NamedDependency[Site]
_DEPENDENCIES = {"site": Provide(publication_site, sync_to_thread=False)}


def _template(request: Request[Any, Any, Any], page: SitePage) -> Template:
    return Template(
        template_name=f"publication/{page.template}",
        context=page.context(request.url.path),
        status_code=page.status,
        headers=page.headers(),
    )


def _pdf_html(request: Request[Any, Any, Any], page: SitePage, public_base: str) -> str:
    """The report page as one self-contained file for Chromium: its stylesheets inline, links
    resolved against the site's public address (the file is printed from a temporary folder)."""
    files = static_files()
    css = "\n".join(files[name].body.decode("utf-8") for name in ("publication.css", "report.css"))
    context = page.context(request.url.path) | {
        "inline_css": Markup(css),  # the site's own stylesheets
        "public_base": public_base.rstrip("/"),
    }
    engine = request.app.template_engine
    if engine is None:  # create_app always configures one
        raise RuntimeError("the app has no template engine")
    template = engine.get_template(f"publication/{page.template}")
    return str(template.render(**context))


def missing_page(request: Request[Any, Any, Any]) -> Template:
    """The page a browser gets for an address with no page (a mistyped or outdated link):
    the site's own not-found page in the asked language, not the API's JSON error."""
    return _template(request, missing(request.query_params.get("lang"), request.url.path))


def _chart(found: ChartImage | ChartMissing) -> Response[Any]:
    if isinstance(found, ChartMissing):
        return Response(
            {"error": found.message}, status_code=404, headers={"Cache-Control": "no-store"}
        )
    return Response(found.body, media_type=found.media_type, headers={"Cache-Control": IMMUTABLE})


class PublicationController(Controller):
    path = "/"
    tags = ("pages",)
    include_in_schema = False
    dependencies = _DEPENDENCIES

    # -- the latest published release ------------------------------------------------------

    @get("/", sync_to_thread=True)
    def overview(
        self, request: Request[Any, Any, Any], site: PublicSite, lang: FromQuery[str] = "fa"
    ) -> Template:
        """The national overview of the latest published release (or an honest empty page)."""
        return _template(request, site.overview(lang))

    @get("/agencies/{code:str}", sync_to_thread=True)
    def latest_agency(
        self,
        request: Request[Any, Any, Any],
        site: PublicSite,
        code: FromPath[str],
        lang: FromQuery[str] = "fa",
    ) -> Template:
        """One agency in the latest published release."""
        return _template(request, site.section(None, "agency", code, lang))

    @get("/provinces/{code:str}", sync_to_thread=True)
    def latest_province(
        self,
        request: Request[Any, Any, Any],
        site: PublicSite,
        code: FromPath[str],
        lang: FromQuery[str] = "fa",
    ) -> Template:
        """One province in the latest published release."""
        return _template(request, site.section(None, "province", code, lang))

    @get("/methodology", sync_to_thread=True)
    def latest_methodology(
        self, request: Request[Any, Any, Any], site: PublicSite, lang: FromQuery[str] = "fa"
    ) -> Template:
        """How the latest published release was computed."""
        return _template(request, site.section(None, "methodology", "", lang))

    # -- one published release at its stable address ---------------------------------------

    @get("/releases/{release_id:str}", sync_to_thread=True)
    def release_overview(
        self,
        request: Request[Any, Any, Any],
        site: PublicSite,
        release_id: FromPath[str],
        lang: FromQuery[str] = "fa",
    ) -> Template:
        return _template(request, site.release_overview(release_id, lang))

    @get("/releases/{release_id:str}/agencies/{code:str}", sync_to_thread=True)
    def release_agency(
        self,
        request: Request[Any, Any, Any],
        site: PublicSite,
        release_id: FromPath[str],
        code: FromPath[str],
        lang: FromQuery[str] = "fa",
    ) -> Template:
        return _template(request, site.section(release_id, "agency", code, lang))

    @get("/releases/{release_id:str}/provinces/{code:str}", sync_to_thread=True)
    def release_province(
        self,
        request: Request[Any, Any, Any],
        site: PublicSite,
        release_id: FromPath[str],
        code: FromPath[str],
        lang: FromQuery[str] = "fa",
    ) -> Template:
        return _template(request, site.section(release_id, "province", code, lang))

    @get("/releases/{release_id:str}/methodology", sync_to_thread=True)
    def release_methodology(
        self,
        request: Request[Any, Any, Any],
        site: PublicSite,
        release_id: FromPath[str],
        lang: FromQuery[str] = "fa",
    ) -> Template:
        return _template(request, site.section(release_id, "methodology", "", lang))

    @get("/releases/{release_id:str}/methodology/technical", sync_to_thread=True)
    def release_technical(
        self,
        request: Request[Any, Any, Any],
        site: PublicSite,
        release_id: FromPath[str],
        lang: FromQuery[str] = "fa",
    ) -> Template:
        """The technical note the release stored (formulas, references, computation facts)."""
        return _template(request, site.section(release_id, "technical", "", lang))

    @get("/releases/{release_id:str}/report", sync_to_thread=True)
    def release_report(
        self,
        request: Request[Any, Any, Any],
        site: PublicSite,
        release_id: FromPath[str],
        lang: FromQuery[str] = "fa",
    ) -> Template:
        """Every table and chart of a published release on one printable page."""
        return _template(request, site.report(release_id, lang))

    @get("/releases/{release_id:str}/report.pdf", sync_to_thread=True)
    def release_report_pdf(
        self,
        request: Request[Any, Any, Any],
        site: PublicSite,
        release_id: FromPath[str],
        lang: FromQuery[str] = "fa",
    ) -> Response[Any] | Template:
        """The printed report as a PDF (made once per release by Chromium; 503 without it)."""
        page = site.report(release_id, lang)
        if page.status != 200:
            return _template(request, page)
        try:
            body = site.report_pdf(page, lambda: _pdf_html(request, page, site.public_base_url))
        except PdfUnavailable as exc:
            return _template(request, unavailable(page, exc.message))
        name = f"report-{page.release.period if page.release else release_id}-{page.lang}.pdf"
        return Response(
            body,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": STABLE,
                "Content-Language": page.lang,
            },
        )

    @get(
        "/releases/{release_id:str}/preview",
        guards=[staff("admin", "statistician", "viewer")],
        sync_to_thread=True,
    )
    def release_preview(
        self,
        request: Request[Any, Any, Any],
        site: PublicSite,
        release_id: FromPath[str],
        lang: FromQuery[str] = "fa",
    ) -> Template:
        """A draft (or published) release as its report, for staff before publishing."""
        return _template(request, site.preview(release_id, lang))

    @get("/releases/{release_id:str}/charts/{name:str}", sync_to_thread=True)
    def chart(
        self, site: PublicSite, release_id: FromPath[str], name: FromPath[str]
    ) -> Response[Any]:
        """A chart of a published release as PNG or SVG, drawn once and kept."""
        return _chart(site.chart(release_id, name))
