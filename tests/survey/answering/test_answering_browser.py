"""The save button in a real browser: a half-finished form saves although required items are
empty (the button has `formnovalidate`; required items are checked only on submit)."""

from __future__ import annotations

import time
from typing import Any

from survey.context import AppContext
from tests.survey.answer_builders import AnswerWorld
from tests.survey.browser_support import requires_chromium
from tests.survey.test_browser import (  # noqa: F401 - the fixtures are used by name
    _choose,
    _wait_for_url,
    browser,
    server,
)

pytestmark = requires_chromium


def test_a_half_finished_form_saves_with_required_items_empty(
    server: str,  # noqa: F811
    browser: Any,  # noqa: F811
    context: AppContext,
) -> None:
    world = AnswerWorld(context)
    invited = world.invite()
    browser.get(f"{server}/s/{invited.token}")
    required = browser.find_element("css selector", "#field-q_overall-1")
    assert required.get_attribute("required") is not None  # the browser would insist on submit
    _choose(browser, "q_time", "2")  # q_overall (required) stays empty
    browser.find_element("css selector", 'button[value="save"]').click()
    _wait_for_url(browser, "saved=1")
    assert browser.find_element("css selector", "#field-q_time-2").is_selected()
    response = world.response_of(invited.invitation_id)
    assert response is not None and response.status == "partial"
    assert response.answers == {"q_time": 2}
    # Submit instead: the browser's own check stops it, nothing is completed.
    browser.find_element("css selector", 'button[value="submit"]').click()
    time.sleep(1.0)  # time for a navigation, were there one
    assert "/thanks" not in browser.current_url
    assert world.invitation(invited.invitation_id).status == "partial"
