"""Server-rendered pages: the ingestion overview at `/ingestion` (Persian by default, English
with ?lang=en). `/` is the publication overview (survey.publication.pages).

The page shows aggregate counts only, to admins, statisticians and viewers (signed in on
/login, or with a bearer token). Numbers and dates come formatted for the language from
`survey.ingestion.overview.overview_page` (Persian digits, Solar Hijri dates with the Gregorian
date beside); every word of the page lives in the template.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromQuery
from litestar.response import Template

from survey.http.dependencies import Caller, Context
from survey.http.guards import staff
from survey.http.staff import staff_frame
from survey.ingestion.overview import overview_page


class PageController(Controller):
    path = "/"
    tags = ("pages",)
    include_in_schema = False

    @get("/ingestion", guards=[staff("admin", "statistician", "viewer")], sync_to_thread=True)
    def overview(
        self,
        request: Request[Any, Any, Any],
        context: Context,
        principal: Caller,
        lang: FromQuery[str] = "fa",
    ) -> Template:
        """What was reported and sampled, per agency, channel and day, and the plan in force.

        Staff only (a session cookie from /login or a bearer token); not agency operators,
        since the page shows every agency's figures."""
        page = overview_page(context, lang)
        return Template(
            template_name="ingestion/overview.html.j2",
            context={**page, **staff_frame(request, principal, "ingestion")},
            headers={"Content-Language": page["lang"], "Cache-Control": "no-store"},
        )
