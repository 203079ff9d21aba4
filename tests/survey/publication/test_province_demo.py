"""Every province page of every release of the demo, as a governor's office reads it: each
agency serving the province once, its best figure (direct, else model-based with its
approximate interval, else none), the Persian pages in Persian apart from codes and numbers
(the check of test_officials_publications), and a real browser at 360 px in both languages
(every province of the latest release; screenshots docs/screenshots/publication-province-*)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from survey.app import create_app
from survey.publication.province import best_figures, province_codes
from tests.survey.browser_support import SCREENSHOTS, chromium, live_server, requires_chromium
from tests.survey.publication.conftest import DemoWorld
from tests.survey.publication.test_officials_publications import foreign_words, parse

PHONE = 360


@pytest.fixture(scope="module")
def client(demo_world: DemoWorld) -> Iterator[TestClient]:
    app = create_app(demo_world.settings, context=demo_world.context)
    with TestClient(app, base_url="https://testserver.local") as test_client:
        yield test_client


def test_every_province_page_of_every_release_lists_each_agency_once(
    client: TestClient, demo_world: DemoWorld
) -> None:
    kinds: set[str] = set()
    for release in demo_world.releases:
        for code in sorted(province_codes(release)):
            figures = best_figures(release, code)
            for lang in ("fa", "en"):
                query = "?lang=en" if lang == "en" else ""
                answer = client.get(f"/releases/{release.id}/provinces/{code}{query}")
                assert answer.status_code == 200, (release.id, code, lang)
                html = answer.text
                rows = re.findall(r'<tr class="([^"]+)" id="row-([^"]+)">', html)
                assert sorted(agency for _, agency in rows) == sorted(figures), (code, lang)
                for css, agency in rows:
                    kind = figures[agency].kind
                    kinds.add(kind)
                    assert css == ("suppressed" if kind == "none" else f"basis-{kind}")
                main = html.split("<main", 1)[1]
                if lang == "fa":
                    assert "RMSE" not in main  # the model's error is named in Persian
                    foreign = foreign_words(parse(html).texts)
                    assert foreign == [], (release.id, code, sorted(set(foreign))[:10])
                elif any(f.kind == "model" for f in figures.values()):
                    assert "root mean squared error (RMSE)" in main
    assert kinds >= {"direct", "model"}  # the demo shows both (no figure: test_province_page)


@requires_chromium
def test_every_province_page_on_a_phone_in_both_languages(
    demo_world: DemoWorld, tmp_path: Path
) -> None:
    app = create_app(demo_world.settings, context=demo_world.context)
    codes = sorted(province_codes(demo_world.latest))
    shown = max(codes, key=lambda c: len(best_figures(demo_world.latest, c)))
    with (
        live_server(app) as base,
        chromium(tmp_path / "profile", window=(800, 900), page_load_timeout=60) as driver,
    ):
        _phone(driver, 800)
        for lang in ("fa", "en"):
            query = "?lang=en" if lang == "en" else ""
            for code in codes:
                driver.get(f"{base}/provinces/{code}{query}")
                html = driver.find_element("tag name", "html")
                assert html.get_attribute("lang") == lang
                assert html.get_attribute("dir") == ("rtl" if lang == "fa" else "ltr")
                name = demo_world.latest.provinces[code][lang]
                assert name in driver.find_element("tag name", "h1").text
                width = driver.execute_script("return document.documentElement.scrollWidth")
                assert width <= PHONE, f"/provinces/{code} scrolls sideways in {lang}: {width}"
                rows = driver.find_elements("css selector", "table.province-agencies tbody tr")
                assert len(rows) == len(best_figures(demo_world.latest, code))
                if code == shown:
                    height = driver.execute_script("return document.documentElement.scrollHeight")
                    _phone(driver, min(int(height), 9000))
                    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                    driver.save_screenshot(str(SCREENSHOTS / f"publication-province-{lang}.png"))
                    _phone(driver, 800)
            # the switch leads to the same province in the other language
            driver.find_element("css selector", ".lang a").click()
            other = "en" if lang == "fa" else "fa"
            assert driver.find_element("tag name", "html").get_attribute("lang") == other
            assert f"/provinces/{codes[-1]}" in driver.current_url


def _phone(driver: Any, height: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE, "height": height, "deviceScaleFactor": 1, "mobile": True},
    )
