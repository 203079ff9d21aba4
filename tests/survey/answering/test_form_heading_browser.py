"""The form's heading in a real browser, in Persian and English: the agency, the service, the
day of the transaction in both calendars and how the citizen was chosen, above the title.
Screenshots: docs/screenshots/answer-heading-fa.png and answer-heading-en.png."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from survey.context import AppContext
from tests.survey.answer_builders import AnswerWorld
from tests.survey.answering.test_form_heading import name_registry
from tests.survey.browser_support import SCREENSHOTS, requires_chromium
from tests.survey.test_browser import (  # noqa: F401 - the fixtures are used by name
    _wait_for_url,
    browser,
    server,
)

pytestmark = requires_chromium

EXPECTED = {
    "fa": (
        "نظرسنجی سازمان امور مالیاتی کشور",
        "«ثبت اظهارنامه مالیاتی»",
        "۱۷ اسفند ۱۴۰۴",
        "2026-03-08",
        "به‌طور تصادفی از میان سوابق همین خدمت",
    ),
    "en": (
        "A survey by Iranian National Tax Administration",
        "“Filing a tax return”",
        "17 Esfand 1404",
        "2026-03-08",
        "chosen at random from this service’s records",
    ),
}


@pytest.mark.parametrize("lang", ["fa", "en"])
def test_the_form_heading_in_a_browser(
    lang: str,
    server: str,  # noqa: F811
    browser: Any,  # noqa: F811
    context: AppContext,
) -> None:
    world = AnswerWorld(context)
    invited = world.invite(service="TAX-01", day=date(2026, 3, 8))
    name_registry(context)
    browser.set_window_size(420, 900)  # a phone's first screen
    browser.get(f"{server}/s/{invited.token}?lang={lang}")
    _wait_for_url(browser, f"lang={lang}")
    header = browser.find_element("css selector", "header.about")
    agency, service, chosen = header.find_elements("tag name", "p")
    for expected in EXPECTED[lang]:
        assert expected in header.text, (expected, header.text)
    assert agency.text == EXPECTED[lang][0]
    assert agency.value_of_css_property("font-weight") in ("700", "bold")
    assert EXPECTED[lang][4] in chosen.text and EXPECTED[lang][1] in service.text
    # Seen first: above the title, on the first screen, in the page's direction.
    title = browser.find_element("tag name", "h1")
    assert header.rect["y"] + header.rect["height"] <= title.rect["y"]
    assert header.rect["y"] + header.rect["height"] < 900
    assert header.value_of_css_property("direction") == ("rtl" if lang == "fa" else "ltr")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"answer-heading-{lang}.png"))
