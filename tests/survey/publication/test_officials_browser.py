"""A real headless Chromium at a 360-pixel phone width on the demo's publications (issue 18):
every agency page, the methodology page and the printed report, in Persian and English. The
pages are right-to-left (Persian) or left-to-right, nothing scrolls sideways, every image loads,
no chart text is smaller than 12 pixels (images and inline charts alike), the methodology note
fits in two phone screens. Screenshots go to docs/screenshots/officials-*.png.

Needs Debian's `chromium` and `chromium-driver` (and selenium); skipped, saying why, without.
"""

from __future__ import annotations

import base64
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from survey.app import create_app
from survey.publication.site import words
from tests.survey.browser_support import SCREENSHOTS, chromium, live_server, requires_chromium
from tests.survey.publication.conftest import DemoWorld

PHONE_WIDTH = 360
PHONE_HEIGHT = 640
MIN_TEXT_PX = 12.0
pytestmark = requires_chromium


@pytest.fixture(scope="module")
def server(demo_world: DemoWorld) -> Iterator[str]:
    with live_server(create_app(demo_world.settings, context=demo_world.context)) as base:
        yield base


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(
        tmp_path_factory.mktemp("chromium-profile"),
        window=(800, 900),
        page_load_timeout=90,
        flags=("--hide-scrollbars",),
    ) as driver:
        _phone(driver, PHONE_HEIGHT)
        yield driver


def _phone(driver: Any, height: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE_WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": True},
    )


def _open_whole(driver: Any, url: str) -> None:
    """The page on a phone as tall as the page, so that every lazy image is loaded."""
    _phone(driver, PHONE_HEIGHT)
    driver.get(url)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    _phone(driver, min(height, 16000))
    deadline = time.monotonic() + 90
    script = "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    while not driver.execute_script(script):
        if time.monotonic() > deadline:
            raise AssertionError(f"images did not load on {url}")
        time.sleep(0.1)


def _svg_text_px(svg: bytes, rendered_width: float) -> float:
    """The smallest text of a matplotlib SVG (text drawn as glyphs scaled by size / 100) in
    screen pixels when the image is `rendered_width` pixels wide."""
    text = svg.decode("utf-8")
    view_box = re.search(r'viewBox="0 0 ([\d.]+) ', text)
    assert view_box is not None, "not a matplotlib SVG"
    view_width = float(view_box[1])
    sizes = [float(s) * 100 for s in re.findall(r"scale\(([\d.]+) -[\d.]+\)", text)]
    assert sizes, "no text found in the chart"
    return min(sizes) * rendered_width / view_width


def _check_page(driver: Any, base: str, path: str, lang: str) -> None:
    _open_whole(driver, f"{base}{path}")
    html = driver.find_element("tag name", "html")
    assert html.get_attribute("lang") == lang, path
    assert html.get_attribute("dir") == ("rtl" if lang == "fa" else "ltr"), path
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH, f"{path} scrolls sideways in {lang}: {width}px"
    assert "−۰٫۰" not in driver.page_source and "(-0.0)" not in driver.page_source
    charts = driver.execute_script(
        "return Array.from(document.querySelectorAll('figure.chart img'))"
        ".map(i => [i.currentSrc, i.getBoundingClientRect().width])"
    )
    for src, rendered in charts:
        svg_src = src if src.endswith(".svg") else src[:-4] + ".svg"
        with urllib.request.urlopen(svg_src) as answer:  # the test's own server
            smallest = _svg_text_px(answer.read(), rendered)
        assert smallest >= MIN_TEXT_PX, f"{svg_src} on {path}: text {smallest:.1f}px"
    inline = driver.execute_script(
        "return Array.from(document.querySelectorAll('main svg text'))"
        ".map(t => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a)"
    )
    if inline:
        assert min(inline) >= MIN_TEXT_PX - 0.05, f"{path}: inline chart text {min(inline):.1f}px"


def _screenshot(driver: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"officials-{name}.png"))


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_every_agency_page_on_a_phone(
    lang: str, server: str, browser: Any, demo_world: DemoWorld
) -> None:
    query = "?lang=en" if lang == "en" else ""
    T = words()[lang]
    shot_without_chart = False
    for code in demo_world.agencies:
        path = f"/agencies/{code}{query}"
        _check_page(browser, server, path, lang)
        name = demo_world.latest.agencies[code][lang]
        assert name in browser.find_element("tag name", "h1").text
        section = browser.find_element("id", f"drivers-{code}").find_element("xpath", "..")
        if not section.find_elements("tag name", "img"):
            assert T["drivers_no_chart"] in section.text
            if not shot_without_chart:
                _screenshot(browser, f"agency-{lang}")
                shot_without_chart = True
    _open_whole(browser, f"{server}/{query}")
    _check_page(browser, server, f"/{query}", lang)
    _screenshot(browser, f"overview-{lang}")


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_methodology_fits_two_phone_screens(lang: str, server: str, browser: Any) -> None:
    query = "?lang=en" if lang == "en" else ""
    _check_page(browser, server, f"/methodology{query}", lang)
    note = browser.find_element("css selector", "main .summary")
    height = note.rect["height"]
    assert 0 < height <= 2 * PHONE_HEIGHT, f"the note is {height}px tall on a phone"
    _phone(browser, PHONE_HEIGHT * 2)
    _screenshot(browser, f"methodology-{lang}")
    link = browser.find_element("css selector", ".technical-link a")
    link.click()
    assert "/methodology/technical" in browser.current_url
    assert browser.find_element("css selector", "section.prose").get_attribute("lang") == "en"


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_the_report_on_a_phone_and_on_paper(
    lang: str, server: str, browser: Any, demo_world: DemoWorld, tmp_path: Path
) -> None:
    query = "?lang=en" if lang == "en" else ""
    path = f"/releases/{demo_world.latest.id}/report{query}"
    _check_page(browser, server, path, lang)
    _phone(browser, 2400)
    _screenshot(browser, f"report-{lang}")
    # On paper (Chromium's own print): A4, the release's identity and page numbers on every
    # page, at most 40 pages for a release of the demo's size.
    body = base64.b64decode(browser.print_page(_print_options()))
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", body))
    assert 3 <= pages <= 40, pages


def _print_options() -> Any:
    from selenium.webdriver.common.print_page_options import PrintOptions

    options = PrintOptions()
    options.background = True
    options.page_width, options.page_height = 21.0, 29.7  # A4, in centimetres
    return options
