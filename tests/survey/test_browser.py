"""A real headless Chromium answers web questionnaires in Persian and in English, with
JavaScript switched off (as on the oldest phones), against a real uvicorn server.

Needs Debian's `chromium` and `chromium-driver` (and selenium); skipped, saying why, without
them. Screenshots go to docs/screenshots/answer-fa.png and answer-en.png.
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
from tests.survey.answer_builders import AnswerWorld

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/lib/chromium/chromedriver" if Path("/usr/lib/chromium/chromedriver").exists() else None
)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

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
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
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
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=420,2400",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"profile.managed_default_content_settings.javascript": 2}
    )
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_for_url(driver: Any, fragment: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while fragment not in driver.current_url:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{fragment!r} not in {driver.current_url!r}: {driver.page_source[:2000]}"
            )
        time.sleep(0.05)
    while driver.find_elements("tag name", "h1") == []:
        if time.monotonic() > deadline:
            raise AssertionError(f"page at {driver.current_url} has no heading")
        time.sleep(0.05)


def _choose(driver: Any, item: str, value: str) -> None:
    """Tap the option's label, as a finger would (the whole label is the target)."""
    driver.find_element("css selector", f'label[for="field-{item}-{value}"]').click()


def _answer(driver: Any) -> None:
    _choose(driver, "q_overall", "4")
    _choose(driver, "q_time", "5")
    _choose(driver, "q_respect", "na")
    _choose(driver, "q_information", "3")
    _choose(driver, "q_outcome", "2")


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_citizen_answers_in_a_real_browser(
    lang: str, server: str, browser: Any, context: AppContext
) -> None:
    world = AnswerWorld(context)
    invited = world.invite(language="fa")
    query = "?lang=en" if lang == "en" else ""
    browser.get(f"{server}/s/{invited.token}{query}")
    html = browser.find_element("tag name", "html")
    assert html.get_attribute("lang") == lang
    assert html.get_attribute("dir") == ("rtl" if lang == "fa" else "ltr")
    assert browser.find_element("css selector", "fieldset").value_of_css_property("direction") == (
        "rtl" if lang == "fa" else "ltr"
    )

    # Legends hug the right edge in Persian, the left edge in English.
    legend = browser.find_element("css selector", "#item-q_overall legend").rect
    box = browser.find_element("css selector", "#item-q_overall").rect
    if lang == "fa":
        assert box["x"] + box["width"] - (legend["x"] + legend["width"]) < 40
    else:
        assert legend["x"] - box["x"] < 40

    _answer(browser)
    browser.find_element("css selector", 'button[value="save"]').click()
    _wait_for_url(browser, "saved=1")
    assert browser.find_element("css selector", "#field-q_overall-4").is_selected()
    # The conditional item appears once its condition holds (server-side, no script).
    _choose(browser, "q_next_steps", "1")
    improve = "نوبت‌دهی اینترنتی بهتر شود" if lang == "fa" else "Online booking, please"
    browser.find_element("css selector", "#field-q_improve").send_keys(improve)
    main = browser.find_element("css selector", "main")
    browser.set_window_size(420, 6000)  # taller than the page: nothing scrolled away
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    main.screenshot(str(SCREENSHOTS / f"answer-{lang}.png"))
    browser.find_element("css selector", 'button[value="submit"]').click()
    _wait_for_url(browser, "/thanks")
    title = browser.find_element("tag name", "h1").text
    assert title == ("سپاس از شما" if lang == "fa" else "Thank you")

    response = world.response_of(invited.invitation_id)
    assert response is not None and response.status == "completed"
    assert response.answers["q_overall"] == 4 and response.answers["q_next_steps"] == 1
    assert response.answers["q_improve"] == improve
    assert world.invitation(invited.invitation_id).status == "completed"

    browser.get(f"{server}/s/{invited.token}")
    assert browser.find_element("tag name", "h1").text == "این پیوند دیگر باز نیست"
