"""A real headless Chromium renders the publication pages (overview, an agency, methodology)
in Persian and English at a 360-pixel phone width, against a real uvicorn server: `lang` and
`dir` are right, nothing scrolls sideways, the charts load. Screenshots go to
docs/screenshots/publication-*.png.

Needs Debian's `chromium` and `chromium-driver` (and selenium); skipped, saying why, without.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from survey.app import create_app
from survey.config import Settings
from survey.context import AppContext
from tests.survey.test_publication_pages import (  # noqa: F401 (fixtures)
    NAMES,
    computed,
    published,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/lib/chromium/chromedriver" if Path("/usr/lib/chromium/chromedriver").exists() else None
)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE_WIDTH = 360

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Chromium or chromedriver is not installed (apt-get install chromium chromium-driver)",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(migrated_settings: Settings, context: AppContext) -> Iterator[str]:
    port = _free_port()
    app = create_app(migrated_settings, context=context)
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not running.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=800,900",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    _phone(driver, 800)  # a desktop window cannot be narrower than 500 px: emulate the phone
    try:
        yield driver
    finally:
        driver.quit()


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
