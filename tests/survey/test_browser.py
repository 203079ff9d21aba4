"""A real headless Chromium answers web questionnaires in Persian and in English, with
JavaScript switched off (as on the oldest phones), against a real uvicorn server.

Needs Debian's `chromium` and `chromium-driver` (and selenium); skipped, saying why, without
them. Screenshots go to docs/screenshots/answer-fa.png and answer-en.png.
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
from tests.survey.answer_builders import AnswerWorld
from tests.survey.browser_support import SCREENSHOTS, chromium, live_server, requires_chromium

pytestmark = requires_chromium


@pytest.fixture
def server(migrated_settings: Settings, context: AppContext) -> Iterator[str]:
    with live_server(create_app(migrated_settings, context=context)) as base:
        yield base


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A phone-sized window with JavaScript switched off (as on the oldest phones)."""
    with chromium(tmp_path / "chromium-profile", window=(420, 2400), javascript=False) as driver:
        yield driver


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
