"""The public pages of published releases: the numbers shown are the release's tables (which
are the analysis package's results), suppressed estimates never appear as numbers, change
arrows only where the change is significant, Persian right-to-left by default, English on
request, friendly 404s, drafts only for staff."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from litestar.testing import TestClient

from analysis.release import ReleaseTables, compute_release
from questionnaires.loading import load_library
from survey.context import AppContext
from survey.kernel.db import transaction
from survey.kernel.principal import CLI_PRINCIPAL, Principal
from survey.models import Release
from survey.publication.releases import (
    canonical_json,
    content_hash,
    create_release,
    publish_release,
)
from survey.registry.questionnaires import register
from survey.results.export import export_responses
from tests.analysis.test_release import ITEMS, make_export
from tests.survey.admin_builders import add_tax_agency, staff_token
from tests.survey.release_builders import ITEMS as BUILDER_ITEMS
from tests.survey.release_builders import release_world

STATISTICIAN = Principal(kind="staff", name="sara", role="statistician")
PERSIAN = str.maketrans("0123456789.-", "۰۱۲۳۴۵۶۷۸۹٫−")
NAMES = {
    "agencies": {
        "TAX": {"fa": "سازمان امور مالیاتی کشور", "en": "Iranian National Tax Administration"},
        "EDU": {"fa": "آموزش و پرورش", "en": "Ministry of Education"},
        "HLT": {"fa": "بیمه سلامت ایران", "en": "Iran Health Insurance"},
        "POS": {"fa": "شرکت ملی پست", "en": "Iran Post"},
    },
    "services": {},
    "provinces": {
        "THR": {"fa": "تهران", "en": "Tehran"},
        "ISF": {"fa": "اصفهان", "en": "Isfahan"},
    },
    "channels": {
        "in_person": {"fa": "حضوری", "en": "in person"},
        "online": {"fa": "برخط", "en": "online"},
    },
}
METHODS = "# How the index is computed\n\nDesign-weighted means, calibrated to frame counts.\n"


@dataclass(frozen=True)
class Published:
    previous_id: int
    current_id: int
    tables: ReleaseTables  # what compute_release returned for the current period


def _store(
    context: AppContext,
    period: str,
    start: date,
    end: date,
    tables: ReleaseTables,
    *,
    number: int = 1,
    supersedes: int | None = None,
    note: str = "",
    complete: bool = True,
) -> int:
    """A release row as `create_release` stores it, with tables from compute_release."""
    content = {
        "period": period,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "previous_period": None,
        "data_as_of": "2026-04-22T00:00:00+00:00",
        "complete": complete,
        "response_count": 100,
        "plan_versions": [1],
        "questionnaire_versions": ["core-transaction@1"],
        "drivers": ITEMS,
        "names": NAMES,
        "methodology": METHODS,
        "notes": tables.notes,
        "tables": tables.to_json(),
        "changes": [],
    }
    text = canonical_json(content)
    with transaction(context.sessions) as session:
        row = Release(
            period=period,
            period_start=start,
            period_end=end,
            number=number,
            supersedes_id=supersedes,
            change_note=note,
            content=text,
            content_hash=content_hash(text),
            created_at=context.clock(),
            created_by="staff:test",
        )
        session.add(row)
        session.flush()
        return int(row.id or 0)


@pytest.fixture(scope="module")
def computed() -> tuple[ReleaseTables, ReleaseTables]:
    """Esfand 1404 and Farvardin 1405 (index 6 points higher): POS has too few responses."""
    previous = make_export(seed=2, period="1404-12")
    current = make_export(seed=1, period="1405-01", shift=6.0)
    before = compute_release(*previous, drivers=ITEMS)
    now = compute_release(*current, previous=previous, drivers=ITEMS)
    return before, now


@pytest.fixture
def published(
    context: AppContext,
    computed: tuple[ReleaseTables, ReleaseTables],
    clock,  # type: ignore[no-untyped-def]
) -> Published:
    before, now = computed
    clock.now = datetime(2026, 4, 23, 6, 30, tzinfo=UTC)  # 3 Ordibehesht 1405
    with transaction(context.sessions) as session:  # item texts label the drivers
        register(session, CLI_PRINCIPAL, load_library()["core-transaction"])
    old = _store(context, "1404-12", date(2026, 2, 20), date(2026, 3, 21), before)
    new = _store(context, "1405-01", date(2026, 3, 21), date(2026, 4, 21), now)
    publish_release(context, STATISTICIAN, old)
    publish_release(context, STATISTICIAN, new)
    return Published(old, new, now)


def _rows(frame: pd.DataFrame, **where: str) -> pd.DataFrame:
    for column, value in where.items():
        frame = frame[frame[column].fillna("").astype(str) == value]
    return frame


def _fa(value: float) -> str:
    return f"{value:.1f}".translate(PERSIAN)


def _row_html(html: str, code: str) -> str:
    match = re.search(rf'<tr[^>]*id="row-{code}">(.*?)</tr>', html, re.S)
    assert match is not None, f"no row for {code}"
    return match[1]


def test_nothing_published_yet_is_an_honest_page(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert "هنوز نتیجه‌ای منتشر نشده است" in response.text
    english = client.get("/?lang=en")
    assert "Nothing has been published yet" in english.text
    assert client.get("/agencies/TAX").status_code == 404
    assert client.get("/methodology").status_code == 404


def test_overview_numbers_are_the_release_tables(client: TestClient, published: Published) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert '<html lang="fa" dir="rtl">' in html
    assert 'href="/?lang=en"' in html and ">English</a>" in html
    assert "<script" not in html and " style=" not in html
    assert "فروردین ۱۴۰۵" in html
    estimates = published.tables.estimates
    national = _rows(estimates, level="national", measure="index").iloc[0]
    assert f"<strong>{_fa(national['estimate'])}</strong>" in html
    assert f"{_fa(national['ci_low'])} تا {_fa(national['ci_high'])}" in html
    agencies = _rows(estimates, level="agency", measure="index")
    for row in agencies.itertuples():
        cells = _row_html(html, row.agency)
        assert NAMES["agencies"][row.agency]["fa"] in cells
        assert f'href="/agencies/{row.agency}"' in cells
        if row.suppressed:
            assert "پاسخ کافی نیست" in cells
            assert "<strong>" not in cells and "<svg" not in cells
        else:
            assert f"<strong>{_fa(row.estimate)}</strong>" in cells
            assert f"{_fa(row.ci_low)} تا {_fa(row.ci_high)}" in cells
            assert f'<span class="grade g-{row.grade}"' in cells
            assert str(int(row.rank)).translate(PERSIAN) in cells
        assert f">{str(int(row.n)).translate(PERSIAN)}</td>" in cells
    # The league is ordered by rank, the suppressed agency last.
    order = [m for m in re.findall(r'id="row-([A-Z]+)"', html) if m in set(agencies["agency"])]
    ranked = agencies.sort_values(["suppressed", "rank"])["agency"].tolist()
    assert order == ranked
    assert 'src="/releases/' in html and "/charts/forest-fa.png" in html


def test_suppressed_estimates_never_appear_as_numbers(
    client: TestClient, published: Published
) -> None:
    estimates = published.tables.estimates
    suppressed = _rows(estimates, level="agency", agency="POS", measure="index").iloc[0]
    assert bool(suppressed["suppressed"]) and pd.isna(suppressed["estimate"])
    html = client.get("/agencies/POS?lang=en").text
    assert "Too few responses for a reliable estimate" in html
    # No estimate of POS (index or share satisfied, any domain) is on its page.
    hidden = _rows(estimates, agency="POS")
    raw = pd.to_numeric(hidden["estimate"], errors="coerce").dropna()
    assert raw.empty or all(f"{v:.1f}" not in html for v in raw)


def test_change_arrows_only_where_significant(client: TestClient, published: Published) -> None:
    html = client.get("/?lang=en").text
    agencies = _rows(published.tables.estimates, level="agency", measure="index")
    seen = {True: 0, False: 0}
    for row in agencies.itertuples():
        cells = _row_html(html, row.agency)
        has_arrow = 'class="arrow up"' in cells or 'class="arrow down"' in cells
        assert has_arrow == bool(row.change_significant), row.agency
        if pd.notna(row.change):
            seen[bool(row.change_significant)] += 1
            if row.change_significant:
                direction = "up" if row.change > 0 else "down"
                assert f'class="arrow {direction}"' in cells
                assert f"{row.change:+.1f}" in cells
            else:
                assert "no significant change" in cells
    assert seen[True] >= 1  # the data were made so that some changes are significant


def test_english_switch_and_solar_hijri_dates(client: TestClient, published: Published) -> None:
    html = client.get("/?lang=en").text
    assert '<html lang="en" dir="ltr">' in html
    assert 'href="/?lang=fa"' in html
    assert "Farvardin 1405" in html
    assert '1 Farvardin 1405 (<bdi dir="ltr">2026-03-21</bdi>)' in html
    assert 'Published: 3 Ordibehesht 1405 (<bdi dir="ltr">2026-04-23</bdi>)' in html
    assert "Iranian National Tax Administration" in html
    assert 'href="/agencies/TAX?lang=en"' in html
    fa = client.get("/?lang=xx").text
    assert fa.startswith('<!doctype html>\n<html lang="fa" dir="rtl">')
    assert '۱ فروردین ۱۴۰۵ (<bdi dir="ltr">2026-03-21</bdi>)' in fa


def test_agency_page_trend_drivers_channels_provinces(
    client: TestClient, published: Published
) -> None:
    response = client.get("/agencies/TAX?lang=en")
    assert response.status_code == 200
    html = response.text
    tables = published.tables
    # Trend: both published periods, each with the agency's index from its own release.
    assert "Esfand 1404" in html and "Farvardin 1405" in html
    assert '<svg class="trend"' in html
    assert f'href="/releases/{published.previous_id}/agencies/TAX?lang=en"' in html
    # Drivers: every item's score and importance.
    items = _rows(tables.items, level="agency", agency="TAX")
    assert len(items) == len(ITEMS)
    assert "My request was dealt with in a reasonable time." in html  # q_time's text
    for row in items.itertuples():
        assert f"<strong>{row.estimate:.1f}</strong>" in html
        if pd.notna(row.importance):
            assert f"{row.importance * 100:.0f}%" in html
    assert f"/releases/{published.current_id}/charts/quadrant-TAX-en.png" in html
    assert f'href="/releases/{published.current_id}/charts/trend-TAX-en.svg"' in html
    # Channels and provinces of the agency.
    for level, key in (("agency_channel", "channel"), ("agency_province", "province")):
        rows = _rows(tables.estimates, level=level, agency="TAX", measure="index")
        for row in rows.itertuples():
            cells = _row_html(html, getattr(row, key))
            if row.suppressed:
                assert "too few responses" in cells
            else:
                assert f"<strong>{row.estimate:.1f}</strong>" in cells
    assert 'href="/provinces/THR?lang=en"' in html


def test_methodology_page(client: TestClient, published: Published) -> None:
    """The short note in the page's language, written from the release's own rules; the
    stored technical note one link away."""
    html = client.get("/methodology?lang=en").text
    assert "How the index is computed" not in html  # the technical note is not on this page
    assert "fewer than 30 answers, fewer than 30 effective answers" in html
    assert "CV at most 5% and at least 100 answers" in html and "95% interval" in html
    technical = f"/releases/{published.current_id}/methodology/technical"
    assert f'href="{technical}?lang=en"' in html
    fa = client.get("/methodology").text
    assert '<html lang="fa" dir="rtl">' in fa and 'lang="en"' not in fa.split("<main", 1)[1]
    assert "کمتر از ۳۰ پاسخ" in fa and "۳۳٫۳٪" in fa and "بازه اطمینان ۹۵٪" in fa
    assert f'href="{technical}"' in fa
    page = client.get(technical)
    assert page.status_code == 200
    assert "<h1>How the index is computed</h1>" in page.text  # the stored note, as HTML
    assert '<section class="prose" lang="en" dir="ltr"' in page.text


def test_stable_release_pages_and_report(client: TestClient, published: Published) -> None:
    old = client.get(f"/releases/{published.previous_id}?lang=en")
    assert old.status_code == 200 and "Esfand 1404" in old.text
    assert "max-age=86400" in old.headers["cache-control"]
    report = client.get(f"/releases/{published.current_id}/report?lang=en")
    assert report.status_code == 200
    html = report.text
    for code in NAMES["agencies"]:
        assert f'id="agency-{code}"' in html
    assert 'id="methodology"' in html and "fewer than 30 answers" in html
    assert f'href="/releases/{published.current_id}/report.pdf?lang=en"' in html
    assert "@top-center" in html and "counter(pages" in html  # the running header, page N of M


def test_unknown_things_get_a_friendly_404(client: TestClient, published: Published) -> None:
    for path in (
        "/agencies/NOPE",
        "/provinces/NOPE",
        "/releases/999",
        "/releases/abc",
        "/releases/99999999999999999999",
        "/releases/0",
        "/releases/" + "9" * 5000,
        "/releases/۱",
        "/releases/999/report",
        f"/releases/{published.current_id}/agencies/NOPE",
    ):
        response = client.get(path + "?lang=en")
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert "Page not found" in response.text and 'href="/?lang=en"' in response.text
    chart = client.get(f"/releases/{published.current_id}/charts/nope.png")
    assert chart.status_code == 404


def test_a_browser_at_an_address_without_a_page_gets_the_sites_404_page(
    client: TestClient,
) -> None:
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    persian = client.get("/agencies", headers=html)
    assert persian.status_code == 404
    assert persian.headers["content-type"].startswith("text/html")
    assert 'dir="rtl"' in persian.text and "در این نشانی صفحه‌ای نیست" in persian.text
    english = client.get("/no/such/page?lang=en", headers=html)
    assert english.status_code == 404
    assert "There is no page at this address" in english.text
    assert 'href="/?lang=en"' in english.text
    hostile = client.get('/"><script>alert(1)</script>', headers=html)
    assert hostile.status_code == 404 and "<script>alert(1)" not in hostile.text
    # API clients, and the API even from a browser, keep the JSON error.
    assert client.get("/no/such/page").json() == {"error": "Not Found"}
    api = client.get("/api/v1/no-such-thing", headers=html)
    assert api.status_code == 404 and api.json() == {"error": "Not Found"}


def test_drafts_are_hidden_from_the_public_and_previewed_by_staff(
    client: TestClient, context: AppContext, computed: tuple[ReleaseTables, ReleaseTables]
) -> None:
    draft = _store(context, "1405-01", date(2026, 3, 21), date(2026, 4, 21), computed[1])
    assert client.get(f"/releases/{draft}").status_code == 404
    assert "Nothing has been published yet" in client.get("/?lang=en").text
    assert client.get(f"/releases/{draft}/preview").status_code == 401
    add_tax_agency(context)
    agency_token = staff_token(context, "agency", agency="TAX")
    assert client.get(f"/releases/{draft}/preview", headers=agency_token).status_code == 403
    preview = client.get(
        f"/releases/{draft}/preview?lang=en", headers=staff_token(context, "viewer")
    )
    assert preview.status_code == 200
    assert "Draft" in preview.text and "<svg" in preview.text
    assert preview.headers["cache-control"] == "no-store"


def test_charts_are_served_per_release_and_kept(client: TestClient, published: Published) -> None:
    base = f"/releases/{published.current_id}/charts"
    for name in ("forest-fa", "forest-en", "trend-TAX-fa", "drivers-TAX-en", "quadrant-TAX-fa"):
        png = client.get(f"{base}/{name}.png")
        assert png.status_code == 200, name
        assert png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")
        assert "immutable" in png.headers["cache-control"]
    svg = client.get(f"{base}/forest-en.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content
    again = client.get(f"{base}/forest-en.svg")
    assert again.content == svg.content  # drawn once, served from memory
    assert client.get(f"{base}/trend-NOPE-fa.png").status_code == 404
    assert client.get(f"{base}/forest-de.png").status_code == 404
    assert client.get("/releases/999/charts/forest-fa.png").status_code == 404


def test_pages_of_a_release_the_service_computed_equal_the_analysis_and_the_csv(
    client: TestClient,
    context: AppContext,
    clock,  # type: ignore[no-untyped-def]
) -> None:
    """From answered responses: create and publish both months through the service, then the
    numbers on the overview equal compute_release on the same export and the open-data CSV."""
    clock.now = datetime(2026, 5, 2, 8, 0, tzinfo=UTC)
    release_world(context)
    ids = []
    for period in ("1404-12", "1405-01"):
        draft = create_release(context, STATISTICIAN, period)
        ids.append(publish_release(context, STATISTICIAN, draft.id).id)
    current = export_responses(context, date(2026, 3, 21), date(2026, 4, 20))
    previous = export_responses(context, date(2026, 2, 20), date(2026, 3, 20))
    expected = compute_release(
        current.responses,
        current.frame_counts,
        previous=(previous.responses, previous.frame_counts),
        drivers=list(BUILDER_ITEMS),
    ).estimates
    csv = pd.read_csv(io.BytesIO(client.get(f"/api/v1/releases/{ids[1]}/estimates.csv").content))
    html = client.get("/?lang=en").text
    assert (
        "Farvardin 1405" in html
        and 'Published: 12 Ordibehesht 1405 (<bdi dir="ltr">2026-05-02</bdi>)' in html
    )
    for source in (expected, csv):
        agencies = _rows(source, level="agency", measure="index")
        assert set(agencies["agency"]) == {"TAX", "EDU"}
        for row in agencies.itertuples():
            cells = _row_html(html, row.agency)
            if row.suppressed:
                assert "too few responses" in cells
            else:
                assert f"<strong>{row.estimate:.1f}</strong>" in cells
                assert f"{row.ci_low:.1f}–{row.ci_high:.1f}" in cells
            assert ('class="arrow' in cells) == bool(row.change_significant)
    # The agency page's trend covers both published months.
    agency = client.get("/agencies/EDU?lang=en").text
    assert "Esfand 1404" in agency and "Farvardin 1405" in agency
    assert client.get("/provinces/tehran?lang=en").status_code == 200


def test_a_corrected_release_points_to_its_correction(
    client: TestClient, context: AppContext, published: Published
) -> None:
    first = client.get(f"/releases/{published.current_id}?lang=en").text
    assert "was corrected later" not in first
    fixed = _store(
        context,
        "1405-01",
        date(2026, 3, 21),
        date(2026, 4, 21),
        published.tables,
        number=2,
        supersedes=published.current_id,
        note="Late responses from Isfahan added.",
    )
    publish_release(context, STATISTICIAN, fixed)
    old = client.get(f"/releases/{published.current_id}?lang=en").text
    assert "was corrected later" in old and f'href="/releases/{fixed}?lang=en"' in old
    latest = client.get("/?lang=en").text
    assert "This release is a correction (Version 2)" in latest
    assert "Late responses from Isfahan added." in latest
    assert f'href="/releases/{fixed}?lang=en"' in latest  # the stable link of the correction


def test_an_interim_release_says_its_figures_will_change(
    client: TestClient, context: AppContext, published: Published
) -> None:
    interim = _store(
        context, "1405-02", date(2026, 4, 21), date(2026, 5, 22), published.tables, complete=False
    )
    publish_release(context, STATISTICIAN, interim)
    html = client.get("/?lang=en").text
    assert "Ordibehesht 1405" in html and "the figures are interim" in html
    assert "Data as of: 2 Ordibehesht 1405" in html
    complete = client.get(f"/releases/{published.current_id}?lang=en").text
    assert "Farvardin 1405" in complete and "the figures are interim" not in complete


def test_a_release_without_drivers_or_previous_period(
    client: TestClient, context: AppContext
) -> None:
    """No driver analysis and nothing to compare with: the pages say so instead of failing."""
    tables = compute_release(*make_export(seed=3, period="1405-01"))
    assert tables.items.empty
    rid = _store(context, "1405-01", date(2026, 3, 21), date(2026, 4, 21), tables)
    publish_release(context, STATISTICIAN, rid)
    overview = client.get("/?lang=en").text
    assert "no previous period" in overview and 'class="arrow' not in overview
    agency = client.get("/agencies/TAX?lang=en")
    assert agency.status_code == 200
    assert "No aspect scores for this agency." in agency.text
    assert "Only one period has been published." in agency.text
    assert client.get(f"/releases/{rid}/charts/drivers-TAX-en.png").status_code == 200
    report = client.get(f"/releases/{rid}/report")
    assert report.status_code == 200
    css = client.get("/static/publication.css").text
    assert "@media print" in css and "break-before: page" in css
    assert "@media (max-width: 40rem)" in css


def test_the_site_and_api_services_import_no_web_framework() -> None:
    """What the pages and the releases API answer is decided without Litestar (survey.
    publication.site and .documents); pages.py and api.py only render and serve it."""
    code = (
        "import sys, survey.publication.site, survey.publication.documents; "
        "print('litestar' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
