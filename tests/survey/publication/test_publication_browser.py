"""A real headless Chromium renders the publication pages (overview, an agency, methodology)
in Persian and English at a 360-pixel phone width, against a real uvicorn server: `lang` and
`dir` are right, nothing scrolls sideways, the charts load. Screenshots go to
docs/screenshots/publication-*.png.

Needs Debian's `chromium` and `chromium-driver` (and selenium); skipped, saying why, without.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from survey.app import create_app
from survey.config import Settings
from survey.context import AppContext
from tests.survey.browser_support import SCREENSHOTS, chromium, live_server, requires_chromium
from tests.survey.publication.test_publication_pages import (  # noqa: F401 (fixtures)
    NAMES,
    computed,
    published,
)

PHONE_WIDTH = 360

pytestmark = requires_chromium


@pytest.fixture
def server(migrated_settings: Settings, context: AppContext) -> Iterator[str]:
    with live_server(create_app(migrated_settings, context=context)) as base:
        yield base


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(
        tmp_path / "chromium-profile",
        window=(800, 900),
        page_load_timeout=60,
        flags=("--hide-scrollbars",),
    ) as driver:
        _phone(driver, 800)  # a desktop window cannot be narrower than 500 px: emulate the phone
        yield driver


def _phone(driver: Any, height: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE_WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": True},
    )


def _images_loaded(driver: Any, seconds: float = 60) -> None:
    """Wait until every image has loaded (charts are drawn on first request)."""
    deadline = time.monotonic() + seconds
    script = "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    while not driver.execute_script(script):
        if time.monotonic() > deadline:
            raise AssertionError(f"images did not load on {driver.current_url}")
        time.sleep(0.1)


def _whole_page(driver: Any) -> None:
    """A phone as tall as the page: every (lazy) image is in view and gets loaded."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    _phone(driver, min(height, 12000))
    _images_loaded(driver)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    _phone(driver, min(height, 12000))


PAGES = {
    "overview": ("/", {"fa": "شاخص رضایت کل کشور", "en": "National satisfaction index"}),
    "agency": ("/agencies/TAX", NAMES["agencies"]["TAX"]),
    "methodology": ("/methodology", {"fa": "روش‌شناسی", "en": "Methodology"}),
}


@pytest.mark.usefixtures("published")
@pytest.mark.parametrize("lang", ["fa", "en"])
def test_publication_pages_on_a_phone(lang: str, server: str, browser: Any) -> None:
    for name, (path, heading) in PAGES.items():
        browser.get(f"{server}{path}?lang={lang}")
        html = browser.find_element("tag name", "html")
        assert html.get_attribute("lang") == lang
        assert html.get_attribute("dir") == ("rtl" if lang == "fa" else "ltr")
        assert heading[lang] in browser.find_element("tag name", "h1").text
        viewport = browser.execute_script("return document.documentElement.clientWidth")
        assert viewport == PHONE_WIDTH
        _whole_page(browser)
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= PHONE_WIDTH, f"{path} scrolls sideways in {lang}: {width}px"
        main = browser.find_element("tag name", "main")
        assert main.value_of_css_property("direction") == ("rtl" if lang == "fa" else "ltr")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / f"publication-{name}-{lang}.png"))
        _phone(browser, 800)
    # The language switch leads to the same page in the other language.
    browser.find_element("css selector", ".lang a").click()
    other = "en" if lang == "fa" else "fa"
    assert browser.find_element("tag name", "html").get_attribute("lang") == other
    assert browser.current_url.endswith(f"/methodology?lang={other}")
