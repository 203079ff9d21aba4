"""A real headless Chromium at a 360-pixel phone width signs in through /login and uses the
staff pages in Persian and English: the shared frame (language switch to the same page, the
staff navigation, who is signed in, sign-out) on /ingestion, /staff/plans (with a proposal)
and /audit, nothing scrolling sideways, and signing out ends the session. Screenshots:
docs/screenshots/overview-*.png (the ingestion page), plans-*.png and audit-*.png.
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
from tests.survey.access_builders import PASSWORD, add_staff
from tests.survey.browser_support import SCREENSHOTS, chromium, live_server, requires_chromium
from tests.survey.results.test_plan_proposals import _history as history

pytestmark = requires_chromium
PHONE = 360
PAGES = (("overview", "/ingestion"), ("plans", "/staff/plans"), ("audit", "/audit"))


@pytest.fixture
def server(migrated_settings: Settings, context: AppContext) -> Iterator[str]:
    history(context)
    add_staff(context, "sara", "admin")
    with live_server(create_app(migrated_settings, context=context)) as base:
        yield base


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "profile", window=(800, 900), page_load_timeout=60) as driver:
        _phone(driver, 800)
        yield driver


def _phone(driver: Any, height: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE, "height": height, "deviceScaleFactor": 1, "mobile": True},
    )


def _wait_for(driver: Any, fragment: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while fragment not in driver.current_url:
        assert time.monotonic() < deadline, f"{fragment!r} not in {driver.current_url!r}"
        time.sleep(0.05)


def _screenshot(driver: Any, name: str) -> None:
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    _phone(driver, min(height, 9000))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    _phone(driver, 800)


def test_staff_pages_on_a_phone_in_both_languages(server: str, browser: Any) -> None:
    browser.get(f"{server}/login?next=/ingestion")
    browser.find_element("name", "username").send_keys("sara")
    browser.find_element("name", "password").send_keys(PASSWORD)
    browser.find_element("css selector", "main form button[type=submit]").click()
    _wait_for(browser, "/ingestion")
    for lang in ("fa", "en"):
        query = "?lang=en" if lang == "en" else ""
        for name, path in PAGES:
            browser.get(f"{server}{path}{query}")
            root = browser.find_element("tag name", "html")
            assert root.get_attribute("lang") == lang
            assert root.get_attribute("dir") == ("rtl" if lang == "fa" else "ltr")
            nav = browser.find_elements("css selector", "header.staff nav a")
            assert len(nav) == 4  # an admin: ingestion, plans, audit, the public site
            current = browser.find_element("css selector", 'nav a[aria-current="page"]')
            assert current.get_attribute("href").startswith(f"{server}{path}")
            assert "sara" in browser.find_element("css selector", "header.staff .who").text
            assert browser.find_element("css selector", "form.sign-out button").is_displayed()
            if name == "plans":  # a proposal, to show its summary
                browser.find_element("name", "period").send_keys("1405-Q1")
                browser.find_element("name", "target_moe").clear()
                browser.find_element("name", "target_moe").send_keys("5")
                browser.find_element("css selector", 'form[action*="propose"] button').click()
                _wait_for(browser, "/staff/plans/propose")
                assert browser.find_elements("css selector", "table.summary tbody tr")
                assert browser.find_element("css selector", ".warnings").is_displayed()
            width = browser.execute_script("return document.documentElement.scrollWidth")
            assert width <= PHONE, f"{path} scrolls sideways in {lang}: {width}px"
            _screenshot(browser, f"{name}-{lang}")
        # the switch on a page reached by a form's POST leads to the page itself
        browser.get(f"{server}/audit{query}")
        browser.find_element("css selector", "header.staff .lang a").click()
        other = "en" if lang == "fa" else "fa"
        assert browser.find_element("tag name", "html").get_attribute("lang") == other
        assert "/audit" in browser.current_url
    browser.find_element("css selector", "form.sign-out button").click()
    _wait_for(browser, "/login")
    browser.get(f"{server}/audit")
    _wait_for(browser, "/login?next=")  # signed out: the page asks to sign in again
