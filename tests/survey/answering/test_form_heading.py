"""The answering form says whose survey it is, about which service and day (both calendars)
and how the citizen was chosen, in Persian and in English."""

from __future__ import annotations

import re
from datetime import date

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from survey.context import AppContext
from survey.models import Agency, Service
from tests.survey.answer_builders import AnswerWorld

TAGS = re.compile(r"<[^>]+>")


def name_registry(context: AppContext) -> None:
    """Real names for the builders' agency TAX and its services."""
    with context.sessions.begin() as session:
        session.execute(
            sa.update(Agency)
            .where(Agency.code == "TAX")
            .values(
                name_fa="سازمان امور مالیاتی کشور", name_en="Iranian National Tax Administration"
            )
        )
        for code, fa, en in (
            ("TAX-01", "ثبت اظهارنامه مالیاتی", "Filing a tax return"),
            ("TAX-02", "صدور گواهی مفاصاحساب مالیاتی", "Tax clearance certificate"),
        ):
            session.execute(
                sa.update(Service).where(Service.code == code).values(name_fa=fa, name_en=en)
            )


def heading(page: str) -> str:
    match = re.search(r'<header class="about">(.*?)</header>', page, re.S)
    assert match, "the form has no heading"
    return " ".join(TAGS.sub("", match[1]).split())


@pytest.fixture
def world(context: AppContext) -> AnswerWorld:
    return AnswerWorld(context)


def test_the_heading_names_agency_service_day_and_how_the_citizen_was_chosen(
    client: TestClient, world: AnswerWorld, context: AppContext
) -> None:
    invited = world.invite(service="TAX-01", day=date(2026, 3, 8))
    name_registry(context)
    page = client.get(f"/s/{invited.token}")
    assert page.status_code == 200
    text = heading(page.text)
    assert text == (
        "نظرسنجی سازمان امور مالیاتی کشور "
        "درباره خدمت «ثبت اظهارنامه مالیاتی» که در ۱۷ اسفند ۱۴۰۴ (2026-03-08) گرفتید. "
        "شماره شما به‌طور تصادفی از میان سوابق همین خدمت انتخاب شد. پاسخ دادن اختیاری است."
    )
    assert page.text.index('<header class="about">') < page.text.index("<h1>")
    assert '<bdi dir="ltr">2026-03-08</bdi>' in page.text  # the Gregorian date reads in RTL
    page = client.get(f"/s/{invited.token}?lang=en")
    assert heading(page.text) == (
        "A survey by Iranian National Tax Administration "
        "About the service “Filing a tax return” you received on 17 Esfand 1404 (2026-03-08). "
        "Your number was chosen at random from this service’s records. Answering is voluntary."
    )


def test_each_link_of_one_questionnaire_gets_its_own_heading(
    client: TestClient, world: AnswerWorld, context: AppContext
) -> None:
    """First opens share a cached blank form per questionnaire: the heading is per link."""
    first = world.invite(service="TAX-01", day=date(2026, 3, 8))
    second = world.invite(service="TAX-02", day=date(2026, 3, 9))
    name_registry(context)
    one, two = (heading(client.get(f"/s/{i.token}").text) for i in (first, second))
    assert "«ثبت اظهارنامه مالیاتی» که در ۱۷ اسفند ۱۴۰۴" in one
    assert "«صدور گواهی مفاصاحساب مالیاتی» که در ۱۸ اسفند ۱۴۰۴ (2026-03-09)" in two
    # A form with saved answers is rendered afresh, with the same heading.
    page = client.get(f"/s/{first.token}")
    csrf = re.search(r'name="_csrf_token" value="([0-9a-f]+)"', page.text)
    assert csrf
    saved = client.post(
        f"/s/{first.token}",
        data={"_csrf_token": csrf[1], "action": "save", "q_time": "4"},
        follow_redirects=True,
    )
    assert saved.status_code == 200 and "ذخیره شد" in saved.text
    assert heading(saved.text) == one


def test_names_are_escaped_in_the_heading(
    client: TestClient, world: AnswerWorld, context: AppContext
) -> None:
    invited = world.invite()
    with context.sessions.begin() as session:
        session.execute(
            sa.update(Agency).where(Agency.code == "TAX").values(name_fa="<b>اداره</b> & شرکا")
        )
    page = client.get(f"/s/{invited.token}").text
    assert "&lt;b&gt;اداره&lt;/b&gt; &amp; شرکا" in page and "<b>اداره" not in page
