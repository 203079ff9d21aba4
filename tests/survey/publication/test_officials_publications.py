"""The demo's publications as officials use them (issue 18): every image a page shows exists,
an agency without a driver chart says why in words, the Persian pages are Persian, the
methodology note is the release's own in the page's language, and the printed report is a
PDF of at most 40 A4 pages, made once per release, or a clear 503 without Chromium."""

from __future__ import annotations

import io
import re
import time
import unicodedata
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest
from litestar.testing import TestClient
from pypdf import PdfReader

from survey.app import create_app
from survey.context import AppContext
from survey.publication.site import words
from survey.publication.view import Fmt, estimate
from tests.survey.browser_support import requires_chromium
from tests.survey.publication.conftest import DemoWorld

WORDS = words()
PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


@pytest.fixture(scope="module")
def client(demo_world: DemoWorld) -> Iterator[TestClient]:
    app = create_app(demo_world.settings, context=demo_world.context)
    with TestClient(app, base_url="https://testserver.local") as test_client:
        yield test_client


def release_pages(world: DemoWorld, lang: str) -> list[str]:
    """Every page of every published release that this issue's pages cover (the province
    pages are tested with the province page)."""
    query = "?lang=en" if lang == "en" else ""
    paths = ["/", "/methodology"]
    for release in world.releases:
        base = f"/releases/{release.id}"
        paths += [base, f"{base}/methodology", f"{base}/report"]
        paths += [f"{base}/agencies/{code}" for code in sorted(release.agencies)]
    paths += [f"/agencies/{code}" for code in world.agencies]
    return [p + query for p in paths]


class Page(HTMLParser):
    """Visible text (not inside an element marked lang="en"), alt and aria-label texts, and
    the addresses of images."""

    VOID: ClassVar[set[str]] = {"area", "base", "br", "col", "embed", "hr", "img", "input"}
    VOID |= {"link", "meta", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []  # (tag, inside English)
        self.texts: list[str] = []
        self.images: list[str] = []

    def _english(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        english = self._english() or values.get("lang", "fa") != "fa"
        if tag == "img":
            self.images.append(values["src"])
        if tag == "source" and "srcset" in values:
            self.images.append(values["srcset"])
        if not english:
            self.texts += [values[k] for k in ("alt", "aria-label", "title") if values.get(k)]
        if tag not in self.VOID:
            self.stack.append((tag, english or tag in ("style", "script")))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self._english() and data.strip():
            self.texts.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


# What a Persian page may show in Latin script or with Latin digits (everything else must be
# Persian: Persian letters and digits, Persian and neutral punctuation and symbols):
CODES = {"A", "B", "C", "CV", "CSV", "JSON", "PDF", "PNG", "SVG"}  # grades, abbreviations
ALLOWED = (
    re.compile(r"\d{4}-\d{2}-\d{2}"),  # the Gregorian date beside each Solar Hijri date
    re.compile(r"(?:https?://|/)\S*"),  # addresses (the release's stable link)
    re.compile(r"[a-z0-9_-]+@\d+"),  # questionnaire versions (core-transaction@1)
)
LATIN = re.compile(r"[A-Za-z0-9]")


def foreign_words(texts: list[str]) -> list[str]:
    found = []
    for text in texts:
        for token in text.split():
            if not LATIN.search(token):
                continue
            bare = token.strip("()[]«»،,.:;·–-")
            if bare in CODES or any(p.fullmatch(bare) for p in ALLOWED):
                continue
            found.append(token)
    return found


def test_the_persian_pages_are_persian_apart_from_codes_and_numbers(
    client: TestClient, demo_world: DemoWorld
) -> None:
    for path in release_pages(demo_world, "fa"):
        response = client.get(path)
        assert response.status_code == 200, path
        page = parse(response.text)
        foreign = foreign_words(page.texts)
        # the language switch is the only English text, and it is marked as English
        assert foreign == [], f"{path}: {sorted(set(foreign))[:20]}"
        assert "−۰٫۰" not in response.text, path  # a change that rounds to zero has no sign


def test_the_check_finds_english_and_latin_digits() -> None:
    page = parse(
        '<p>شاخص 61.7 و Satisfaction <span lang="en">English</span> CSV A (2026-10-23) '
        "/releases/2 core-transaction@1</p>"
    )
    assert foreign_words(page.texts) == ["61.7", "Satisfaction"]


def test_every_image_on_every_published_page_is_an_image(
    client: TestClient, demo_world: DemoWorld
) -> None:
    seen: dict[str, str] = {}
    provinces = [
        f"/releases/{r.id}/provinces/{code}" for r in demo_world.releases for code in r.provinces
    ]
    for path in release_pages(demo_world, "fa") + release_pages(demo_world, "en") + provinces:
        response = client.get(path)
        assert response.status_code == 200, path
        for src in parse(response.text).images:
            if src not in seen:
                image = client.get(src)
                assert image.status_code == 200, f"{src} on {path}: {image.status_code}"
                seen[src] = image.headers["content-type"]
            assert seen[src].startswith("image/"), f"{src} on {path}: {seen[src]}"
    assert any("/charts/forest-fa" in src for src in seen)  # the overview's chart at least


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_an_agency_without_a_driver_chart_says_why_in_its_language(
    client: TestClient, demo_world: DemoWorld, lang: str
) -> None:
    query = "?lang=en" if lang == "en" else ""
    reasons = 0
    for code in demo_world.agencies:
        html = client.get(f"/agencies/{code}{query}").text
        chart = f"/charts/quadrant-{code}-{lang}"
        if chart in html:
            assert client.get(f"/releases/{demo_world.latest.id}{chart}.png").status_code == 200
            continue
        reasons += 1
        assert "<img" not in html.split(WORDS[lang]["drivers_heading"], 1)[1].split("</section>")[0]
        assert WORDS[lang]["drivers_no_chart"] in html
        assert any(WORDS[lang][f"drivers_why_{why}"] in html for why in ("too_few", "scores"))
        # the image the page no longer links is no blank chart either: it does not exist
        assert client.get(f"/releases/{demo_world.latest.id}{chart}.png").status_code == 404
    assert reasons  # the demo's months have too few complete answers for driver importance


def test_a_change_that_rounds_to_zero_reads_no_change() -> None:
    row = {"n": 80, "estimate": 61.0, "ci_low": 57.0, "ci_high": 65.0, "change": -0.04}
    row |= {"change_ci_low": -5.0, "change_ci_high": 4.9, "change_significant": False}
    for lang, zero in (("fa", "۰٫۰"), ("en", "0.0")):
        change = estimate(row, Fmt(lang))["change"]
        assert change["zero"] and zero in change["value"] and "−" not in change["value"]
        assert "-" not in change["value"]
    moved = estimate(row | {"change": -1.26}, Fmt("fa"))["change"]
    assert not moved["zero"] and "−۱٫۳" in moved["value"]


def test_the_methodology_page_is_the_releases_note_in_the_pages_language(
    client: TestClient, demo_world: DemoWorld
) -> None:
    latest = demo_world.latest
    notes = latest.tables.notes
    fa = client.get("/methodology").text
    en = client.get("/methodology?lang=en").text
    assert "**" not in fa and "<strong>چقدر مطمئنیم.</strong>" in fa
    assert (
        f"{latest.response_count:,}".replace(",", "٬").translate(
            str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
        )
        in fa
    )
    assert "<strong>How sure.</strong>" in en and f"{latest.response_count:,} citizens" in en
    assert notes["summary_en"].split("\n")[0].removeprefix("**Who answered.** ")[:40] in en
    assert "analysis." not in fa and "analysis." not in en  # no Python names for readers
    technical = client.get(f"/releases/{latest.id}/methodology/technical?lang=en").text
    assert "For statisticians" in technical and "Fay-Herriot" in technical


@requires_chromium
@pytest.mark.parametrize("lang", ["fa", "en"])
def test_the_report_prints_to_a_pdf_of_at_most_40_a4_pages_made_once(
    client: TestClient, demo_world: DemoWorld, lang: str
) -> None:
    query = "?lang=en" if lang == "en" else ""
    address = f"/releases/{demo_world.latest.id}/report.pdf{query}"
    started = time.monotonic()
    response = client.get(address)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"] == "application/pdf"
    assert "attachment" in response.headers["content-disposition"]
    body = response.content
    pdf = PdfReader(io.BytesIO(body))
    assert 3 <= len(pdf.pages) <= 40, len(pdf.pages)
    # every page A4 portrait, with the release's identity and "page N of M"
    latest = demo_world.latest
    if lang == "en":
        period = Fmt("en").period(latest.period)
        marks = [f"Resultsreport:{period}·Version{latest.number}".replace(" ", "")]
    else:
        marks = ["گزارشنتایج", "نسخه", "صفحه", latest.period[:4].translate(PERSIAN_DIGITS)]
    for number, page in enumerate(pdf.pages, start=1):
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert abs(width - 595.3) < 1 and abs(height - 841.9) < 1, (width, height)
        text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", page.extract_text()))
        assert all(mark in text for mark in marks), (number, text[:200])
        if lang == "en":
            assert f"Page{number}of{len(pdf.pages)}" in text
    made = time.monotonic() - started
    kept = list((demo_world.settings.var_dir / "reports").glob("report-*.pdf"))
    assert kept, "the PDF is kept"
    started = time.monotonic()
    again = client.get(address)
    assert again.content == body  # the kept file: a release never changes
    assert time.monotonic() - started < max(made / 5, 0.5)


def test_without_chromium_the_pdf_is_a_clear_503(demo_world: DemoWorld, tmp_path: Path) -> None:
    settings = demo_world.settings.with_overrides(
        chromium=str(tmp_path / "no-chromium-here"), var_dir=tmp_path / "var"
    )
    context = AppContext.build(settings)
    app = create_app(settings, context=context)
    with TestClient(app, base_url="https://testserver.local") as client:
        rid = demo_world.latest.id
        response = client.get(f"/releases/{rid}/report.pdf")
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["cache-control"] == "no-store"
        assert WORDS["fa"]["pdf_unavailable_text"] in response.text
        assert f'href="/releases/{rid}/report"' in response.text
        assert "no-chromium-here" in response.text and "not installed" in response.text
        english = client.get(f"/releases/{rid}/report.pdf?lang=en")
        assert english.status_code == 503 and "cannot be made right now" in english.text
        assert client.get("/releases/999/report.pdf").status_code == 404
    context.close()
    assert not (tmp_path / "var" / "reports").exists()
